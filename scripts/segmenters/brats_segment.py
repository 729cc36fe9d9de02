#!/usr/bin/env python3
"""Run a BrainLesion `brats` package glioma segmenter as brasyn's independent segmenter.

    pip install brats          # in any environment; it runs the algorithms' containers (Docker, GPU)
    brasyn evaluate --pred OUT --labels LABELS --out REPORT \
        --segmenter 'cmd:python scripts/segmenters/brats_segment.py {input} {output}'
    # options: --algorithm BraTS23_1|BraTS23_2|BraTS23_3 (default BraTS23_1), --cuda-devices 0, --force-cpu

The package's batch mode (`infer_batch(data_folder, output_folder)`, BrainLesion/BraTS
brats/core/segmentation_algorithms.py) reads exactly brasyn's brats layout (`A/A-t1c.nii.gz`,
`A-t1n`, `A-t2f`, `A-t2w`) and writes one `A.nii.gz` per case in the BraTS 2023 labels (1 NCR,
2 ED, 3 ET), so no label mapping is needed. Package versions before the 2024 renaming call the
class `AdultGliomaSegmenter` (enum `AdultGliomaAlgorithms`); both are tried.
"""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", help="folder of BraTS case folders (A/A-t1c.nii.gz, ...)")
    parser.add_argument("output", help="receives A.nii.gz label maps")
    parser.add_argument("--algorithm", default="BraTS23_1", help="a member of AdultGliomaPreTreatmentAlgorithms")
    parser.add_argument("--cuda-devices", default="0")
    parser.add_argument("--force-cpu", action="store_true", help="only for algorithms that support it")
    args = parser.parse_args()
    try:
        from brats import AdultGliomaPreTreatmentSegmenter as Segmenter
        from brats.constants import AdultGliomaPreTreatmentAlgorithms as Algorithms
    except ImportError:
        try:
            from brats import AdultGliomaSegmenter as Segmenter
            from brats.constants import AdultGliomaAlgorithms as Algorithms
        except ImportError:
            print("brats_segment.py: the `brats` package is not installed here (pip install brats)", file=sys.stderr)
            return 2
    segmenter = Segmenter(
        algorithm=Algorithms(args.algorithm), cuda_devices=args.cuda_devices, force_cpu=args.force_cpu
    )
    segmenter.infer_batch(data_folder=args.input, output_folder=args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
