"""Helpers for the inference, MLCube and container tests: random-initialised tiny checkpoints, a
small synthetic validation cohort (one modality dropped per case, as the BraSyn preparation does),
and stand-in models whose output is known by construction."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch
from conftest import write_case
from torch import nn

from brasyn.checkpoint import Checkpoint, checkpoint_filename
from brasyn.constants import MODALITIES, Modality, image_filename, sources_for
from brasyn.data.normalization import IntensityModel, Normalization
from brasyn.inference import InferenceSettings, Predictor
from brasyn.io.nifti import load_volume

COHORT_SHAPE = (48, 48, 12)  # fits the tiny model's 64 x 64 slices
TARGET_FACTOR = 2.0  # the hand-made intensity model: target scale = 2 x geometric mean of source scales
T2F = Modality.T2F


def hand_intensity_model(target: Modality) -> IntensityModel:
    """log s_t = log 2 + mean(log s_i): the target's scale is twice the sources' geometric mean."""
    return IntensityModel(
        target=target,
        sources=sources_for(target),
        intercept=math.log(TARGET_FACTOR),
        coefficients=(1 / 3, 1 / 3, 1 / 3),
        n_cases=0,
    )


def make_checkpoint(path: Path, target: Modality, *, seed: int = 0, **config_overrides) -> Path:
    """A random-initialised tiny PLAVE generator for `target`, saved with the real checkpoint schema."""
    from brasyn.models.config import ModelConfig
    from brasyn.models.generator import Generator

    torch.manual_seed(seed)
    config = ModelConfig.tiny(**config_overrides)
    model = Generator.from_config(config)
    checkpoint = Checkpoint.of_model(
        kind="plave",
        target=target,
        model=model,
        model_config=config.to_dict(),
        intensity_model=hand_intensity_model(target),
        normalization=Normalization(),
    )
    return checkpoint.save(path)


def make_weights(folder: Path, targets=MODALITIES, **config_overrides) -> Path:
    """A weights folder holding `brasyn_{target}.pt` for each of `targets`."""
    folder = Path(folder)
    for k, target in enumerate(targets):
        make_checkpoint(folder / checkpoint_filename(target), Modality(target), seed=k, **config_overrides)
    return folder


def write_cohort(root: Path, n_cases: int = 4, *, shape=COHORT_SHAPE, prefix: str = "BraTS-GLI") -> dict[str, Modality]:
    """`n_cases` validation-style cases under `root`, case k missing MODALITIES[k % 4]; returns case -> missing."""
    missing = {}
    for k in range(n_cases):
        case_id = f"{prefix}-{k:05d}-000"
        dropped = MODALITIES[k % len(MODALITIES)]
        write_case(root, case_id, tuple(m for m in MODALITIES if m != dropped), shape=shape, seed=k)
        missing[case_id] = dropped
    return missing


def expected_names(missing: dict[str, Modality]) -> list[str]:
    return sorted(image_filename(case, target) for case, target in missing.items())


def check_prediction_folder(output: Path, data: Path, missing: dict[str, Modality]) -> None:
    """The BraSyn output contract: exact names, nothing else, source geometry, background 0, finite."""
    names = sorted(p.name for p in Path(output).iterdir())
    assert names == expected_names(missing), names
    for case_id, target in missing.items():
        pred, geometry = load_volume(Path(output) / image_filename(case_id, target))
        sources = [load_volume(Path(data) / case_id / image_filename(case_id, m)) for m in sources_for(target)]
        reference = sources[0][1]
        assert geometry.shape == reference.shape
        assert np.allclose(geometry.affine, reference.affine)
        assert np.isfinite(pred).all()
        brain = np.zeros(reference.shape, bool)
        for volume, _ in sources:
            brain |= volume != 0
        assert (pred[~brain] == 0).all()
        assert pred[brain].max() > 0
        import nibabel as nib

        assert nib.load(str(Path(output) / image_filename(case_id, target))).get_data_dtype() == np.int16


def tree(root: Path) -> dict[str, str]:
    """Every file under root -> sha256 of its bytes (to prove inputs are untouched)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


class Out:
    """What a model's forward returns (the fields the engine reads)."""

    def __init__(self, image, seg_logits=None):
        self.image, self.seg_logits = image, seg_logits


class CopyChannel(nn.Module):
    """A 'model' whose synthesized image is source channel k (no with_segmentation keyword: kind-agnostic path)."""

    def __init__(self, k: int = 0) -> None:
        super().__init__()
        self.k = k
        self.seen: list[torch.Tensor] = []

    def forward(self, x, *, with_segmentation=False):
        self.seen.append(x.clone())
        return Out(x[:, self.k : self.k + 1])


def copy_predictor(target=T2F, k=0, image_size=64, **settings) -> Predictor:
    """A Predictor around `CopyChannel(k)` with the hand-made intensity model; `settings` are
    `InferenceSettings` fields."""
    return Predictor(
        CopyChannel(k),
        target=target,
        intensity_model=hand_intensity_model(target),
        image_size=image_size,
        settings=InferenceSettings(**settings),
    )
