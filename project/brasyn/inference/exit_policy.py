"""The container's exit status, chosen for the runners that read it.

MedPerf marks the whole model execution failed, and the `brats` package raises, when the container
exits non-zero: every prediction of the run is then discarded. So one malformed case in a hospital's
data must not cost the other cases theirs, while a run that is broken for every case must say so.

- 0: no case failed; or every case was attempted and the only failures are the cases' own input
  errors (each listed in the summary with its reason), with at least one prediction in the output.
- 1: a failure every case shares or might share: no usable checkpoint, a prediction that could not be
  written, an unexpected error; or no case produced a prediction. (Unusable weights, output folder or
  configuration stop the run before any case and are exit status 1 too.)
- `strict`: 1 whenever any case failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from brasyn.inference.results import FailureCause, InferenceSummary


@dataclass(frozen=True)
class ExitDecision:
    status: int
    reason: str


def exit_decision(summary: InferenceSummary, *, strict: bool = False) -> ExitDecision:
    """The exit status for `summary` under the policy above, with a one-line reason."""
    failed = summary.failed
    if not failed:
        return ExitDecision(0, "every case done or skipped")
    count = f"{len(failed)} case{'s' if len(failed) != 1 else ''} failed"
    if strict:
        return ExitDecision(1, f"{count} (strict: any failure is an error)")
    systemic = [r for r in failed if r.cause is not FailureCause.INPUT]
    if systemic:
        causes = ", ".join(sorted({(r.cause or FailureCause.UNEXPECTED).value for r in systemic}))
        return ExitDecision(1, f"{count}, {len(systemic)} for a reason other than their input ({causes})")
    predictions = [r for r in summary.results if r.output is not None]  # done, or kept from an earlier run
    if not predictions:
        return ExitDecision(1, f"{count}, each on its own input, and no case has a prediction")
    return ExitDecision(0, f"{count}, each on its own input (listed above); the other cases' predictions stand")
