"""What the study scripts (ab_probe, ab_table, compare_picture) share: their NAME=PATH arguments and
reading a training-format case (all four modalities and the labels)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from brasyn.constants import MODALITIES, Modality, image_filename
from brasyn.data.normalization import brain_mask
from brasyn.io.nifti import load_volume


def named(text: str) -> tuple[str, Path]:
    """argparse type of `NAME=PATH`."""
    name, _, path = text.partition("=")
    if not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, found {text!r}")
    return name, Path(path)


def load_training_case(case: Path) -> tuple[dict[Modality, np.ndarray], np.ndarray, np.ndarray]:
    """(the four volumes, the labels as uint8, the brain mask) of a training-format case folder."""
    volumes = {m: load_volume(case / image_filename(case.name, m.value))[0] for m in MODALITIES}
    seg = load_volume(case / image_filename(case.name, "seg"))[0].astype(np.uint8)
    return volumes, seg, brain_mask(list(volumes.values()))


def drawn_protocol(seed: int, index: int, site: str):
    """The acquisition protocol (`brasyn.phantom.protocol.Protocol`) the phantom generator draws for
    case `index` of cohort `seed` at `site`: its physics stream alone, no volume is made."""
    from brasyn.phantom.contrast import sample_physics
    from brasyn.phantom.generator import _rngs
    from brasyn.phantom.site import site_profile

    return sample_physics(_rngs(seed, index)["physics"], site_profile(site))[0]
