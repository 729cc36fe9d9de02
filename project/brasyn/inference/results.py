"""What inference reports: each case's outcome, why a failed case failed, and the run's summary.

The vocabulary shared by the engine (which fills it), the exit policy (which judges it) and the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from brasyn.constants import Modality
from brasyn.errors import BrasynError, InputError, OutputError


class Outcome(str, Enum):
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


class FailureCause(str, Enum):
    """Why a case failed: its own input, or something every case shares (see `inference.exit_policy`)."""

    INPUT = "input"  # the case's files break the data contract (an `InputError`)
    MODEL = "model"  # the checkpoint is missing or broken, or the model cannot run (out of memory)
    OUTPUT = "output"  # the prediction could not be written
    UNEXPECTED = "unexpected"  # anything else (a bug): its traceback is logged


def failure_cause(exc: BaseException) -> FailureCause:
    """The cause by the error's family (`brasyn.errors`); a `ContractError` is a bug: unexpected."""
    if isinstance(exc, InputError):
        return FailureCause.INPUT
    if isinstance(exc, (OutputError, OSError)):
        return FailureCause.OUTPUT
    if isinstance(exc, BrasynError):
        return FailureCause.MODEL
    return FailureCause.UNEXPECTED


@dataclass(frozen=True)
class SynthesisResult:
    """What happened to one case folder."""

    case_id: str
    outcome: Outcome
    target: Modality | None = None
    output: Path | None = None
    reason: str = ""
    seconds: float = 0.0
    """A synthesized case: the sum of its own stages (`timings`); a failed one: until the failure."""
    cause: FailureCause | None = None
    """Set for failed cases only."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per stage of a synthesized case (`STAGES`: read, normalize, network, restore, write)."""


@dataclass(frozen=True)
class InferenceSummary:
    """Results of `synthesize_folder`, in case order."""

    results: tuple[SynthesisResult, ...] = field(default=())
    output_path: Path | None = None

    def _with(self, outcome: Outcome) -> list[SynthesisResult]:
        return [r for r in self.results if r.outcome is outcome]

    @property
    def done(self) -> list[SynthesisResult]:
        return self._with(Outcome.DONE)

    @property
    def skipped(self) -> list[SynthesisResult]:
        return self._with(Outcome.SKIPPED)

    @property
    def failed(self) -> list[SynthesisResult]:
        return self._with(Outcome.FAILED)

    @property
    def ok(self) -> bool:
        """True when no case failed (the exit status is 0)."""
        return not self.failed

    def format(self) -> str:
        """Multi-line human summary: counts, then one line per skipped or failed case with its reason."""
        lines = [
            f"{len(self.done)} done, {len(self.skipped)} skipped, {len(self.failed)} failed ({len(self.results)} cases)"
        ]
        lines += [f"  skipped {r.case_id}: {_without_case(r)}" for r in self.skipped]
        lines += [f"  FAILED  {r.case_id}: {_without_case(r)}" for r in self.failed]
        return "\n".join(lines)


def _without_case(result: SynthesisResult) -> str:
    """The reason without a leading "{case_id}: " (most error messages name their case)."""
    prefix = f"{result.case_id}: "
    return result.reason[len(prefix) :] if result.reason.startswith(prefix) else result.reason
