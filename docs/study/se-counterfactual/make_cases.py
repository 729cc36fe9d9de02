#!/usr/bin/env python3
"""Issue 17, step 5: is the spin-echo T1 before contrast what keeps the enhancement down?

    python docs/study/se-counterfactual/make_cases.py runs/se-cf --seed 2024 --case 20000 --case 20003 ...

Regenerates cases of a synthetic cohort (default site) three times each, identical in every draw
(anatomy, tumour, tissue parameters, uptake, bias, noise) but the T1 sequences:

    as-drawn/   the case as the cohort has it (checked voxel for voxel against --check, if given)
    t1n-mprage/ the T1 before contrast (a source) acquired with an MPRAGE, the T1-ce (target) as drawn
    both-mprage/ both T1 series acquired with the MPRAGE

The MPRAGE is the generator's own draw for the case's field strength (fixed stream, `--mprage-seed`).
Each variant is a training-format folder (four images and the labels per case) for
scripts/ab_probe.py --cohort. Synthetic-only probe: it patches the generator's physics draw.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import nibabel as nib
import numpy as np

from brasyn.constants import MODALITIES, Modality
from brasyn.phantom import contrast, generator
from brasyn.phantom import signal as sig
from brasyn.phantom.cohort import write_case
from brasyn.phantom.protocol import NOMINAL_WM, _t1_sequence
from brasyn.phantom.site import site_profile

VARIANTS = {"as-drawn": (), "t1n-mprage": (Modality.T1N,), "both-mprage": (Modality.T1N, Modality.T1C)}


def _mprage(field: float, seed: int) -> sig.Sequence:
    """The generator's MPRAGE at `field` (the first MPRAGE its T1 draw gives on stream `seed`)."""
    rng = np.random.default_rng(seed)
    site = dataclasses.replace(
        site_profile("default"), t1_kind_probabilities={1.5: (0.0, 0.0, 1.0), 3.0: (0.0, 0.0, 1.0)}
    )
    return _t1_sequence(rng, field, site)


def _patched(replace: tuple[Modality, ...], mprage_seed: int):
    """sample_physics that swaps the T1 sequences in `replace` for an MPRAGE after the case's own draw."""
    original = contrast.sample_physics

    def sample_physics(rng, site):
        protocol, tissues, uptake, draws = original(rng, site)
        if replace:
            mprage = _mprage(protocol.field_strength, mprage_seed)
            sequences = {**protocol.sequences, **{m: mprage for m in replace}}
            pd, t1, t2 = NOMINAL_WM[protocol.field_strength]
            reference = {m: float(sequences[m].signal(pd, t1, t2)) for m in MODALITIES}
            protocol = dataclasses.replace(protocol, sequences=sequences, reference_signal=reference)
        return protocol, tissues, uptake, draws

    return sample_physics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--case", type=int, action="append", required=True, help="case index (repeatable)")
    parser.add_argument("--mprage-seed", type=int, default=7)
    parser.add_argument("--check", type=Path, help="the cohort's original_data/ to compare the as-drawn T1-ce with")
    args = parser.parse_args()
    for variant, replace in VARIANTS.items():
        generator.sample_physics = _patched(replace, args.mprage_seed)
        for index in args.case:
            case = generator.generate_case(index, args.seed)
            name = f"BraTS-GLI-{index:05d}-000"
            write_case(args.out / variant / name, name, case, MODALITIES, with_labels=True)
            if variant == "as-drawn" and args.check:
                stored = np.asarray(nib.load(args.check / name / f"{name}-t1c.nii.gz").dataobj)
                assert np.array_equal(stored, case.images[Modality.T1C]), f"{name}: not the cohort's case"
            print(variant, name, {str(m): case.protocol["sequences"][str(m)]["kind"] for m in MODALITIES}, flush=True)


if __name__ == "__main__":
    main()
