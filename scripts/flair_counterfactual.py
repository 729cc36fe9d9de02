#!/usr/bin/env python3
"""Does a post-contrast FLAIR take the enhancement out of a synthesized T1-ce? A counterfactual on
the held-out shifted site: each case whose FLAIR was acquired after contrast is generated again with
the FLAIR before contrast and everything else the same (same random streams: the variant's draw
still happens, with probability ~0), and the T1-ce model runs on both versions of its sources.

    python scripts/flair_counterfactual.py [--weights workspace/additional_files] [--seed 4242] \
        [--cases 40000-40007] [--json OUT]

Only cases whose T1, T1-ce and T2 come out byte-identical in both versions are scored (the contrast-
order check could otherwise draw another protocol). Prints, per case, the enhancement ratio of the
truth and of both predictions, and the enhancement recovered (brasyn.evaluation.enhancement).
Measuring only: nothing is trained or tuned on the shifted site.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from brasyn.checkpoint import checkpoint_filename
from brasyn.constants import LABEL_ET, Modality
from brasyn.data.normalization import brain_mask
from brasyn.evaluation.enhancement import enhancement_ratio, enhancement_recovered
from brasyn.inference import InferenceSettings, Predictor
from brasyn.phantom import PhantomConfig, generate_case
from brasyn.phantom import site as sites

REPO = Path(__file__).resolve().parents[1]
PRE_CONTRAST = "shifted-pre-contrast-flair"


def register_counterfactual_site() -> None:
    """The shifted site with its post-contrast FLAIR draw kept but (almost) never true."""
    profile = dataclasses.replace(sites.SHIFTED, name=PRE_CONTRAST, p_post_contrast_flair=1e-12)
    sites.SITES[PRE_CONTRAST] = profile


def case_numbers(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=REPO / "workspace" / "additional_files")
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--cases", type=case_numbers, default=case_numbers("40000-40007"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    register_counterfactual_site()
    weights = args.weights / checkpoint_filename(Modality.T1C)
    predictor = Predictor.from_checkpoint(weights, settings=InferenceSettings())  # the inference defaults
    rows = []
    for number in args.cases:
        real = generate_case(number, args.seed, PhantomConfig(site="shifted"))
        if not real.protocol["sequences"]["t2f"].get("post_contrast"):
            continue
        other = generate_case(number, args.seed, PhantomConfig(site=PRE_CONTRAST))
        same = all(np.array_equal(real.images[m], other.images[m]) for m in (Modality.T1N, Modality.T1C, Modality.T2W))
        if not same or not (real.seg == LABEL_ET).any():
            print(f"{number}: skipped ({'no enhancing tumour' if same else 'another protocol was drawn'})")
            continue
        truth = real.images[Modality.T1C].astype(np.float32)
        brain = brain_mask([real.images[m] for m in real.images])
        row = {"case": number, "truth_ratio": enhancement_ratio(truth, real.seg, brain)}
        for name, case in (("post_contrast_flair", real), ("pre_contrast_flair", other)):
            image = predictor.predict({m: case.images[m].astype(np.float32) for m in predictor.sources}).image
            ratio = enhancement_ratio(image, real.seg, brain)
            row[f"{name}_ratio"] = ratio
            row[f"{name}_recovered"] = enhancement_recovered(ratio, row["truth_ratio"])
        rows.append(row)
        print(
            f"{number}: truth {row['truth_ratio']:.2f}; FLAIR after contrast {row['post_contrast_flair_ratio']:.2f} "
            f"(recovered {row['post_contrast_flair_recovered']:.2f}), before {row['pre_contrast_flair_ratio']:.2f} "
            f"(recovered {row['pre_contrast_flair_recovered']:.2f})",
            flush=True,
        )
    if rows:
        for name in ("post_contrast_flair", "pre_contrast_flair"):
            values = [r[f"{name}_recovered"] for r in rows]
            print(f"{name}: enhancement recovered mean {np.mean(values):.2f}, median {np.median(values):.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
