"""Synthetic BraTS-2023-format cohorts from real anatomy (MNI152 maps) and MR physics.

`generate_case(index, seed, config)` makes one case in memory; `write_training_cohort` and
`write_validation_cohort` write BraTS / MedPerf folder layouts. See `generator.PhantomConfig`.
"""

from brasyn.phantom.cohort import (
    CohortResult,
    assign_missing,
    case_id,
    write_training_cohort,
    write_validation_cohort,
)
from brasyn.phantom.generator import PhantomCase, PhantomConfig, generate_case

__all__ = [
    "CohortResult",
    "PhantomCase",
    "PhantomConfig",
    "assign_missing",
    "case_id",
    "generate_case",
    "write_training_cohort",
    "write_validation_cohort",
]
