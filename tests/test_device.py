"""One device and precision vocabulary for training and inference (`brasyn.device`)."""

from __future__ import annotations

import pytest
import torch

from brasyn.device import PRECISIONS, canonical_precision, check_device, resolve_precision
from brasyn.errors import ConfigError
from brasyn.inference.settings import InferenceSettings
from brasyn.training import load_training_setup


@pytest.mark.parametrize("old, new", [("float32", "fp32"), ("bfloat16", "bf16"), ("float16", "fp16")])
def test_old_training_spellings_are_aliases(old, new):
    assert canonical_precision(old, "k") == new
    assert InferenceSettings(precision=old).precision == new


@pytest.mark.parametrize("name", PRECISIONS)
def test_canonical_names_map_to_themselves(name):
    assert canonical_precision(name, "k") == name


def test_unknown_names_are_config_errors_naming_the_key():
    with pytest.raises(ConfigError) as info:
        canonical_precision("int8", "training.precision")
    assert str(info.value) == "training.precision: expected one of auto, fp32, bf16, fp16, found 'int8'"
    with pytest.raises(ConfigError) as info:
        check_device("tpu", "--device")
    assert str(info.value) == "--device: expected auto, cpu, cuda or cuda:N, found 'tpu'"
    assert check_device("cuda:1", "--device") == "cuda:1"


def test_training_config_reads_the_old_float32_and_stores_fp32():
    setup = load_training_setup({"preset": "tiny", "training": {"precision": "float32"}})
    assert setup.training.precision == "fp32"
    assert load_training_setup({"preset": "tiny", "training": {"precision": "bfloat16"}}).training.precision == "bf16"


def test_training_refuses_fp16_without_a_loss_scaler():
    with pytest.raises(ConfigError) as info:
        load_training_setup({"preset": "tiny", "training": {"precision": "fp16"}})
    assert "training.precision: fp16 needs a loss scaler" in str(info.value)


@pytest.mark.parametrize(
    "capability, inference, training",
    [((7, 5), torch.float16, torch.bfloat16), ((8, 0), torch.bfloat16, torch.bfloat16)],
)
def test_auto_on_cuda_training_never_picks_fp16(monkeypatch, capability, inference, training):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    device = torch.device("cuda:0")
    assert resolve_precision("auto", device) is inference
    assert resolve_precision("auto", device, allow_fp16=False) is training
    assert resolve_precision("auto", torch.device("cpu"), allow_fp16=False) is None
    assert resolve_precision("float32", device) is None
