"""Evaluation: the two BraSyn SSIM conventions, Dice, prediction-folder checks and QC pictures."""

from brasyn.evaluation.dice import dice, region_dice
from brasyn.evaluation.folder import LabelCase, Problem, check_folder_names, check_prediction_volume, read_labels
from brasyn.evaluation.report import Evaluation, RunResult, evaluate, format_table
from brasyn.evaluation.ssim import (
    PercentileScores,
    container_normalize,
    container_ssim,
    container_ssim_map,
    percentile_normalize,
    percentile_scores,
    ssim3d_map,
)

__all__ = [
    "Evaluation",
    "LabelCase",
    "PercentileScores",
    "Problem",
    "RunResult",
    "check_folder_names",
    "check_prediction_volume",
    "container_normalize",
    "container_ssim",
    "container_ssim_map",
    "dice",
    "evaluate",
    "format_table",
    "percentile_normalize",
    "percentile_scores",
    "read_labels",
    "region_dice",
    "ssim3d_map",
]
