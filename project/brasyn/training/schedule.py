"""Learning-rate schedule (ACA-GAN / pix2pix convention, per optimizer step): constant, then linear
decay to 0 over the final `decay_fraction` of the steps."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from brasyn.errors import ConfigError


def total_steps(epochs: int, steps_per_epoch: int, max_steps: int | None) -> int:
    """Optimizer steps of a stage: epochs x steps per epoch, capped by `max_steps` when given."""
    steps = epochs * steps_per_epoch
    return steps if max_steps is None else min(steps, max_steps)


def decay_steps(total: int, decay_fraction: float) -> int:
    """Steps in the decay phase: round(total x fraction), at least 1 when the fraction is positive."""
    if decay_fraction <= 0:
        return 0
    return max(1, min(total, math.floor(total * decay_fraction + 0.5)))


def lr_factor(step: int, total: int, decay: int) -> float:
    """Multiplier of the base learning rate for optimizer step `step` (0-based) of `total`.

    1 for the first total - decay steps, then (total - step) / (decay + 1): the decay phase runs
    linearly from 1 towards 0, reaching 0 one step after the end (ACA-GAN's niter_decay form), so no
    step is wasted at learning rate 0. Example total 9, decay 3: 1, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25.
    """
    if decay <= 0:
        return 1.0
    return float(min(1.0, max(0.0, (total - step) / (decay + 1))))


class LinearDecay:
    """`lr_factor` as a callable object: its total can be shortened during training (a time budget),
    and LambdaLR saves and restores its state with the scheduler's."""

    def __init__(self, total: int, decay_fraction: float) -> None:
        self.decay_fraction = decay_fraction
        self.set_total(total)

    def set_total(self, total: int) -> None:
        if total < 1:
            raise ConfigError(f"learning-rate schedule: expected at least 1 step, found {total}")
        self.total = int(total)
        self.decay = decay_steps(self.total, self.decay_fraction)

    def __call__(self, step: int) -> float:
        return lr_factor(step, self.total, self.decay)


def linear_decay_scheduler(optimizer: Optimizer, total: int, decay_fraction: float) -> LambdaLR:
    """A `LambdaLR` applying `lr_factor`; call `.step()` after each optimizer step."""
    return LambdaLR(optimizer, LinearDecay(total, decay_fraction))


def set_total_steps(scheduler: LambdaLR, total: int) -> None:
    """Shorten (or lengthen) the schedule of a `linear_decay_scheduler` to `total` steps."""
    for schedule in scheduler.lr_lambdas:
        schedule.set_total(total)
