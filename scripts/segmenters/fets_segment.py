#!/usr/bin/env python3
"""Run the FeTS tool's segmentation CLI (FeTS-AI/Front-End) as brasyn's independent segmenter.

    brasyn evaluate --pred OUT --labels LABELS --out REPORT --segmenter-labels 4=3 --segmenter \
        "cmd:python scripts/segmenters/fets_segment.py {input} {output} --fets-cli $FETS/bin/FeTS_CLI_Segment"
    # options: --archs fets_triplet (default; or fets_singlet, nnunet, deepscan, deepmedic), --gpu

`FeTS_CLI_Segment -d DATA -a ARCH -lF STAPLE -g 0|1` (src/applications/FeTS_CLI_Segment.cxx) reads
subject folders holding `<subject>_t1.nii.gz`, `_t1ce.nii.gz`, `_t2.nii.gz` and `_flair.nii.gz`
and writes `<subject>_<arch>_seg.nii.gz` into each subject folder (the data folder itself). This
wrapper copies brasyn's brats layout into that naming in a temporary folder, runs the CLI, and
copies each segmentation to `{output}/<subject>.nii.gz`. FeTS models label in the BraTS 2017-2021
convention (enhancing tumour = 4): evaluate with `--segmenter-labels 4=3`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FETS_NAMES = {"t1n": "t1", "t1c": "t1ce", "t2w": "t2", "t2f": "flair"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, help="folder of BraTS case folders (A/A-t1c.nii.gz, ...)")
    parser.add_argument("output", type=Path, help="receives A.nii.gz label maps")
    parser.add_argument("--fets-cli", default="FeTS_CLI_Segment", help="path of the FeTS_CLI_Segment executable")
    parser.add_argument("--archs", default="fets_triplet", help="one architecture (its output name is read back)")
    parser.add_argument("--gpu", action="store_true", help="-g 1 (default: CPU, -g 0)")
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fets-") as work:
        data = Path(work) / "data"
        subjects = sorted(p.name for p in args.input.iterdir() if p.is_dir())
        for subject in subjects:
            (data / subject).mkdir(parents=True)
            for ours, theirs in FETS_NAMES.items():
                source = args.input / subject / f"{subject}-{ours}.nii.gz"
                shutil.copyfile(source, data / subject / f"{subject}_{theirs}.nii.gz")
        command = [args.fets_cli, "-d", str(data), "-a", args.archs, "-lF", "STAPLE", "-g", "1" if args.gpu else "0"]
        done = subprocess.run(command)
        if done.returncode != 0:
            print(f"fets_segment.py: {' '.join(command)} exited with status {done.returncode}", file=sys.stderr)
            return done.returncode
        for subject in subjects:
            found = data / subject / f"{subject}_{args.archs}_seg.nii.gz"
            if found.is_file():
                shutil.copyfile(found, args.output / f"{subject}.nii.gz")
            else:
                print(f"fets_segment.py: {subject}: FeTS wrote no {found.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
