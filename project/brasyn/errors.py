"""The error families. The CLI prints a `BrasynError` as one line and exits with status 1.

Which family an error belongs to decides the runners' exit status (`brasyn.inference.exit_policy`):
- `InputError` and its subclasses: a case's own files break the data contract. Only the case fails;
  a run whose only failures are these still exits 0 for MedPerf and the `brats` package.
- `ConfigError`, `CheckpointError`, `InferenceError`, `OutputError`: something every case shares.
- `ContractError`: a function was called outside its documented contract (a tensor of the wrong
  shape); a bug in the calling code, never the case's input. It is not a `BrasynError`: it keeps its
  traceback and counts as unexpected.

`tests/test_architecture.py` checks every `raise` in models/, data/ and inference/ against these.
"""

from __future__ import annotations


class BrasynError(Exception):
    """Base of every error this package raises on purpose (bad input, bad config, bad checkpoint)."""


class InputError(BrasynError):
    """A case or file violates the BraTS data contract. The message names the case and the file."""


class MissingModalityError(InputError):
    """A case lacks more than one modality (or a file needed for training)."""


class GeometryError(InputError):
    """Volumes of one case disagree in shape or affine, or are not 3-D."""


class IntensityError(InputError):
    """A volume holds NaN or infinite values, or is empty where data is needed."""


class ReadError(InputError):
    """A file cannot be read (corrupt gzip, truncated, not NIfTI)."""


class ConfigError(BrasynError):
    """A configuration file or value is invalid. The message names the key path."""


class CheckpointError(BrasynError):
    """A checkpoint is missing, unreadable, or does not match what is asked of it."""


class InferenceError(BrasynError):
    """The model could not be run on a case (e.g. out of memory even at batch size 1)."""


class OutputError(BrasynError):
    """The output folder cannot be used (not writable, or shared with inputs or other outputs)."""


class ContractError(ValueError):
    """A function was called with arguments its contract excludes (e.g. a tensor of the wrong shape):
    a programming error in the caller, never a case's input."""
