"""Independent tumour segmenters for BraSyn's second criterion, behind one tiny interface.

A segmenter reads a folder of cases laid out in its input layout and writes one label map per case
(0 background, 1 NCR, 2 ED, 3 ET) into an output folder:

    segmenter.segment(input_dir, output_dir)

Specs (`--segmenter SPEC` of `brasyn evaluate`):

- `bundled` / `bundled:PATH`: the bundled 2-D U-Net (`brasyn segmenter fit`), run in this process;
- `cmd:TEMPLATE`: any program, e.g. `cmd:python run_seg.py {input} {output}`; the template is split
  like a shell line (`shlex`) but run without a shell, `{input}` and `{output}` replaced by the two
  folders. Its layout is `brats` (`A/A-t1n.nii.gz`, `A/A-t1c.nii.gz`, ... per case folder) or
  `nnunet` (flat `A_0000.nii.gz` .. `A_0003.nii.gz`, channels in a given order).

Label maps are read back as `{output}/A.nii.gz` or `{output}/A-seg.nii.gz` (`.nii` too), in the
BraTS 2023 labels; `relabel` (`--segmenter-labels 4=3` for BraTS 2017-2021 maps with ET = 4, `1=2,2=1`
for nnU-Net's BraTS 2021 dataset convention, 1 ED / 2 NCR / 3 ET) maps other conventions onto them.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from brasyn.constants import MODALITIES, NIFTI_EXTENSIONS, SEG_SUFFIX, Modality
from brasyn.errors import CheckpointError, ConfigError

logger = logging.getLogger(__name__)

LAYOUTS = ("brats", "nnunet")


class Segmenter(Protocol):
    """Anything that turns a folder of laid-out cases into a folder of label maps."""

    description: str
    layout: Layout
    relabel: tuple[tuple[int, int], ...]

    def segment(self, input_dir: Path, output_dir: Path) -> None:
        """Segment every case of `input_dir` into `output_dir`; raise `SegmenterFailure` when the run fails."""
        ...


class SegmenterFailure(Exception):
    """A segmenter run failed as a whole (the message is one line naming the command and the reason)."""


@dataclass(frozen=True)
class Layout:
    """How a case's four sequences are named in the segmenter's input folder."""

    kind: str = "brats"
    channels: tuple[Modality, ...] = MODALITIES
    """nnunet only: the sequence of channel 0000, 0001, ... (the order the nnU-Net model was trained with)."""

    def __post_init__(self) -> None:
        if self.kind not in LAYOUTS:
            raise ConfigError(f"--segmenter-layout: expected one of {', '.join(LAYOUTS)}, found {self.kind!r}")
        if sorted(self.channels) != sorted(MODALITIES) or len(self.channels) != len(MODALITIES):
            names = ",".join(m.value for m in self.channels)
            raise ConfigError(f"--segmenter-channels: expected each of t1n, t1c, t2w, t2f once, found {names}")

    def names(self, case_id: str) -> dict[Modality, str]:
        """Relative path of each sequence of `case_id` inside the input folder."""
        if self.kind == "nnunet":
            return {m: f"{case_id}_{index:04d}.nii.gz" for index, m in enumerate(self.channels)}
        return {m: f"{case_id}/{case_id}-{m.value}.nii.gz" for m in MODALITIES}

    def place(self, case_id: str, images: Mapping[Modality, Path], input_dir: Path) -> None:
        """Copy a case's four files (byte for byte, inputs untouched) under their layout names."""
        for modality, name in self.names(case_id).items():
            source = Path(images[modality])
            target = Path(input_dir) / name
            if source.name.endswith(".nii") and not source.name.endswith(".nii.gz"):
                target = target.with_name(target.name[: -len(".gz")])  # keep the file's real encoding
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def parse_relabel(text: str) -> tuple[tuple[int, int], ...]:
    """"4=3" or "1=2,2=1" → ((source label, BraTS 2023 label), ...); every label not named stays as it is."""
    pairs = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        match = re.fullmatch(r"(\d+)=(\d+)", part)
        if match is None:
            raise ConfigError(f"--segmenter-labels: expected pairs like 4=3 or 1=2,2=1, found {part!r}")
        pairs.append((int(match[1]), int(match[2])))
    sources = [source for source, _ in pairs]
    if len(set(sources)) != len(sources):
        raise ConfigError(f"--segmenter-labels: a label is mapped twice in {text!r}")
    return tuple(pairs)


def apply_relabel(labels: np.ndarray, relabel: tuple[tuple[int, int], ...]) -> np.ndarray:
    """All pairs at once (so 1=2,2=1 swaps the two labels)."""
    if not relabel:
        return labels
    out = labels.copy()
    for source, target in relabel:
        out[labels == source] = target
    return out


def parse_channels(text: str) -> tuple[Modality, ...]:
    """"t1n,t1c,t2w,t2f" → the modalities in that order (`ConfigError` for an unknown name)."""
    try:
        return tuple(Modality.parse(part.strip()) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"--segmenter-channels: {exc}") from None


def find_label_map(output_dir: Path, case_id: str) -> Path | None:
    """`A.nii.gz` or `A-seg.nii.gz` (or `.nii`) in `output_dir`, else None."""
    for stem in (case_id, f"{case_id}-{SEG_SUFFIX}"):
        for extension in NIFTI_EXTENSIONS:
            path = Path(output_dir) / f"{stem}{extension}"
            if path.is_file():
                return path
    return None


@dataclass(frozen=True)
class CommandSegmenter:
    """An external program run once per set of cases: `template` with `{input}` and `{output}`."""

    template: str
    layout: Layout = Layout()
    relabel: tuple[tuple[int, int], ...] = ()
    timeout_seconds: float | None = None

    def __post_init__(self) -> None:
        if "{input}" not in self.template or "{output}" not in self.template:
            raise ConfigError(f"--segmenter cmd:{self.template}: the template needs both {{input}} and {{output}}")
        try:
            words = shlex.split(self.template)
        except ValueError as exc:
            raise ConfigError(f"--segmenter cmd:{self.template}: cannot split the command ({exc})") from None
        if not words:
            raise ConfigError("--segmenter cmd: the command template is empty")

    @property
    def description(self) -> str:
        return f"cmd:{self.template} ({self.layout.kind} layout)"

    def command(self, input_dir: Path, output_dir: Path) -> list[str]:
        return [
            word.replace("{input}", str(input_dir)).replace("{output}", str(output_dir))
            for word in shlex.split(self.template)
        ]

    def segment(self, input_dir: Path, output_dir: Path) -> None:
        argv = self.command(input_dir, output_dir)
        shown = shlex.join(argv)
        logger.info("segmenter: %s", shown)
        try:
            done = subprocess.run(
                argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=self.timeout_seconds
            )
        except FileNotFoundError:
            raise SegmenterFailure(f"segmenter command `{shown}`: program {argv[0]!r} not found") from None
        except subprocess.TimeoutExpired:
            raise SegmenterFailure(f"segmenter command `{shown}`: timed out after {self.timeout_seconds} s") from None
        for line in (done.stdout or "").splitlines():
            logger.debug("segmenter| %s", line)
        if done.returncode != 0:
            last = next((line for line in reversed((done.stdout or "").splitlines()) if line.strip()), "no output")
            raise SegmenterFailure(f"segmenter command `{shown}` exited with status {done.returncode}: {last.strip()}")


def spare_threads() -> int:
    """Cores left beside one busy thread (the evaluator's single-threaded SciPy scoring), at least 1."""
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True)
class BundledSegmenter:
    """The bundled 2-D U-Net, in this process (`brasyn segmenter fit` trains one)."""

    path: Path
    layout: Layout = Layout()
    relabel: tuple[tuple[int, int], ...] = ()
    threads: int | None = None
    """torch intra-op threads while it runs (None: torch's setting); restored afterwards."""

    @property
    def description(self) -> str:
        return f"bundled:{self.path}"

    def segment(self, input_dir: Path, output_dir: Path) -> None:
        import torch

        from brasyn.segmenter.predict import segment_folder

        previous = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            problems = segment_folder(self.path, input_dir, output_dir)
        finally:
            torch.set_num_threads(previous)
        for problem in problems:  # those cases have no map; the evaluator reports each one
            logger.warning("bundled segmenter: %s", problem)


def parse_segmenter(
    spec: str, *, layout: str = "brats", channels: str | Sequence[Modality] = MODALITIES, relabel: str = ""
) -> Segmenter:
    """`bundled`, `bundled:PATH` or `cmd:TEMPLATE` → a segmenter (`ConfigError` for anything else)."""
    order = parse_channels(channels) if isinstance(channels, str) else tuple(channels)
    mapping = parse_relabel(relabel)
    chosen = Layout(kind=layout, channels=order)
    kind, _, rest = spec.partition(":")
    if kind == "bundled":
        from brasyn.segmenter.model_file import default_segmenter_path

        if layout != "brats":
            raise ConfigError("--segmenter-layout: the bundled segmenter reads the brats layout only")
        path = Path(rest) if rest else default_segmenter_path()
        if not path.is_file():
            raise CheckpointError(f"--segmenter {spec}: {path} not found (train one with `brasyn segmenter fit`)")
        return BundledSegmenter(path, relabel=mapping, threads=spare_threads())
    if kind == "cmd" and rest.strip():
        return CommandSegmenter(rest, chosen, relabel=mapping)
    raise ConfigError(f"--segmenter: expected bundled, bundled:PATH or cmd:TEMPLATE, found {spec!r}")


@dataclass
class SetResult:
    """One segmenter run over a set of cases: each case's label map, or the reason it has none."""

    maps: dict[str, Path]
    errors: dict[str, str]


def segment_set(
    segmenter: Segmenter, cases: Mapping[str, Mapping[Modality, Path]], workdir: Path, name: str
) -> SetResult:
    """Lay out `cases` (case id → its four sequence files) in `workdir/name/input`, run the segmenter once
    on all of them, and find each case's map in `workdir/name/output`."""
    input_dir, output_dir = Path(workdir) / name / "input", Path(workdir) / name / "output"
    input_dir.mkdir(parents=True)
    output_dir.mkdir(parents=True)
    for case_id, images in cases.items():
        segmenter.layout.place(case_id, images, input_dir)
    failure = None
    if cases:
        try:
            segmenter.segment(input_dir, output_dir)
        except SegmenterFailure as exc:
            failure = str(exc)
            logger.error("%s set: %s", name, failure)
    result = SetResult(maps={}, errors={})
    for case_id in cases:
        found = find_label_map(output_dir, case_id)
        if found is not None:
            result.maps[case_id] = found
        elif failure is not None:
            result.errors[case_id] = f"{case_id}: no label map on the {name} set: {failure}"
        else:
            result.errors[case_id] = (
                f"{case_id}: segmenter {segmenter.description} wrote no label map for the {name} set"
                f" (expected {case_id}.nii.gz or {case_id}-{SEG_SUFFIX}.nii.gz)"
            )
    return result
