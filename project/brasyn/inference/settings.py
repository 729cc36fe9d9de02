"""How inference runs: batch size, device, precision, what to write. Loaded from the `infer:` section
of `parameters.yaml` (strict: an unknown key is a `ConfigError`) or built from CLI options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from brasyn.config import from_dict, to_dict
from brasyn.device import canonical_precision, check_device
from brasyn.errors import ConfigError

DEFAULT_MIRROR_AXES: tuple[int, ...] = (0, 1)
IN_PLANE_AXES = (0, 1)  # axial slices span the volume's first two axes


def check_mirror_axes(axes: Any, where: str = "infer.mirror_axes") -> tuple[int, ...]:
    """Distinct in-plane axes (0 and/or 1), sorted; anything else is a `ConfigError` naming `where`."""
    items = tuple(axes) if isinstance(axes, (list, tuple)) else None
    valid = items is not None and all(
        isinstance(a, int) and not isinstance(a, bool) and a in IN_PLANE_AXES for a in items
    )
    if not valid or len(set(items)) != len(items):
        shown = list(items) if items is not None else repr(axes)
        raise ConfigError(
            f"{where}: expected distinct in-plane axes from {list(IN_PLANE_AXES)} (e.g. [0, 1], or [] for none), "
            f"found {shown}"
        )
    return tuple(sorted(items))


@dataclass(frozen=True)
class InferenceSettings:
    """Options of `synthesize_folder` / `synthesize` / `brasyn infer` / `mlcube.py infer`."""

    batch_size: int | str = "auto"
    """Axial slices per forward pass, or "auto" (chosen by device, see `brasyn.inference.tuning`);
    halved (down to 1) after a CUDA out-of-memory error."""

    channels_last: bool | None = None
    """Memory layout of the network's tensors: None = by device (channels-last on CPU and CUDA, see
    `brasyn.inference.tuning`), true or false to force it."""

    device: str = "auto"
    """"auto" (CUDA when present, else CPU), "cpu", "cuda" or "cuda:N"."""

    precision: str = "auto"
    """Autocast dtype on CUDA: "auto" (bf16 at compute capability >= 8.0, else fp16), "fp32", "bf16"
    or "fp16" (see `brasyn.device`). On CPU "auto" means fp32."""

    overwrite: bool = False
    """Replace existing predictions; by default a case whose prediction exists is skipped."""

    segmentation_dir: str | None = None
    """Also write the segmentation decoder's tumour map (labels 0-3) as `{case}-seg.nii.gz` into this
    folder (never the output folder, which holds only the predictions); None: no tumour maps."""

    progress: bool | None = None
    """Progress bar over cases: None = only when stderr is a terminal."""

    io_workers: int = 2
    """Background threads that read the next case and write the previous one while the model runs."""

    mirror_axes: tuple[int, ...] = DEFAULT_MIRROR_AXES
    """Test-time mirroring: the network also runs on the slices mirrored along every combination of
    these in-plane axes of the volume (0 = first, 1 = second), each output is mirrored back, and the
    images (and the segmentation probabilities) are averaged, as nnU-Net does. (0, 1) costs 4 forward
    passes per slice, (0,) or (1,) two, () one (no mirroring)."""

    def __post_init__(self) -> None:
        if self.batch_size != "auto" and (
            not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) or self.batch_size < 1
        ):
            raise ConfigError(f"infer.batch_size: expected auto or a positive integer, found {self.batch_size!r}")
        check_device(self.device, "infer.device")
        object.__setattr__(self, "precision", canonical_precision(self.precision, "infer.precision"))
        if self.io_workers < 1:
            raise ConfigError(f"infer.io_workers: expected a positive integer, found {self.io_workers!r}")
        object.__setattr__(self, "mirror_axes", check_mirror_axes(self.mirror_axes))
        folder = self.segmentation_dir
        if folder is not None and not (isinstance(folder, str) and folder):
            raise ConfigError(f"infer.segmentation_dir: expected a folder path or null, found {folder!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> InferenceSettings:
        """Strict loading of the `infer:` mapping (unknown keys are errors; older keys are migrated)."""
        return from_dict(cls, migrate_legacy_keys(data), "infer")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


LEGACY_SEGMENTATION_KEYS = ("write_segmentation", "segmentation_path")
"""The two keys that `segmentation_dir` replaced; parameters files that use them still load."""


def migrate_legacy_keys(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """`write_segmentation: true` + `segmentation_path: DIR` (the earlier layout) -> `segmentation_dir: DIR`."""
    if not data or not any(key in data for key in LEGACY_SEGMENTATION_KEYS):
        return data
    data = dict(data)
    write, folder = data.pop("write_segmentation", False), data.pop("segmentation_path", None)
    if "segmentation_dir" in data:
        raise ConfigError(
            "infer: give segmentation_dir, or the older write_segmentation and segmentation_path, not both"
        )
    if write and not folder:
        raise ConfigError(
            "infer.segmentation_path: required when write_segmentation is true "
            "(a folder other than the output folder, which must hold only the predictions)"
        )
    if write:
        data["segmentation_dir"] = folder
    return data



@dataclass(frozen=True)
class InferParameters:
    """The `infer:` section of the cube's parameters file: the inference settings (written flat, at the
    section's level) and the entrypoint's exit-status policy, validated together in one place."""

    FLAT_FIELDS: ClassVar[tuple[str, ...]] = ("settings",)

    settings: InferenceSettings = field(default_factory=InferenceSettings)
    strict: bool = False
    """Exit status 1 whenever any case failed (default: 0 when only cases' own inputs failed;
    `brasyn.inference.exit_policy`)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> InferParameters:
        """Strict loading of the `infer:` mapping (unknown keys and wrong types are `ConfigError`s)."""
        return from_dict(cls, migrate_legacy_keys(data), "infer")
