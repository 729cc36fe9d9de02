"""One error family. The CLI prints a `BrasynError` as one line and exits with status 1."""

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
