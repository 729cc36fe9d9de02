"""Inference settings: strict loading, device and precision resolution, and the execution plan
(batch size, memory layout, threads) chosen per device."""

from __future__ import annotations

import pytest
import torch

from brasyn.errors import ConfigError
from brasyn.inference import (
    InferenceSettings,
    tuning,
)


def test_settings_are_strict():
    with pytest.raises(ConfigError) as info:
        InferenceSettings.from_dict({"batch_sise": 4})
    assert "infer.batch_sise" in str(info.value)
    for bad in (
        {"batch_size": 0},
        {"batch_size": "many"},
        {"batch_size": True},
        {"device": "gpu"},
        {"precision": "int8"},
        {"write_segmentation": True},  # the older layout, still read: it needs its segmentation_path
        {"segmentation_dir": ""},
        {"segmentation_dir": "seg", "write_segmentation": True, "segmentation_path": "seg"},
    ):
        with pytest.raises(ConfigError):
            InferenceSettings.from_dict(bad)
    assert InferenceSettings.from_dict({"device": "cuda:1", "precision": "bf16"}).device == "cuda:1"


def test_mirror_axes_are_in_plane_axes():
    assert InferenceSettings().mirror_axes == (0, 1)  # both in-plane axes by default, as nnU-Net mirrors
    assert InferenceSettings.from_dict({"mirror_axes": []}).mirror_axes == ()
    assert InferenceSettings.from_dict({"mirror_axes": [1, 0]}).mirror_axes == (0, 1)
    for bad in ([2], [0, 0], [-1], [True], "0,1"):
        with pytest.raises(ConfigError) as info:
            InferenceSettings.from_dict({"mirror_axes": bad})
        assert "infer.mirror_axes" in str(info.value)
    with pytest.raises(ConfigError):
        InferenceSettings(mirror_axes=(0.0,))  # the Python API is checked as strictly as the YAML


def test_the_predictor_runs_the_mirrorings_its_validated_settings_name():
    from inference_helpers import T2F, hand_intensity_model

    from brasyn.inference.predictor import Predictor, mirror_flips

    assert mirror_flips((1,)) == [(), (3,)] and mirror_flips(()) == [()]
    with pytest.raises(ConfigError) as info:  # validated once, where the settings are made
        InferenceSettings(mirror_axes=(2,))
    assert "mirror_axes" in str(info.value)
    settings = InferenceSettings(mirror_axes=(1,), batch_size=3, channels_last=False, device="cpu")
    predictor = Predictor(
        torch.nn.Identity(), target=T2F, intensity_model=hand_intensity_model(T2F), image_size=8, settings=settings
    )
    assert predictor.mirrors == [(), (3,)] and predictor.settings is settings
    assert (predictor.batch_size, predictor.plan.channels_last, predictor.device.type) == (3, False, "cpu")


def test_segmentation_output_is_one_setting_and_the_older_keys_still_load():
    assert InferenceSettings().segmentation_dir is None  # no tumour maps unless a folder is given
    assert InferenceSettings.from_dict({"segmentation_dir": "seg"}).segmentation_dir == "seg"
    old = {"write_segmentation": True, "segmentation_path": "/tmp/seg", "overwrite": True}
    assert InferenceSettings.from_dict(old) == InferenceSettings(segmentation_dir="/tmp/seg", overwrite=True)
    off = {"write_segmentation": False, "segmentation_path": "/tmp/seg"}
    assert InferenceSettings.from_dict(off).segmentation_dir is None
    from brasyn.inference.settings import InferParameters

    assert InferParameters.from_dict({**old, "strict": True}).settings.segmentation_dir == "/tmp/seg"


def test_auto_batch_size_and_layout_follow_the_device():
    cpu = tuning.plan_for(torch.device("cpu"))
    assert (cpu.batch_size, cpu.channels_last) == (tuning.CPU_BATCH, True)
    expected = None if min(torch.get_num_threads(), tuning.available_cpus()) < tuning.MIN_CORES_TO_SPARE else 1
    assert cpu.threads == expected or (expected == 1 and cpu.threads >= 1)
    cuda = tuning.plan_for(torch.device("cuda"))
    assert (cuda.batch_size, cuda.channels_last, cuda.threads) == (tuning.CUDA_BATCH, True, None)
    explicit = tuning.plan_for(torch.device("cpu"), 7, channels_last=False)
    assert (explicit.batch_size, explicit.channels_last) == (7, False)
    assert InferenceSettings().batch_size == "auto"
    assert InferenceSettings.from_dict({"batch_size": "auto"}).batch_size == "auto"


def test_device_and_precision_resolution():
    from brasyn.inference import resolve_device, resolve_precision

    cpu = torch.device("cpu")
    assert resolve_device("cpu") == cpu
    assert resolve_precision("auto", cpu) is None and resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16 and resolve_precision("fp16", cpu) is torch.float16
    if not torch.cuda.is_available():
        assert resolve_device("auto") == cpu
        with pytest.raises(ConfigError) as info:
            resolve_device("cuda")
        assert "CUDA is not available" in str(info.value)


@pytest.mark.parametrize(
    "capability, expected",
    [
        ((7, 0), torch.float16),
        ((7, 5), torch.float16),
        ((8, 0), torch.bfloat16),
        ((8, 9), torch.bfloat16),
        ((9, 0), torch.bfloat16),
    ],
    ids=["V100", "T4", "A100", "L4", "H100"],
)
def test_auto_precision_follows_the_compute_capability(monkeypatch, capability, expected):
    """bf16 only from Ampere (8.0) on: `is_bf16_supported()` is also true on T4/V100, where cuDNN lacks
    bf16 convolutions."""
    from brasyn.inference import resolve_precision

    asked = []
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what T4 and V100 report too
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: asked.append(device) or capability)
    device = torch.device("cuda:1")
    assert resolve_precision("auto", device) is expected
    assert asked == [device]  # the capability of the device that runs the model, not of cuda:0
    assert resolve_precision("bf16", device) is torch.bfloat16 and resolve_precision("fp16", device) is torch.float16
    assert resolve_precision("fp32", device) is None


def test_channels_last_can_be_set_from_the_settings_and_batch_size_has_one_home(weights):
    from brasyn.checkpoint import checkpoint_filename
    from brasyn.constants import Modality
    from brasyn.inference import Predictor

    path = weights / checkpoint_filename(Modality.T2F)
    forced = Predictor.from_checkpoint(path, settings=InferenceSettings(channels_last=False, batch_size=6))
    assert forced.plan.channels_last is False and forced.memory_format == torch.contiguous_format
    assert Predictor.from_checkpoint(path, settings=InferenceSettings()).plan.channels_last is True
    assert InferenceSettings.from_dict({"channels_last": False}).channels_last is False
    assert forced.batch_size == forced.plan.batch_size == 6
