"""Predictor: one model on arrays. The maths of pre/post-processing (normalization, scale restoration,
padding and its exact crop), batching, the out-of-memory retry, and CUDA autocast."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from conftest import tiny_volumes
from inference_helpers import (
    COHORT_SHAPE,
    T2F,
    TARGET_FACTOR,
    Out,
    copy_predictor,
    hand_intensity_model,
    make_checkpoint,
)
from torch import nn

from brasyn.constants import MODALITIES, Modality, sources_for
from brasyn.data.normalization import DEFAULT_HEADROOM
from brasyn.inference import (
    InferenceError,
    InferenceSettings,
    Predictor,
)


class FlakyMemory(nn.Module):
    """Raises a CUDA-style out-of-memory error for batches larger than `limit`."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.sizes: list[int] = []

    def forward(self, x, *, with_segmentation=True):
        self.sizes.append(len(x))
        if len(x) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return Out(x[:, :1], None)


def test_normalization_and_scale_restoration_match_hand_computation():
    images, _ = tiny_volumes(COHORT_SHAPE, seed=3)
    sources = {m: images[m] for m in sources_for(T2F)}  # t1n, t1c, t2w
    prediction = copy_predictor(T2F, k=1).predict(sources)  # image = normalized t1c
    brain = np.zeros(COHORT_SHAPE, bool)
    for v in sources.values():
        brain |= v != 0
    scales = {m: DEFAULT_HEADROOM * float(np.percentile(v[brain & (v > 0)], 99.5)) for m, v in sources.items()}
    target_scale = TARGET_FACTOR * math.exp(np.mean(np.log(list(scales.values()))))
    t1c = sources[Modality.T1C]
    expected = np.clip(t1c / scales[Modality.T1C], 0, 1) * target_scale
    expected[~brain] = 0
    assert prediction.target_scale == pytest.approx(target_scale, rel=1e-6)
    np.testing.assert_allclose(prediction.image, expected, rtol=1e-4, atol=1e-2 * target_scale / 1000)
    assert (prediction.image[~brain] == 0).all()
    assert prediction.segmentation is None


def test_slices_without_brain_skip_the_network_and_stay_zero():
    images, _ = tiny_volumes(COHORT_SHAPE, seed=1)
    sources = {m: images[m].copy() for m in sources_for(T2F)}
    for v in sources.values():
        v[..., [0, 5, 11]] = 0  # three empty axial slices
    predictor = copy_predictor(T2F, batch_size=4, mirror_axes=())  # one pass per slice
    prediction = predictor.predict(sources)
    seen = torch.cat(predictor.model.seen)
    assert len(seen) == COHORT_SHAPE[2] - 3
    assert [len(s) for s in predictor.model.seen] == [4, 4, 1]
    assert tuple(seen.shape[1:]) == (3, 64, 64)  # padded to the model's image_size
    assert float(seen[:, :, :8, :].max()) == -1.0  # padding is normalized background
    assert (prediction.image[..., [0, 5, 11]] == 0).all()
    assert (prediction.image[..., 1] != 0).any()


def test_padding_is_cropped_back_exactly():
    """A model that writes each pixel's own (row, col) code proves the crop returns each voxel to its place."""

    class Coordinates(nn.Module):
        def forward(self, x, *, with_segmentation=False):
            size = x.shape[-1]
            rows = torch.arange(size).view(1, 1, size, 1).expand(len(x), 1, size, size)
            return Out((rows.float() / size) * 2 - 1)

    images, _ = tiny_volumes((40, 48, 6), seed=2)
    sources = {m: images[m] for m in sources_for(T2F)}
    predictor = Predictor(
        Coordinates(), target=T2F, intensity_model=hand_intensity_model(T2F), image_size=64,
        settings=InferenceSettings(mirror_axes=()),
    )
    prepared = predictor.prepare(sources)
    image, _ = predictor.run(prepared.slices)
    restored = predictor.restore(prepared, image, None)
    top = (64 - 40) // 2
    scale = prepared.target_scale
    row_code = (np.arange(40) + top) / 64  # (image + 1) / 2 of the padded row index
    expected = np.broadcast_to(row_code[:, None, None] * scale, (40, 48, 6)) * prepared.mask
    np.testing.assert_allclose(restored.image, expected, rtol=1e-5)


@pytest.mark.parametrize("target", MODALITIES)
def test_batched_equals_one_slice_at_a_time(target, tmp_path):
    path = make_checkpoint(tmp_path / "m.pt", target)
    images, _ = tiny_volumes(COHORT_SHAPE, seed=5)
    sources = {m: images[m] for m in sources_for(target)}
    one = Predictor.from_checkpoint(path, settings=InferenceSettings(batch_size=1)).predict(
        sources, with_segmentation=True
    )
    many = Predictor.from_checkpoint(path, settings=InferenceSettings(batch_size=7)).predict(
        sources, with_segmentation=True
    )
    np.testing.assert_allclose(one.image, many.image, rtol=1e-4, atol=1e-3)
    assert (one.segmentation == many.segmentation).mean() > 0.999


def test_out_of_memory_halves_the_batch_and_retries(caplog):
    images, _ = tiny_volumes(COHORT_SHAPE, seed=0)
    sources = {m: images[m] for m in sources_for(T2F)}
    model = FlakyMemory(limit=3)
    predictor = Predictor(
        model, target=T2F, intensity_model=hand_intensity_model(T2F), image_size=64,
        settings=InferenceSettings(batch_size=16, mirror_axes=()),
    )
    reference = copy_predictor(T2F, batch_size=16).predict(sources)
    with caplog.at_level(logging.WARNING):
        prediction = predictor.predict(sources)
    n = len(predictor.prepare(sources).slices)
    assert n > 8
    assert predictor.batch_size == 2
    assert model.sizes[:4] == [n, 8, 4, 2]  # 16 (all n slices) fails, 8 fails, 4 fails, 2 works
    assert sum(model.sizes[3:]) == n
    for size in (8, 4, 2):
        assert f"retrying with batch size {size}" in caplog.text
    np.testing.assert_allclose(prediction.image, reference.image, rtol=1e-6)


def test_out_of_memory_at_batch_one_is_a_clear_error():
    images, _ = tiny_volumes(COHORT_SHAPE, seed=0)
    predictor = Predictor(FlakyMemory(limit=0), target=T2F, intensity_model=hand_intensity_model(T2F), image_size=64)
    with pytest.raises(InferenceError) as info:
        predictor.predict({m: images[m] for m in sources_for(T2F)})
    assert "batch size 1" in str(info.value)


class Marked(nn.Module):
    """Image 0.5 x channel 0 + 0.25 x a fixed lopsided map; seg logits 4 x the map in class 1 only.
    Not flip-equivariant, so each mirrored pass contributes a different term."""

    def __init__(self, size: int) -> None:
        super().__init__()
        rows = torch.linspace(-1, 1, size).view(size, 1)
        cols = torch.linspace(-1, 1, size).view(1, size)
        self.register_buffer("map", (rows**3 + 0.5 * cols).clamp(-1, 1))  # (S, S), no symmetry

    def forward(self, x, *, with_segmentation=False):
        image = 0.5 * x[:, :1] + 0.25 * self.map
        logits = torch.zeros(len(x), 4, *x.shape[-2:])
        logits[:, 1] = 4 * self.map
        return Out(image, logits)


@pytest.mark.parametrize("axes", [(), (0,), (1,), (0, 1)])
def test_mirroring_averages_the_mirrored_passes(axes):
    """Hand-computed: the input term comes back in place (each pass is mirrored back), the lopsided
    term is the mean of its mirror images, and the labels are the argmax of the mean probabilities."""
    size = 16
    rng = np.random.default_rng(0)
    slices = rng.uniform(-1, 1, (3, 3, size, size)).astype(np.float32)
    predictor = Predictor(
        Marked(size), target=T2F, intensity_model=hand_intensity_model(T2F), image_size=size,
        settings=InferenceSettings(mirror_axes=axes),
    )
    image, labels = predictor.run(slices, with_segmentation=True)

    lopsided = predictor.model.map.numpy()
    flips = [(), (0,), (1,), (0, 1)] if len(axes) == 2 else [(), axes] if axes else [()]
    mirrored = [np.flip(lopsided, f) if f else lopsided for f in flips]
    expected = 0.5 * slices[:, 0] + 0.25 * np.mean(mirrored, axis=0)
    np.testing.assert_allclose(image, expected, atol=1e-6)
    probability = np.mean([1 / (1 + 3 * np.exp(-4 * m)) for m in mirrored], axis=0)  # class 1 vs three 0-logits
    expected_labels = np.where(probability > (1 - probability) / 3, 1, 0)  # class 1 vs each of the other three
    assert (labels == expected_labels[None]).all()
    assert len(predictor.mirrors) == 2 ** len(axes)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_autocast_agrees_with_cpu(tmp_path):
    path = make_checkpoint(tmp_path / "m.pt", T2F)
    images, _ = tiny_volumes(COHORT_SHAPE, seed=5)
    sources = {m: images[m] for m in sources_for(T2F)}
    cpu = Predictor.from_checkpoint(path, settings=InferenceSettings(device="cpu")).predict(sources)
    gpu_predictor = Predictor.from_checkpoint(path, settings=InferenceSettings(device="cuda", precision="auto"))
    assert gpu_predictor.autocast_dtype in (torch.bfloat16, torch.float16)
    gpu = gpu_predictor.predict(sources)
    assert np.abs(gpu.image - cpu.image).max() < 0.05 * cpu.target_scale
    assert (gpu.image[cpu.image == 0] == 0).all()
