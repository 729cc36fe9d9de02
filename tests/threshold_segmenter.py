"""A real external segmenter for the tests, run as a command: thresholds of the input images.

    python tests/threshold_segmenter.py INPUT OUTPUT [--layout brats|nnunet] [--channels t1n,t1c,t2w,t2f]
        [--suffix=-seg] [--et-label 4] [--fail] [--skip CASE]

Rule (for the volumes of `tests/test_segmenters.py`: healthy brain 100 in every sequence): whole
tumour where FLAIR > 150, inside it enhancing tumour (3) where T1-ce > 200, necrosis (1) where
T1-ce < 75, edema (2) elsewhere. A constant T1-ce therefore loses ET and NCR but keeps WT.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nibabel as nib
import numpy as np


def read_cases(input_dir: Path, layout: str, channels: list[str]) -> dict[str, dict[str, Path]]:
    cases: dict[str, dict[str, Path]] = {}
    if layout == "brats":
        for folder in sorted(p for p in input_dir.iterdir() if p.is_dir()):
            cases[folder.name] = {m: folder / f"{folder.name}-{m}.nii.gz" for m in channels}
    else:
        for path in sorted(input_dir.glob("*_0000.nii.gz")):
            case = path.name[: -len("_0000.nii.gz")]
            cases[case] = {m: input_dir / f"{case}_{k:04d}.nii.gz" for k, m in enumerate(channels)}
    return cases


def write_labels(t1c_path: Path, t2f_path: Path, out: Path, et_label: int = 3) -> None:
    """The rule above, from the two files to a label map beside `out`."""
    t1c_image = nib.load(t1c_path)
    t1c = np.asarray(t1c_image.dataobj, dtype=np.float32)
    t2f = np.asarray(nib.load(t2f_path).dataobj, dtype=np.float32)
    labels = np.zeros(t1c.shape, np.uint8)
    whole = t2f > 150
    labels[whole] = 2
    labels[whole & (t1c > 200)] = et_label
    labels[whole & (t1c < 75)] = 1
    nib.save(nib.Nifti1Image(labels, t1c_image.affine), out)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--layout", default="brats")
    parser.add_argument("--channels", default="t1n,t1c,t2w,t2f")
    parser.add_argument("--suffix", default="")
    parser.add_argument("--fail", action="store_true")
    parser.add_argument("--skip", default="")
    parser.add_argument("--et-label", type=int, default=3, help="4: write BraTS 2017-2021 labels")
    args = parser.parse_args()
    if args.fail:
        print("simulated crash: CUDA out of memory", file=sys.stderr)
        return 3
    args.output.mkdir(parents=True, exist_ok=True)
    for case, files in read_cases(args.input, args.layout, args.channels.split(",")).items():
        if case == args.skip:
            continue
        write_labels(files["t1c"], files["t2f"], args.output / f"{case}{args.suffix}.nii.gz", args.et_label)
    return 0


if __name__ == "__main__":
    sys.exit(main())
