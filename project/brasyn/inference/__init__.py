"""Inference: load the four dedicated checkpoints, synthesize each case's missing modality.

- `synthesize_folder(data_path, output_path, weights)` -> `InferenceSummary` (a BraSyn data folder)
- `synthesize(t1n=..., t1c=..., t2w=..., output_file=...)` (one case from exactly three files)
- `Predictor.from_checkpoint(path).predict(sources)` (one model on arrays)
- `resolve_weights(given, fallback)` (the folder a runner gives, else the image's weights)
"""

from __future__ import annotations

from brasyn.device import resolve_device, resolve_precision
from brasyn.errors import InferenceError, OutputError  # part of this API: what its functions raise
from brasyn.inference.api import synthesize
from brasyn.inference.engine import load_predictors, synthesize_folder
from brasyn.inference.exit_policy import ExitDecision, exit_decision
from brasyn.inference.predictor import Prediction, Predictor, PreparedCase
from brasyn.inference.results import FailureCause, InferenceSummary, Outcome, SynthesisResult
from brasyn.inference.settings import InferenceSettings
from brasyn.inference.weights import default_weights_dir, resolve_weights

__all__ = [
    "ExitDecision",
    "FailureCause",
    "InferenceError",
    "InferenceSettings",
    "InferenceSummary",
    "Outcome",
    "OutputError",
    "Prediction",
    "Predictor",
    "PreparedCase",
    "SynthesisResult",
    "default_weights_dir",
    "exit_decision",
    "load_predictors",
    "resolve_device",
    "resolve_precision",
    "resolve_weights",
    "synthesize",
    "synthesize_folder",
]
