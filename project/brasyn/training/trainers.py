"""The two training stages as step objects: each owns its networks, optimizers and schedules.

Stage 1 (`AutoencoderTrainer`): the target modality's self-representation autoencoder learns the
identity (L1). Stage 2 (`TranslationTrainer`): per batch one generator pass, then `d_step` (the
discriminator on real and detached synthetic images) and `g_step` (all generator terms against the
frozen, eval-mode autoencoder). Both steps return a dict of named loss terms; `weighted_sum` is the
one place where the configured weights are applied.

Under DDP the generator and its projection heads are wrapped together (`GeneratorWithHeads`: one
forward computes the image, the segmentation, the generated image's features and the contrastive
loss), the discriminator on its own; the generator step calls the unwrapped discriminator, whose
parameters are frozen there.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from brasyn.config import to_dict
from brasyn.data.slices import SliceSample
from brasyn.errors import ConfigError
from brasyn.losses import (
    contrastive_loss,
    decoder_kl_loss,
    discriminator_loss,
    encoder_mse_loss,
    fusion_mse_loss,
    generator_adversarial_loss,
    l1_loss,
    label_weighted_l1_loss,
    segmentation_loss,
)
from brasyn.models import (
    Generator,
    GeneratorOutput,
    ModelConfig,
    PatchDiscriminator,
    PatchNCEHeads,
    SelfRepresentationAutoencoder,
)
from brasyn.training.batchnorm import recalibrate_batchnorm
from brasyn.training.config import AutoencoderStage, TranslationStage
from brasyn.training.runtime import Runtime
from brasyn.training.schedule import linear_decay_scheduler, set_total_steps


def weighted_sum(terms: Mapping[str, Tensor], weights: Mapping[str, float]) -> Tensor:
    """sum_name weights[name] * terms[name]; every term needs a weight (a missing one is a bug)."""
    total = None
    for name, value in terms.items():
        contribution = weights[name] * value
        total = contribution if total is None else total + contribution
    if total is None:
        raise ValueError("weighted_sum: no loss terms")
    return total


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(flag)


def _adam(parameters: Any, lr: float, beta1: float, beta2: float) -> torch.optim.Adam:
    return torch.optim.Adam(parameters, lr=lr, betas=(beta1, beta2))


def _wrap(module: nn.Module, rt: Runtime, *, find_unused: bool = False) -> nn.Module:
    if not rt.distributed:
        return module
    device_ids = [rt.device.index] if rt.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=find_unused)


class Batch(NamedTuple):
    """A training batch on the device: sources (B, 3, S, S), target (B, 1, S, S), seg (B, S, S)."""

    sources: Tensor
    target: Tensor
    seg: Tensor

    @classmethod
    def from_sample(cls, sample: SliceSample, device: torch.device) -> Batch:
        nb = device.type == "cuda"
        return cls(
            sources=sample.sources.to(device, non_blocking=nb),
            target=sample.target.to(device, non_blocking=nb),
            seg=sample.seg.to(device, non_blocking=nb),
        )


def _detached(terms: Mapping[str, Tensor]) -> dict[str, float]:
    return {name: float(value.detach().float().item()) for name, value in terms.items()}


class AutoencoderTrainer:
    """Stage 1: SR autoencoder of the target modality, identity mapping, L1 x `l1_weight`."""

    stage = "stage1"

    def __init__(self, model_config: ModelConfig, stage: AutoencoderStage, rt: Runtime, total_steps: int) -> None:
        self.rt = rt
        self.config = stage
        self.autoencoder = SelfRepresentationAutoencoder.from_config(model_config).to(rt.device)
        self.model = _wrap(self.autoencoder, rt)
        self.optimizer = _adam(self.autoencoder.parameters(), stage.lr, stage.beta1, stage.beta2)
        self.scheduler = linear_decay_scheduler(self.optimizer, total_steps, stage.decay_fraction)
        self.weights = {"l1": stage.l1_weight}

    def train_mode(self) -> None:
        self.autoencoder.train()

    def set_total_steps(self, total: int) -> None:
        set_total_steps(self.scheduler, total)

    def train_step(self, batch: Batch) -> dict[str, float]:
        self.optimizer.zero_grad(set_to_none=True)
        with self.rt.autocast():
            output = self.model(batch.target)
            terms = {"l1": l1_loss(output.image.float(), batch.target)}
        weighted_sum(terms, self.weights).backward()
        self.optimizer.step()
        self.scheduler.step()
        return _detached(terms)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @torch.no_grad()
    def predict(self, target: Tensor) -> Tensor:
        """Eval-mode reconstruction (B, 1, S, S) -> (B, 1, S, S); restores train mode."""
        self.autoencoder.eval()
        try:
            with self.rt.autocast():
                return self.autoencoder(target).image
        finally:
            self.autoencoder.train()

    def state_dict(self) -> dict[str, Any]:
        return {
            "autoencoder": self.autoencoder.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.autoencoder.load_state_dict(state["autoencoder"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


class GeneratorPass(NamedTuple):
    """One generator forward for stage 2: `output` (image, seg logits, features of the sources) and the
    contrastive loss between source and generated-image features (0 when its weight is 0)."""

    output: GeneratorOutput
    contrastive: Tensor


class GeneratorWithHeads(nn.Module):
    """Generator and PatchNCE heads as one module, so that one DDP wrapper synchronises both."""

    def __init__(self, generator: Generator, heads: PatchNCEHeads, *, with_contrastive: bool = True) -> None:
        super().__init__()
        self.generator = generator
        self.heads = heads
        self.with_contrastive = with_contrastive

    def forward(self, sources: Tensor, *, with_contrastive: bool = True) -> GeneratorPass:
        """sources (B, 3, S, S) -> GeneratorPass (contrastive 0 when switched off here or at construction)."""
        output = self.generator(sources, with_segmentation=True)
        if not (self.with_contrastive and with_contrastive):
            return GeneratorPass(output=output, contrastive=output.image.new_zeros(()))
        generated = self.generator.encode_generated(output.image)
        config = self.generator.config
        # float32 even under bf16 autocast: the unscaled F F^T logits of QS-Attn need the precision
        with torch.autocast(device_type=sources.device.type, enabled=False):
            contrastive = contrastive_loss(
                [output.features.mma.float(), output.features.fused.float()],
                [generated.mma.float(), generated.fused.float()],
                self.heads,
                config.nce_queries,
                config.nce_temperature,
            )
        return GeneratorPass(output=output, contrastive=contrastive)


class TranslationTrainer:
    """Stage 2: generator (+ segmentation decoder), discriminator and projection heads; frozen SR autoencoder."""

    stage = "stage2"

    def __init__(
        self,
        model_config: ModelConfig,
        stage: TranslationStage,
        rt: Runtime,
        total_steps: int,
        autoencoder: SelfRepresentationAutoencoder,
        prior_coefficients: Tensor | None = None,
    ) -> None:
        self.rt = rt
        self.config = stage
        self.weights = to_dict(stage.loss_weights)
        if not model_config.use_seg_decoder:
            self.weights.pop("segmentation")
        if stage.l1_label_weights is not None and len(stage.l1_label_weights) != model_config.n_seg_classes:
            raise ConfigError(
                f"training.stage2.l1_label_weights: expected one weight per segmentation class "
                f"({model_config.n_seg_classes}), found {len(stage.l1_label_weights)}"
            )
        self.l1_label_weights = (
            None if stage.l1_label_weights is None else torch.tensor(stage.l1_label_weights, device=rt.device)
        )  # once, not per step
        self.generator = Generator.from_config(model_config)
        if (prior_coefficients is None) != (self.generator.prior is None):
            raise ConfigError(
                "model.prior_degree: the generator's polynomial prior needs its fitted coefficients"
                if prior_coefficients is None
                else "model.prior_degree is 0: prior coefficients given for a generator without a prior"
            )
        if self.generator.prior is not None:  # before DDP wraps it: every rank fitted the same prior
            self.generator.prior.coefficients.copy_(prior_coefficients)
        self.generator.to(rt.device)
        # the generator's weights at the end of the warm-up (with `keep_warmup_checkpoint`), else None
        self.warmup_state: dict[str, Tensor] | None = None
        self.heads = PatchNCEHeads.from_config(model_config).to(rt.device)
        self.discriminator = PatchDiscriminator.from_config(model_config).to(rt.device)
        self.autoencoder = autoencoder.to(rt.device).eval()
        set_requires_grad(self.autoencoder, False)

        with_contrastive = self.weights["contrastive"] > 0
        self.generator_side = _wrap(
            GeneratorWithHeads(self.generator, self.heads, with_contrastive=with_contrastive),
            rt,
            find_unused=not with_contrastive or self.weights.get("segmentation", 1.0) == 0 or stage.warmup_fraction > 0,
        )
        self.d_model = _wrap(self.discriminator, rt)
        betas = (stage.beta1, stage.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=stage.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=stage.lr, betas=betas)
        self.opt_h = torch.optim.Adam(self.heads.parameters(), lr=stage.head_lr, betas=betas)
        self.sched_g = linear_decay_scheduler(self.opt_g, total_steps, stage.decay_fraction)
        self.sched_d = linear_decay_scheduler(self.opt_d, total_steps, stage.decay_fraction)
        self.sched_h = linear_decay_scheduler(self.opt_h, total_steps, stage.decay_fraction)

    def l1(self, image: Tensor, batch: Batch) -> Tensor:
        """The L1 term: a plain mean (paper) or weighted by the pixels' labels (`l1_label_weights`)."""
        if self.l1_label_weights is None:
            return l1_loss(image, batch.target)
        return label_weighted_l1_loss(image, batch.target, batch.seg, self.l1_label_weights)

    def train_mode(self) -> None:
        self.generator.train()
        self.heads.train()
        self.discriminator.train()
        self.autoencoder.eval()  # frozen: BN running statistics and dropout stay off

    def set_total_steps(self, total: int) -> None:
        for scheduler in (self.sched_g, self.sched_d, self.sched_h):
            set_total_steps(scheduler, total)

    @property
    def lr(self) -> float:
        return float(self.opt_g.param_groups[0]["lr"])

    def d_step(self, batch: Batch, fake: Tensor) -> dict[str, Tensor]:
        """Discriminator update on D(x, y) (real) and D(x, y_hat.detach()) (synthetic)."""
        set_requires_grad(self.discriminator, True)
        self.opt_d.zero_grad(set_to_none=True)
        with self.rt.autocast():
            real_logits = self.d_model(batch.sources, batch.target)
            fake_logits = self.d_model(batch.sources, fake.detach())
            terms = {"discriminator": discriminator_loss(real_logits.float(), fake_logits.float())}
        weighted_sum(terms, {"discriminator": 1.0}).backward()
        self.opt_d.step()
        self.sched_d.step()
        return terms

    def g_step(self, batch: Batch, forward: GeneratorPass) -> dict[str, Tensor]:
        """Generator and heads update; the discriminator is frozen, the autoencoder frozen and in eval mode."""
        set_requires_grad(self.discriminator, False)
        self.opt_g.zero_grad(set_to_none=True)
        self.opt_h.zero_grad(set_to_none=True)
        output = forward.output
        features = output.features
        with self.rt.autocast():
            with torch.no_grad():
                sr = self.autoencoder(batch.target)
            fake_logits = self.discriminator(batch.sources, output.image)  # unwrapped: no DDP sync for frozen D
            terms = {
                "adversarial": generator_adversarial_loss(fake_logits.float()),
                "l1": self.l1(output.image.float(), batch),
                "contrastive": forward.contrastive.float(),
                "sr_decoder": decoder_kl_loss(
                    (features.up1.float(), features.up2.float()), (sr.up1.float(), sr.up2.float())
                ),
                "sr_encoder": encoder_mse_loss(sr.encoding.float(), [b.float() for b in features.branches]),
                "sr_fusion": fusion_mse_loss(sr.encoding.float(), features.fused.float()),
            }
            if output.seg_logits is not None and "segmentation" in self.weights:
                terms["segmentation"] = segmentation_loss(output.seg_logits.float(), batch.seg)
        total = weighted_sum(terms, self.weights)
        total.backward()
        self.opt_g.step()
        self.opt_h.step()
        self.sched_g.step()
        self.sched_h.step()
        set_requires_grad(self.discriminator, True)
        return {**terms, "generator": total}

    @property
    def step(self) -> int:
        """Optimizer steps taken (restored on resume with the scheduler's state)."""
        return int(self.sched_g.last_epoch)

    def in_warmup(self) -> bool:
        """During the first `warmup_fraction` of the schedule's (possibly time-shortened) steps."""
        return self.step < int(self.config.warmup_fraction * self.sched_g.lr_lambdas[0].total)

    def warmup_step(self, batch: Batch) -> dict[str, Tensor]:
        """Reconstruction warm-up: L1 and segmentation only; D, heads and the SR terms wait."""
        self.opt_g.zero_grad(set_to_none=True)
        with self.rt.autocast():
            output = self.generator_side(batch.sources, with_contrastive=False).output
            terms = {"l1": self.l1(output.image.float(), batch)}
            if output.seg_logits is not None and "segmentation" in self.weights:
                terms["segmentation"] = segmentation_loss(output.seg_logits.float(), batch.seg)
        total = weighted_sum(terms, self.weights)
        total.backward()
        self.opt_g.step()
        with warnings.catch_warnings():
            # One clock for all three schedules: D's and the heads' advance with G's although their
            # optimizers wait for the end of the warm-up, which torch would warn about (by design here).
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
            for scheduler in (self.sched_g, self.sched_d, self.sched_h):
                scheduler.step()
        return {**terms, "generator": total}

    def train_step(self, batch: Batch) -> dict[str, float]:
        if self.in_warmup():
            return _detached(self.warmup_step(batch))
        if self.config.keep_warmup_checkpoint and self.warmup_state is None and self.step > 0:
            # the first step after the warm-up: keep the weights it ended with
            self.warmup_state = {k: v.detach().clone() for k, v in self.generator.state_dict().items()}
        with self.rt.autocast():
            forward = self.generator_side(batch.sources)
        d_terms = self.d_step(batch, forward.output.image)
        g_terms = self.g_step(batch, forward)
        return _detached({**d_terms, **g_terms})

    def recalibrate_batchnorm(self, sources: Iterable[Tensor]) -> int:
        """The generator's BatchNorm running statistics from these batches of real sources (B, 3, S, S)
        with the current weights (`brasyn.training.batchnorm`); returns the number of batches."""

        def forward(batch: Tensor) -> None:
            with self.rt.autocast():
                self.generator(batch.to(self.rt.device), with_segmentation=True)

        return recalibrate_batchnorm(self.generator, sources, forward)

    @torch.no_grad()
    def predict(self, sources: Tensor) -> tuple[Tensor, Tensor | None]:
        """Eval-mode synthesis (B, 3, S, S) -> image (B, 1, S, S) and seg logits (B, K, S, S) or None;
        restores train mode."""
        self.generator.eval()
        try:
            with self.rt.autocast():
                output = self.generator(sources, with_segmentation=True)
                return output.image, output.seg_logits
        finally:
            self.generator.train()

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "heads": self.heads.state_dict(),
            "optimizers": {"g": self.opt_g.state_dict(), "d": self.opt_d.state_dict(), "h": self.opt_h.state_dict()},
            "schedulers": {
                "g": self.sched_g.state_dict(),
                "d": self.sched_d.state_dict(),
                "h": self.sched_h.state_dict(),
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.heads.load_state_dict(state["heads"])
        for name, optimizer in (("g", self.opt_g), ("d", self.opt_d), ("h", self.opt_h)):
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in (("g", self.sched_g), ("d", self.sched_d), ("h", self.sched_h)):
            scheduler.load_state_dict(state["schedulers"][name])
