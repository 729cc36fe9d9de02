"""BraTS / BraSyn constants: the one place that knows modality names, geometry and file naming."""

from __future__ import annotations

import enum
from collections.abc import Iterable

import numpy as np

from brasyn.errors import ConfigError


class Modality(str, enum.Enum):
    """The four standard BraTS 2023 sequences, in the fixed order used everywhere in this package."""

    T1N = "t1n"  # native T1
    T1C = "t1c"  # T1 post-contrast
    T2W = "t2w"  # T2
    T2F = "t2f"  # T2-FLAIR

    def __str__(self) -> str:  # so f-strings print "t1n", not "Modality.T1N"
        return self.value

    @classmethod
    def parse(cls, name: str) -> Modality:
        """`Modality.parse("t1c")`; raises ValueError naming the valid choices."""
        try:
            return cls(name.lower())
        except ValueError:
            valid = ", ".join(m.value for m in cls)
            raise ValueError(f"unknown modality {name!r}; expected one of {valid}") from None


MODALITIES: tuple[Modality, ...] = tuple(Modality)
SEG_SUFFIX = "seg"

# BraTS 2023 geometry: 240 x 240 x 155 voxels, 1 mm isotropic, axis codes (L, P, S).
BRATS_SHAPE: tuple[int, int, int] = (240, 240, 155)
BRATS_AFFINE = np.array(
    [[-1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 239.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)

# Segmentation labels (BraTS 2023 convention) and the evaluated regions.
LABEL_NCR, LABEL_ED, LABEL_ET = 1, 2, 3
REGIONS: dict[str, tuple[int, ...]] = {"ET": (3,), "TC": (1, 3), "WT": (1, 2, 3)}

NIFTI_EXTENSIONS: tuple[str, ...] = (".nii.gz", ".nii")
OUTPUT_EXTENSION = ".nii.gz"


def sources_for(target: Modality) -> tuple[Modality, Modality, Modality]:
    """The three source modalities of a dedicated model for `target`, in canonical order."""
    return tuple(m for m in MODALITIES if m != target)  # type: ignore[return-value]


def image_filename(case_id: str, modality: Modality | str, extension: str = OUTPUT_EXTENSION) -> str:
    """BraTS file name of one image or segmentation: `{case}-{mod}.nii.gz` (`mod` may be "seg")."""
    return f"{case_id}-{modality}{extension}"


TARGET_CHOICES = "t1n, t1c, t2w, t2f or all"


def parse_targets(values: str | Iterable[str], key: str = "--target") -> list[Modality]:
    """Target modalities from names (any case; `Modality` members are names too), "all" and
    comma-separated lists, in the order first given, repeats dropped: `["t2f,T1N", "t2f"]` → [t2f, t1n].

    The one parser behind `brasyn train`, `brasyn baseline fit` and the cube's `train.targets`; an
    unknown name, or none at all, is a `ConfigError` naming the option or config `key`."""
    items = [values] if isinstance(values, str) else list(values)
    out: list[Modality] = []
    for item in items:
        for name in item.split(",") if isinstance(item, str) else [item]:
            out.extend(m for m in _targets_named(name, key) if m not in out)
    if not out:
        raise ConfigError(f"{key}: expected {TARGET_CHOICES}, found none")
    return out


def _targets_named(name: object, key: str) -> tuple[Modality, ...]:
    text = name.strip().lower() if isinstance(name, str) else None
    if text == "all":
        return MODALITIES
    if text in {m.value for m in Modality}:
        return (Modality(text),)
    raise ConfigError(f"{key}: expected {TARGET_CHOICES}, found {name!r}")
