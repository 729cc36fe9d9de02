"""The generator's background composite (`model.composite_background`): outside the sources' brain
the image is the background and no loss reaches the network from there; inside it is the network's
output; inference writes the same volume with or without it; off in the presets and in checkpoints
from before the switch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from conftest import tiny_volumes
from inference_helpers import hand_intensity_model

from brasyn.checkpoint import Checkpoint
from brasyn.constants import Modality, sources_for
from brasyn.data.normalization import BACKGROUND
from brasyn.inference import InferenceSettings, Predictor
from brasyn.models import Generator, ModelConfig
from brasyn.training import load_training_setup

TINY_MODEL = load_training_setup("tiny").model


def _pair() -> tuple[Generator, Generator]:
    """(paper generator, composite generator) with the same weights, in eval mode."""
    plain = Generator.from_config(TINY_MODEL).eval()
    composite = Generator.from_config(ModelConfig(**{**TINY_MODEL.__dict__, "composite_background": True})).eval()
    composite.load_state_dict(plain.state_dict())
    return plain, composite


def _sources() -> torch.Tensor:
    """(2, 3, 64, 64): brain in rows 8-55, cols 8-55; column 4 is brain in the second source only."""
    sources = torch.full((2, 3, 64, 64), BACKGROUND)
    sources[:, :, 8:56, 8:56] = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8
    sources[:, 1, 8:56, 4] = 0.2
    return sources


def test_composite_background_is_off_in_every_preset_and_in_older_checkpoints(tmp_path):
    for preset in ("paper", "synthetic", "synthetic_wide", "synthetic_robust", "demo", "tiny"):
        assert load_training_setup(preset).model.composite_background is False, preset
    raw = torch.load(Path(__file__).parents[1] / "workspace" / "additional_files" / "brasyn_t1c.pt", weights_only=True)
    raw["model_config"].pop("composite_background", None)
    torch.save(raw, tmp_path / "brasyn_t1c.pt")
    checkpoint = Checkpoint.load(tmp_path / "brasyn_t1c.pt", target=Modality.T1C)
    assert checkpoint.model_config["composite_background"] is False


def test_the_image_is_background_outside_the_sources_brain_and_the_network_output_inside():
    plain, composite = _pair()
    sources = _sources()
    with torch.no_grad():
        free, composed = plain(sources).image, composite(sources).image
    brain = (sources > BACKGROUND).any(dim=1, keepdim=True)
    assert brain[:, :, 8:56, 4].all() and not brain[:, :, :8].any()  # one non-background source is brain
    assert (composed[~brain] == BACKGROUND).all()
    assert (free[~brain] != BACKGROUND).any()  # the paper's network draws its own background
    torch.testing.assert_close(composed[brain], free[brain], rtol=0, atol=0)


def test_no_gradient_reaches_the_network_from_the_background():
    plain, composite = _pair()
    sources = _sources()
    background = ~(sources > BACKGROUND).any(dim=1, keepdim=True)
    for generator, reaches in ((plain, True), (composite, False)):
        generator.zero_grad()
        image = generator(sources, with_segmentation=False).image
        (image - 1.0).abs()[background].mean().backward()  # an L1 term on the background alone
        norm = sum(p.grad.abs().sum() for p in generator.decoder.parameters() if p.grad is not None)
        assert bool(norm > 0) is reaches, generator.config.composite_background


def test_inference_writes_the_same_volume_with_or_without_the_composite():
    """`Predictor.restore` zeroes the outside of the brain anyway: the switch changes training only."""
    target = Modality.T2F
    images, _ = tiny_volumes((40, 48, 6), seed=3)
    sources = {m: images[m] for m in sources_for(target)}
    volumes = []
    for generator in _pair():
        predictor = Predictor(generator, target=target, intensity_model=hand_intensity_model(target), image_size=64,
                              settings=InferenceSettings(device="cpu", mirror_axes=(), batch_size=2))
        volumes.append(predictor.predict(sources).image)
    assert (volumes[0] != 0).sum() > 1000
    np.testing.assert_array_equal(volumes[0], volumes[1])
