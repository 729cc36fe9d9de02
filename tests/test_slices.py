"""Slice dataset: padding maths, cache contents and reuse, slice selection, split, normalization."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from conftest import tiny_volumes

import brasyn.data.slices as slices_module
from brasyn.constants import MODALITIES, Modality, sources_for
from brasyn.data.cases import discover_cases, load_case, read_case_folder
from brasyn.data.normalization import DEFAULT_HEADROOM, Normalization, brain_mask, robust_scale
from brasyn.data.slices import (
    CacheOptions,
    SliceDataset,
    build_slice_cache,
    fit_intensity_model,
    split_cases,
)
from brasyn.data.slicing import BACKGROUND, PadRecord, crop_slices, pad_slices
from brasyn.errors import ContractError, GeometryError, InputError

SHAPE = (48, 48, 12)
SIZE = 64


@pytest.fixture
def cohort(case_factory):
    for i in range(3):
        case_factory(f"Case-{i}", shape=SHAPE, seed=i, with_labels=True)
    return case_factory.root


# ---- pad / crop ---------------------------------------------------------------------------------


def test_pad_record_of_brats_slices_is_centred():
    record = PadRecord.for_shape(240, 240, 256)
    assert (record.top, record.bottom, record.left, record.right) == (8, 8, 8, 8)
    odd = PadRecord.for_shape(45, 50, 64)
    assert (odd.top, odd.bottom, odd.left, odd.right) == (9, 10, 7, 7)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_pad_then_crop_is_exact(as_tensor):
    rng = np.random.default_rng(0)
    array = rng.uniform(-1, 1, size=(2, 3, 45, 50)).astype(np.float32)
    data = torch.from_numpy(array) if as_tensor else array
    padded, record = pad_slices(data, 64)
    assert tuple(padded.shape) == (2, 3, 64, 64)
    padded_np = padded.numpy() if as_tensor else padded
    inside = np.zeros((64, 64), bool)
    inside[9:54, 7:57] = True
    assert np.all(padded_np[..., ~inside] == BACKGROUND)
    back = crop_slices(padded, record)
    back_np = back.numpy() if as_tensor else back
    np.testing.assert_array_equal(back_np, array)


def test_pad_value_for_labels_is_configurable():
    labels = np.ones((10, 10), np.uint8)
    padded, _ = pad_slices(labels, 16, value=0)
    assert padded.dtype == np.uint8 and padded.sum() == 100 and padded[0, 0] == 0


def test_pad_rejects_slices_larger_than_the_model():
    with pytest.raises(GeometryError) as info:
        pad_slices(np.zeros((3, 300, 240)), 256)
    assert "300 x 240" in str(info.value)


def test_crop_rejects_a_wrong_shape():
    _, record = pad_slices(np.zeros((40, 40)), 64)
    with pytest.raises(ContractError):
        crop_slices(np.zeros((2, 60, 64)), record)


# ---- cache and dataset --------------------------------------------------------------------------


def _expected_slices(seed: int, *, tumour_only: bool = True) -> list[int]:
    images, seg = tiny_volumes(SHAPE, seed)
    select = seg > 0 if tumour_only else brain_mask(list(images.values()))
    return [int(k) for k in np.flatnonzero(select.any(axis=(0, 1)))]


def _stored_volumes(root, case_id):
    """The volumes as written to disk (int16-rounded), read back independently of the cache."""
    volumes = load_case(read_case_folder(root / case_id), with_labels=True)
    return volumes.images, volumes.seg


def test_tumour_slices_selected_and_stored(cohort, tmp_path):
    cached = build_slice_cache(discover_cases(cohort), tmp_path / "cache", CacheOptions(dtype="float32"))
    assert [c.case_id for c in cached] == ["Case-0", "Case-1", "Case-2"]
    for seed, case in enumerate(cached):
        assert list(case.slice_indices) == _expected_slices(seed)
        assert 0 < case.n_slices < SHAPE[2]  # the phantom's tumour does not reach every slice
        images, seg = case.images(), case.seg()
        assert isinstance(images, np.memmap)
        h, w = case.bbox[1] - case.bbox[0], case.bbox[3] - case.bbox[2]
        assert images.shape == (case.n_slices, 4, h, w) and seg.shape == (case.n_slices, h, w)
        assert all(seg[j].max() > 0 for j in range(case.n_slices))


def test_all_brain_slices_option(cohort, tmp_path):
    cached = build_slice_cache(
        discover_cases(cohort), tmp_path / "cache", CacheOptions(tumour_slices_only=False, dtype="float32")
    )
    assert list(cached[0].slice_indices) == _expected_slices(0, tumour_only=False)
    assert cached[0].n_slices > len(_expected_slices(0))


@pytest.mark.parametrize("target", list(Modality))
def test_dataset_items_are_padded_normalized_slices(cohort, tmp_path, target):
    cached = build_slice_cache(discover_cases(cohort), tmp_path / "cache", CacheOptions(dtype="float32"))
    dataset = SliceDataset(cached, target, SIZE)
    assert len(dataset) == sum(c.n_slices for c in cached)
    sample = dataset[3]
    assert sample.sources.shape == (3, SIZE, SIZE) and sample.sources.dtype == torch.float32
    assert sample.target.shape == (1, SIZE, SIZE) and sample.seg.shape == (SIZE, SIZE)
    assert sample.seg.dtype == torch.int64
    # hand computation: divide the full volume by 2 x its 99.5th brain percentile, take the axial slice, pad with -1
    case_id, axial, record = dataset.locate(3)
    images, seg = _stored_volumes(cohort, case_id)
    mask = brain_mask(list(images.values()))
    scales = {m: DEFAULT_HEADROOM * np.percentile(images[m][mask & (images[m] > 0)], 99.5) for m in MODALITIES}
    expected = {m: (images[m] / scales[m] * 2 - 1)[:, :, axial] for m in MODALITIES}
    expected = {m: np.where(images[m][:, :, axial] > 0, v, -1.0) for m, v in expected.items()}
    for channel, modality in enumerate(sources_for(target)):
        np.testing.assert_allclose(crop_slices(sample.sources[channel].numpy(), record), expected[modality], atol=1e-6)
    np.testing.assert_allclose(crop_slices(sample.target[0].numpy(), record), expected[target], atol=1e-6)
    np.testing.assert_array_equal(crop_slices(sample.seg.numpy(), record), seg[:, :, axial])
    assert float(sample.sources.min()) == -1.0 and float(sample.sources.max()) > 0.0
    assert float(sample.sources[:, 0, 0].max()) == BACKGROUND  # padding corner


def test_float16_cache_is_close_to_float32(cohort, tmp_path):
    cases = discover_cases(cohort)
    exact = SliceDataset(build_slice_cache(cases, tmp_path / "a", CacheOptions(dtype="float32")), Modality.T1C, SIZE)
    half = SliceDataset(build_slice_cache(cases, tmp_path / "b", CacheOptions(dtype="float16")), Modality.T1C, SIZE)
    np.testing.assert_allclose(half[0].sources.numpy(), exact[0].sources.numpy(), atol=1e-3)


def test_cache_is_reused_without_reading_nifti(cohort, tmp_path, monkeypatch):
    calls = []
    real_load = slices_module.load_case

    def counting_load(case, **kwargs):
        calls.append(case.case_id)
        return real_load(case, **kwargs)

    monkeypatch.setattr(slices_module, "load_case", counting_load)
    cases = discover_cases(cohort)
    first = build_slice_cache(cases, tmp_path / "cache")
    assert sorted(calls) == ["Case-0", "Case-1", "Case-2"]
    calls.clear()
    second = build_slice_cache(discover_cases(cohort), tmp_path / "cache")
    assert calls == []
    assert second == first
    # a changed source file invalidates only its own case
    path = cases[1].images[Modality.T2F]
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    build_slice_cache(discover_cases(cohort), tmp_path / "cache")
    assert calls == ["Case-1"]
    calls.clear()
    # any changed option rebuilds everything: every field of CacheOptions is in the key
    for options in (
        CacheOptions(normalization=Normalization(percentile=99.0)),
        CacheOptions(normalization=Normalization(headroom=1.5)),
        CacheOptions(tumour_slices_only=False),
        CacheOptions(dtype="float32"),
    ):
        calls.clear()
        build_slice_cache(discover_cases(cohort), tmp_path / "cache", options)
        assert sorted(calls) == ["Case-0", "Case-1", "Case-2"], options
    # and so does a new cache version (the code that fills it changed)
    monkeypatch.setattr(slices_module, "CACHE_VERSION", slices_module.CACHE_VERSION + 1)
    calls.clear()
    build_slice_cache(discover_cases(cohort), tmp_path / "cache", CacheOptions(dtype="float32"))
    assert sorted(calls) == ["Case-0", "Case-1", "Case-2"]


def test_incomplete_cases_are_skipped_and_none_usable_is_an_error(case_factory, tmp_path):
    case_factory("Full", shape=SHAPE, with_labels=True)
    case_factory("NoSeg", shape=SHAPE)
    case_factory("ThreeMods", MODALITIES[:3], shape=SHAPE, with_labels=True)
    cached = build_slice_cache(discover_cases(case_factory.root), tmp_path / "cache")
    assert [c.case_id for c in cached] == ["Full"]
    with pytest.raises(InputError) as info:
        build_slice_cache(discover_cases(case_factory.root)[1:], tmp_path / "cache")
    assert "found none among 2" in str(info.value)


def test_dataset_pickles_without_open_memory_maps(cohort, tmp_path):
    cached = build_slice_cache(discover_cases(cohort), tmp_path / "cache")
    dataset = SliceDataset(cached, Modality.T2W, SIZE)
    first = dataset[0]
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone._arrays == {}
    torch.testing.assert_close(clone[0].target, first.target)


# ---- split and intensity model ------------------------------------------------------------------


def test_split_is_deterministic_disjoint_and_complete():
    ids = [f"C{i:02d}" for i in range(20)]
    train, val = split_cases(ids, 0.2, seed=3)
    assert (train, val) == split_cases(list(reversed(ids)), 0.2, seed=3)
    assert len(val) == 4 and not set(train) & set(val) and sorted(train + val) == ids
    assert split_cases(ids, 0.2, seed=4) != (train, val)


def test_split_edge_cases():
    assert split_cases(["A"], 0.5, seed=0) == (["A"], [])
    assert split_cases(["A", "B", "C"], 0.0, seed=0) == (["A", "B", "C"], [])
    train, val = split_cases(["A", "B"], 0.01, seed=0)  # at least one validation case
    assert len(train) == 1 and len(val) == 1
    train, val = split_cases(["A", "B"], 0.99, seed=0)  # at least one training case
    assert len(train) == 1 and len(val) == 1


def test_intensity_model_is_fitted_on_cached_scales(cohort, tmp_path):
    cached = build_slice_cache(discover_cases(cohort), tmp_path / "cache")
    for case in cached:
        images, _ = _stored_volumes(cohort, case.case_id)
        mask = brain_mask(list(images.values()))
        for m in MODALITIES:
            assert case.scales[m] == pytest.approx(DEFAULT_HEADROOM * robust_scale(images[m], mask))
    model = fit_intensity_model(cached, Modality.T1C)
    assert model.sources == sources_for(Modality.T1C) and model.n_cases == 3
    predicted = model.predict_scale(cached[0].scales)
    assert predicted == pytest.approx(cached[0].scales[Modality.T1C], rel=0.05)


def test_parallel_cache_build_matches_serial(cohort, tmp_path):
    cases = discover_cases(cohort)
    serial = build_slice_cache(cases, tmp_path / "serial")
    parallel = build_slice_cache(cases, tmp_path / "parallel", workers=2)
    assert [(c.case_id, c.bbox, c.slice_indices, c.scales) for c in parallel] == [
        (c.case_id, c.bbox, c.slice_indices, c.scales) for c in serial
    ]
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a.images(), b.images())


def test_dataset_keeps_a_bounded_number_of_cases_open(cohort, tmp_path, monkeypatch):
    monkeypatch.setattr(slices_module, "OPEN_CASES", 2)
    cached = build_slice_cache(discover_cases(cohort), tmp_path / "cache")
    assert len(cached) >= 3
    dataset = slices_module.SliceDataset(cached, Modality.T2F, 64)
    first_of = {dataset.index[i][0]: i for i in reversed(range(len(dataset)))}
    for k in (0, 1, 2, 0):
        dataset[first_of[k]]
    assert list(dataset._arrays) == [2, 0]  # case 1, the least recently used, was closed


def test_training_and_inference_feed_the_network_the_same_normalized_sources(cohort, tmp_path):
    from brasyn.data.normalization import IntensityModel
    from brasyn.inference.predictor import Predictor

    target = Modality.T2F
    dataset = SliceDataset(
        build_slice_cache(discover_cases(cohort), tmp_path / "cache", CacheOptions(dtype="float32")), target, SIZE
    )
    case_id, axial, record = dataset.locate(2)
    images, _ = _stored_volumes(cohort, case_id)
    intensity = IntensityModel(target=target, sources=sources_for(target), intercept=0.0, coefficients=(1 / 3,) * 3)
    predictor = Predictor(torch.nn.Identity(), target=target, intensity_model=intensity, image_size=SIZE)
    prepared = predictor.prepare({m: images[m] for m in sources_for(target)}, case_id=case_id)
    row = int(np.flatnonzero(prepared.positions == axial)[0])
    np.testing.assert_allclose(prepared.slices[row], dataset[2].sources.numpy(), atol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_loader_batches_equal_the_stacked_items(cohort, tmp_path, monkeypatch, dtype):
    from torch.utils.data import DataLoader

    monkeypatch.setattr(slices_module, "_SERIAL_ELEMENTS", 100)  # several row blocks per slice
    cached = build_slice_cache(discover_cases(cohort), tmp_path / "cache", CacheOptions(dtype=dtype))
    dataset = SliceDataset(cached, Modality.T2W, SIZE)
    order = [5, 0, 9, 2, 7, 1]
    loader = DataLoader(dataset, batch_size=3, sampler=order, collate_fn=slices_module.collate_slices)
    batches = list(loader)
    assert len(batches) == 2
    for k, batch in enumerate(batches):
        items = [dataset[i] for i in order[3 * k : 3 * k + 3]]
        assert batch.sources.shape == (3, 3, SIZE, SIZE) and batch.target.shape == (3, 1, SIZE, SIZE)
        assert batch.seg.shape == (3, SIZE, SIZE) and batch.seg.dtype == torch.int64
        stacked = slices_module.collate_slices(items)
        for got, expected in zip(batch, stacked, strict=True):
            assert torch.equal(got, expected)
    reference = np.asarray(cached[0].images()[0], dtype=np.float32)  # (4, h, w) as stored
    r0, r1, c0, c1 = cached[0].bbox
    pad = dataset.pads[0]
    first = dataset[0].sources[:, pad.top + r0 : pad.top + r1, pad.left + c0 : pad.left + c1].numpy()
    np.testing.assert_array_equal(first, reference[[MODALITIES.index(m) for m in sources_for(Modality.T2W)]])
