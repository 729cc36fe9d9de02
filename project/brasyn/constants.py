"""BraTS / BraSyn constants: the one place that knows modality names, geometry and file naming."""

from __future__ import annotations

import enum

import numpy as np


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
