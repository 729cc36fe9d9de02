"""The runners' exit status (`brasyn.inference.exit_policy`) from hand-made summaries: each rule of the
policy, the cause of each error family, and the one-line reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from brasyn.errors import (
    CheckpointError,
    ConfigError,
    ContractError,
    GeometryError,
    InferenceError,
    MissingModalityError,
    OutputError,
)
from brasyn.inference.exit_policy import exit_decision
from brasyn.inference.results import FailureCause, InferenceSummary, Outcome, SynthesisResult, failure_cause


def done(case: str) -> SynthesisResult:
    return SynthesisResult(case, Outcome.DONE, output=Path(f"{case}-t1c.nii.gz"))


def failed(case: str, cause: FailureCause) -> SynthesisResult:
    return SynthesisResult(case, Outcome.FAILED, reason=f"{case}: broken", cause=cause)


def summary(*results: SynthesisResult) -> InferenceSummary:
    return InferenceSummary(tuple(results))


@pytest.mark.parametrize(
    "error, cause",
    [
        (MissingModalityError("A: two missing"), FailureCause.INPUT),
        (GeometryError("A: shapes differ"), FailureCause.INPUT),
        (CheckpointError("w: broken"), FailureCause.MODEL),
        (InferenceError("out of memory"), FailureCause.MODEL),
        (ConfigError("infer.device"), FailureCause.MODEL),
        (OutputError("out: not writable"), FailureCause.OUTPUT),
        (PermissionError(13, "denied"), FailureCause.OUTPUT),
        (ContractError("a tensor of the wrong shape"), FailureCause.UNEXPECTED),  # a bug, never the case's input
        (KeyError("x"), FailureCause.UNEXPECTED),
    ],
)
def test_each_error_family_has_its_cause(error, cause):
    assert failure_cause(error) is cause


def test_no_failure_is_status_0():
    decision = exit_decision(summary(done("A"), SynthesisResult("B", Outcome.SKIPPED, reason="complete")))
    assert (decision.status, decision.reason) == (0, "every case done or skipped")


def test_input_failures_alone_keep_the_other_predictions():
    decision = exit_decision(summary(done("A"), failed("B", FailureCause.INPUT), failed("C", FailureCause.INPUT)))
    assert decision.status == 0
    assert decision.reason == "2 cases failed, each on its own input (listed above); the other cases' predictions stand"


def test_strict_makes_any_failure_status_1():
    decision = exit_decision(summary(done("A"), failed("B", FailureCause.INPUT)), strict=True)
    assert (decision.status, decision.reason) == (1, "1 case failed (strict: any failure is an error)")


@pytest.mark.parametrize("cause", [FailureCause.MODEL, FailureCause.OUTPUT, FailureCause.UNEXPECTED])
def test_a_shared_failure_is_status_1_and_named(cause):
    decision = exit_decision(summary(done("A"), failed("B", FailureCause.INPUT), failed("C", cause)))
    assert decision.status == 1
    assert decision.reason == f"2 cases failed, 1 for a reason other than their input ({cause.value})"


def test_no_prediction_at_all_is_status_1():
    decision = exit_decision(summary(failed("A", FailureCause.INPUT)))
    assert decision.status == 1
    assert decision.reason == "1 case failed, each on its own input, and no case has a prediction"
    kept = SynthesisResult("B", Outcome.SKIPPED, output=Path("B-t1c.nii.gz"), reason="exists")  # an earlier run's
    assert exit_decision(summary(failed("A", FailureCause.INPUT), kept)).status == 0
