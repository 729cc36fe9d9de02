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


def linear_decay_scheduler(optimizer: Optimizer, total: int, decay_fraction: float) -> LambdaLR:
    """A `LambdaLR` applying `lr_factor`; call `.step()` after each optimizer step."""
    if total < 1:
        raise ConfigError(f"learning-rate schedule: expected at least 1 step, found {total}")
    decay = decay_steps(total, decay_fraction)
    return LambdaLR(optimizer, lambda step: lr_factor(step, total, decay))
