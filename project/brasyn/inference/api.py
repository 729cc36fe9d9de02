"""One-call Python API in the spirit of the `brats` package's `MissingMRI.infer_single`."""

from __future__ import annotations

import logging
from pathlib import Path

from brasyn.checkpoint import checkpoint_filename
from brasyn.constants import MODALITIES, Modality
from brasyn.data.cases import Case, load_case
from brasyn.errors import MissingModalityError, OutputError
from brasyn.inference.predictor import Predictor
from brasyn.inference.settings import InferenceSettings
from brasyn.inference.weights import default_weights_dir
from brasyn.inference.writer import write_prediction

logger = logging.getLogger(__name__)


def synthesize(
    *,
    output_file: Path | str,
    t1n: Path | str | None = None,
    t1c: Path | str | None = None,
    t2w: Path | str | None = None,
    t2f: Path | str | None = None,
    weights: Path | str | None = None,
    segmentation_file: Path | str | None = None,
    settings: InferenceSettings | None = None,
) -> Path:
    """Synthesize the one modality not given from exactly three NIfTI files; returns `output_file`.

    Example: `synthesize(t1n="a-t1n.nii.gz", t1c="a-t1c.nii.gz", t2w="a-t2w.nii.gz", output_file="a-t2f.nii.gz")`
    writes the T2-FLAIR (int16, the inputs' geometry). `weights` is the folder of `brasyn_{target}.pt`
    checkpoints; `segmentation_file` also writes the tumour map (labels 0-3). `settings` says how to
    run (e.g. `InferenceSettings(device="cpu", mirror_axes=())`; its folder and progress options are
    for `synthesize_folder`). Errors are `BrasynError`s.
    """
    given = {Modality.T1N: t1n, Modality.T1C: t1c, Modality.T2W: t2w, Modality.T2F: t2f}
    images = {m: Path(p) for m, p in given.items() if p is not None}
    if len(images) != 3:
        found = ", ".join(m.value for m in MODALITIES if m in images) or "none"
        raise MissingModalityError(
            f"synthesize: expected exactly 3 of t1n/t1c/t2w/t2f, found {len(images)} ({found}); "
            "give the three available images and leave out the missing one"
        )
    target = next(m for m in MODALITIES if m not in images)
    output_file = Path(output_file)
    if output_file.resolve() in {p.resolve() for p in images.values()}:
        raise OutputError(f"{output_file}: output_file must not be one of the inputs")
    weights = Path(weights) if weights is not None else default_weights_dir()
    predictor = Predictor.from_checkpoint(weights / checkpoint_filename(target), target=target, settings=settings)

    case_id = output_file.name.split(".")[0]
    case = Case(case_id=case_id, folder=output_file.parent, images=images)
    volumes = load_case(case, modalities=tuple(images))
    prediction = predictor.predict(volumes.images, with_segmentation=segmentation_file is not None, case_id=case_id)
    output_file.parent.mkdir(parents=True, exist_ok=True)
    segmentation_file = Path(segmentation_file) if segmentation_file is not None else None
    if segmentation_file is not None:
        segmentation_file.parent.mkdir(parents=True, exist_ok=True)
    write_prediction(prediction, volumes.geometry, output_file, segmentation_file)
    logger.info("%s: %s synthesized -> %s", case_id, target, output_file)
    return output_file
