"""The documented wrappers in scripts/segmenters/ against stand-ins of the tools they call.

The stand-ins follow the tools' file contracts as read from their source: the BrainLesion `brats`
package's `infer_batch` (A/A-t1c.nii.gz in, A.nii.gz out; brats/core/segmentation_algorithms.py) and
FeTS' `FeTS_CLI_Segment -d DATA -a ARCH ...` (<subject>_t1ce.nii.gz ... in, <subject>_<arch>_seg.nii.gz
written into the subject folder, BraTS 2021 labels with ET = 4; FeTS_CLI_Segment.cxx). The real
tools need Docker or the FeTS installation and were not run here.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from brasyn.evaluation import evaluate
from brasyn.evaluation.segmenters import parse_segmenter
from tests.test_segmenters import CASES, write_labels, write_predictions

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

BRATS_STUB = f'''
import sys
from enum import Enum
from pathlib import Path
sys.path.insert(0, {str(TESTS)!r})
from threshold_segmenter import write_labels

class AdultGliomaPreTreatmentSegmenter:
    def __init__(self, algorithm, cuda_devices="0", force_cpu=False):
        self.algorithm = algorithm

    def infer_batch(self, data_folder, output_folder, log_file=None):
        Path(output_folder).mkdir(parents=True, exist_ok=True)
        for subject in Path(data_folder).iterdir():
            write_labels(subject / f"{{subject.name}}-t1c.nii.gz", subject / f"{{subject.name}}-t2f.nii.gz",
                         Path(output_folder) / f"{{subject.name}}.nii.gz")
'''

BRATS_CONSTANTS_STUB = '''
from enum import Enum

class AdultGliomaPreTreatmentAlgorithms(str, Enum):
    BraTS23_1 = "BraTS23_1"
'''

FETS_STUB = f'''
import argparse, sys
from pathlib import Path
sys.path.insert(0, {str(TESTS)!r})
from threshold_segmenter import write_labels
parser = argparse.ArgumentParser()
parser.add_argument("-d"); parser.add_argument("-a"); parser.add_argument("-lF"); parser.add_argument("-g")
args = parser.parse_args()
for subject in Path(args.d).iterdir():
    name = subject.name
    write_labels(subject / f"{{name}}_t1ce.nii.gz", subject / f"{{name}}_flair.nii.gz",
                 subject / f"{{name}}_{{args.a}}_seg.nii.gz", et_label=4)
'''


def _site(tmp_path):
    labels = write_labels(tmp_path / "labels")
    return labels, write_predictions(tmp_path / "constant", constant=True)


def _script(name: str) -> str:
    return str(ROOT / "scripts" / "segmenters" / name)


def test_the_brats_wrapper_runs_the_package_batch_api(tmp_path, monkeypatch):
    package = tmp_path / "stub" / "brats"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(BRATS_STUB)
    (package / "constants.py").write_text(BRATS_CONSTANTS_STUB)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "stub"))
    labels, constant = _site(tmp_path)
    command = shlex.join([sys.executable, _script("brats_segment.py"), "{input}", "{output}", "--force-cpu"])
    evaluation = evaluate(constant, labels, segmenter=parse_segmenter(f"cmd:{command}"), pictures=False)
    for case in evaluation.runs[0].cases:
        assert case.problems == [] and case.scores["dice_real_ET"] == 1.0
    assert next(c for c in evaluation.runs[0].cases if c.case_id == "A-1").scores["dice_completed_ET"] == 0.0


def test_the_fets_wrapper_renames_runs_the_cli_and_reads_its_outputs(tmp_path):
    cli = tmp_path / "FeTS_CLI_Segment"
    cli.write_text(f"#!{sys.executable}\n{FETS_STUB}")
    cli.chmod(0o755)
    labels, constant = _site(tmp_path)
    command = shlex.join([sys.executable, _script("fets_segment.py"), "{input}", "{output}", "--fets-cli", str(cli)])
    mapped = evaluate(constant, labels, segmenter=parse_segmenter(f"cmd:{command}", relabel="4=3"), pictures=False)
    for case in mapped.runs[0].cases:
        assert case.problems == [] and case.scores["dice_real_ET"] == 1.0 and case.scores["dice_real_WT"] == 1.0
    assert len(mapped.runs[0].cases) == len(CASES)
