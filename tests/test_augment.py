"""Training augmentation: one spatial transform for sources, target and labels; intensity of the
sources only; every switch off is the identity; seeded; wired into the dataset and the presets."""

from __future__ import annotations

import time

import numpy as np
import pytest

from brasyn.data.augment import Augmentation, IntensityAugmentation, SpatialAugmentation, augment_slice
from brasyn.data.normalization import BACKGROUND
from brasyn.errors import ConfigError
from brasyn.training.config import PRESETS, load_training_setup

SIZE = 32


def _slice(seed: int = 0):
    """Sources (3, S, S) and target (1, S, S) in [-1, 1] with a disc of brain, labels inside it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    brain = (yy - 15.5) ** 2 + (xx - 13.5) ** 2 < 12**2
    ramp = (xx / SIZE - 0.5)[None]
    images = np.where(brain, 0.2 * ramp + 0.1 * rng.standard_normal((4, SIZE, SIZE)), BACKGROUND).astype(np.float32)
    labels = np.zeros((SIZE, SIZE), dtype=np.int64)
    labels[(yy - 13) ** 2 + (xx - 12) ** 2 < 81] = 2
    labels[(yy - 13) ** 2 + (xx - 12) ** 2 < 36] = 3
    labels[(yy - 13) ** 2 + (xx - 12) ** 2 < 6] = 1
    return images[:3], images[3:], labels


ALL_SPATIAL = SpatialAugmentation(p_flip=1.0, p_rotation=1.0, p_scale=1.0, p_elastic=1.0)
ALL_INTENSITY = IntensityAugmentation(
    p_gamma=1.0, p_brightness=1.0, p_contrast=1.0, p_bias=1.0, p_noise=1.0, p_blur=1.0, p_low_resolution=1.0
)


def test_every_switch_off_is_the_identity_and_draws_nothing():
    sources, target, labels = _slice()
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    out = augment_slice(sources, target, labels, Augmentation(), rng)
    assert out[0] is sources and out[1] is target and out[2] is labels
    assert rng.bit_generator.state == state
    assert not Augmentation().enabled
    # a transform whose probability is 0 is never applied, whatever its range
    wide = SpatialAugmentation(rotation_deg=90.0, scale_range=(0.5, 2.0), elastic_magnitude_px=20.0)
    assert not Augmentation(spatial=wide).enabled


@pytest.mark.parametrize(
    "spatial",
    [
        SpatialAugmentation(p_flip=1.0),
        SpatialAugmentation(p_rotation=1.0, rotation_deg=30.0),
        SpatialAugmentation(p_scale=1.0, scale_range=(0.7, 0.8)),
        SpatialAugmentation(p_elastic=1.0, elastic_magnitude_px=3.0),
        ALL_SPATIAL,
    ],
)
def test_spatial_transform_is_identical_for_sources_target_and_labels(spatial):
    sources, target, labels = _slice()
    # the target is a copy of the first source and the labels are painted into the second: the
    # same transform must keep both relations exactly (images bilinear, labels nearest)
    target = sources[:1].copy()
    sources = sources.copy()
    sources[1] = np.where(labels > 0, labels.astype(np.float32) / 4.0, sources[1])
    out_sources, out_target, out_labels = augment_slice(
        sources, target, labels, Augmentation(spatial=spatial), np.random.default_rng(5)
    )
    assert not np.array_equal(out_sources, sources)  # something moved
    np.testing.assert_array_equal(out_target[0], out_sources[0])
    assert out_labels.dtype == labels.dtype and set(np.unique(out_labels)) <= {0, 1, 2, 3}
    assert (out_labels == 3).any()
    # the bilinear image painted with the labels agrees with the nearest-neighbour labels away from
    # the region borders (a different transform for the two would leave a fraction far lower)
    inside = (out_labels > 0) | (np.round(out_sources[1] * 4) > 0)
    agree = np.round(out_sources[1][inside] * 4) == out_labels[inside]
    assert agree.mean() > 0.75
    assert out_sources.min() >= BACKGROUND - 1e-6 and (out_sources == BACKGROUND).any()


def test_flip_is_exact():
    sources, target, labels = _slice()
    out = augment_slice(sources, target, labels, Augmentation(spatial=SpatialAugmentation(p_flip=1.0)),
                        np.random.default_rng(0))
    np.testing.assert_array_equal(out[0], sources[:, ::-1, ::-1])
    np.testing.assert_array_equal(out[2], labels[::-1, ::-1])


@pytest.mark.parametrize("name", [n for n in IntensityAugmentation.__dataclass_fields__ if n.startswith("p_")])
def test_intensity_augmentation_changes_the_sources_only(name):
    sources, target, labels = _slice()
    keep_target, keep_labels = target.copy(), labels.copy()
    augmentation = Augmentation(intensity=IntensityAugmentation(**{name: 1.0}))
    out_sources, out_target, out_labels = augment_slice(sources, target, labels, augmentation, np.random.default_rng(1))
    assert out_target is target and out_labels is labels
    np.testing.assert_array_equal(target, keep_target)
    np.testing.assert_array_equal(labels, keep_labels)
    assert not np.allclose(out_sources, sources), name
    brain = sources > BACKGROUND
    np.testing.assert_array_equal(out_sources[~brain], BACKGROUND)  # background stays exactly -1
    assert out_sources.max() <= 1.0 and out_sources.dtype == sources.dtype


def test_seeded_generator_gives_the_same_slice_and_another_seed_another():
    augmentation = Augmentation(spatial=ALL_SPATIAL, intensity=ALL_INTENSITY)
    a = augment_slice(*_slice(), augmentation, np.random.default_rng(7))
    b = augment_slice(*_slice(), augmentation, np.random.default_rng(7))
    c = augment_slice(*_slice(), augmentation, np.random.default_rng(8))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_bad_settings_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="spatial.p_flip: expected a probability"):
        SpatialAugmentation(p_flip=1.5)
    with pytest.raises(ConfigError, match="intensity.gamma_range: expected"):
        IntensityAugmentation(gamma_range=(1.5, 0.7))
    with pytest.raises(ConfigError, match="low_resolution_range: expected factors <= 1"):
        IntensityAugmentation(low_resolution_range=(0.5, 2.0))
    with pytest.raises(ConfigError, match="augmentation"):
        load_training_setup({"preset": "tiny", "training": {"data": {"augmentation": {"spatial": {"p_tilt": 1}}}}})


def test_augmentation_is_off_in_every_existing_preset_and_on_in_synthetic_robust():
    for name in PRESETS:
        setup = load_training_setup(name)
        assert setup.training.data.augmentation.enabled == (name == "synthetic_robust"), name
    robust, wide = load_training_setup("synthetic_robust"), load_training_setup("synthetic_wide")
    assert robust.model == wide.model  # only the augmentation differs
    assert robust.training.stage2 == wide.training.stage2
    augmentation = robust.training.data.augmentation
    assert augmentation.spatial.enabled and augmentation.intensity.enabled


def test_dataset_augments_per_epoch_deterministically_and_batch_can_skip_it(tmp_path):
    from brasyn.constants import Modality
    from brasyn.data.cases import discover_cases
    from brasyn.data.slices import CacheOptions, SliceDataset, build_slice_cache
    from tests.conftest import write_case

    for k in range(2):
        write_case(tmp_path / "train", f"BraTS-GLI-0000{k}-000", seed=k, with_labels=True)
    cached = build_slice_cache(discover_cases(tmp_path / "train"), tmp_path / "cache", CacheOptions(), progress=False)
    augmentation = Augmentation(spatial=ALL_SPATIAL, intensity=ALL_INTENSITY)
    plain = SliceDataset(cached, Modality.T1C, 32)
    augmented = SliceDataset(cached, Modality.T1C, 32, augmentation=augmentation, seed=3)
    twin = SliceDataset(cached, Modality.T1C, 32, augmentation=augmentation, seed=3)
    indices = [0, 1, 2]
    first, again = augmented.__getitems__(indices), twin.__getitems__(indices)
    np.testing.assert_array_equal(first.sources.numpy(), again.sources.numpy())
    assert not np.array_equal(first.sources.numpy(), plain.__getitems__(indices).sources.numpy())
    np.testing.assert_array_equal(
        augmented.batch(indices, augment=False).sources.numpy(), plain.__getitems__(indices).sources.numpy()
    )
    augmented.set_epoch(1)
    assert not np.array_equal(augmented.__getitems__(indices).sources.numpy(), first.sources.numpy())
    assert SliceDataset(cached, Modality.T1C, 32, augmentation=Augmentation()).augmentation is None


def test_throughput_is_measured_not_timed():
    """A quick measurement (printed with -s), not a timing assertion: 256 × 256 slices with every
    transform on, against the ~7 slices/s a CPU training step consumes (docs/training-study.md)."""
    rng = np.random.default_rng(0)
    size = 256
    sources = np.where(rng.random((3, size, size)) > 0.3, rng.uniform(-0.9, 0.5, (3, size, size)), BACKGROUND)
    sources = sources.astype(np.float32)
    target, labels = sources[:1].copy(), (rng.random((size, size)) > 0.9).astype(np.int64)
    augmentation = Augmentation(spatial=ALL_SPATIAL, intensity=ALL_INTENSITY)
    start = time.perf_counter()
    n = 4
    for k in range(n):
        augment_slice(sources, target, labels, augmentation, np.random.default_rng(k))
    rate = n / (time.perf_counter() - start)
    print(f"augmentation, every transform on, 256 x 256: {rate:.0f} slices/s")
    assert rate > 0
