"""BatchNorm running statistics that match the weights they are used with.

In train mode BatchNorm normalizes with each batch's statistics and keeps an exponential moving
average (momentum 0.1, i.e. the last ~10 batches) for eval mode. While the learning rate is high the
weights move faster than that average follows, so eval-mode validation (and a checkpoint written in
that state) can be far worse than the network really is: a 16-channel T1-ce model at lr 6e-4 scored
L1 0.084 / SSIM 0.883 in eval mode against 0.032 / 0.919 with batch statistics on the same slices
(docs/training-study.md). `recalibrate_batchnorm` replaces the running statistics with their
plain average over fixed training batches of the current weights (as `torch.optim.swa_utils.update_bn`
does), before every validation and so before the checkpoint is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from brasyn.data.slices import SliceDataset


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[Tensor], forward: Callable[[Tensor], Any]) -> int:
    """Set every BatchNorm's running mean and variance in `model` to the mean, over `batches`, of the
    batch means and (unbiased) batch variances that `forward(batch)` produces with the rest of the
    model in eval mode (dropout off, as at inference). Momenta and the train/eval flags are restored.
    Returns the number of batches used (0: nothing changed)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return 0
    saved = [(m, m.momentum, m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
             for m in norms]
    modes = [(m, m.training) for m in model.modules()]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
    model.eval()  # dropout off, as at inference (and no draws from the training's random state) ...
    for m in norms:
        m.train()  # ... and only the norms collecting batch statistics
    count = 0
    try:
        for batch in batches:
            forward(batch)
            count += 1
    finally:
        for m, momentum, mean, var, tracked in saved:
            m.momentum = momentum
            if count == 0:  # keep the old statistics rather than the reset ones
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(tracked)
        for m, training in modes:
            m.training = training
    return count


def recalibration_batches(dataset: SliceDataset, n_slices: int, seed: int, batch_size: int = 16) -> Iterator[Tensor]:
    """The sources (B, 3, S, S) of `n_slices` slices of `dataset`, the same ones every time: a
    permutation seeded with `seed` on its own generator, so the training's random state is untouched."""
    n = min(n_slices, len(dataset))
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    for start in range(0, n, batch_size):
        yield dataset.batch(order[start:start + batch_size], augment=False).sources  # never augmented
