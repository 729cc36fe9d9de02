"""PLAVE losses: functions of tensors and explicit hyperparameters (weights are applied by the trainer)."""

from brasyn.losses.adversarial import discriminator_loss, generator_adversarial_loss
from brasyn.losses.patchnce import attention_entropy, contrastive_loss, patchnce_loss, qs_attention
from brasyn.losses.reconstruction import l1_loss, label_weighted_l1_loss
from brasyn.losses.segmentation import segmentation_loss
from brasyn.losses.self_representation import decoder_kl_loss, encoder_mse_loss, fusion_mse_loss

__all__ = [
    "attention_entropy",
    "contrastive_loss",
    "decoder_kl_loss",
    "discriminator_loss",
    "encoder_mse_loss",
    "fusion_mse_loss",
    "generator_adversarial_loss",
    "l1_loss",
    "label_weighted_l1_loss",
    "patchnce_loss",
    "qs_attention",
    "segmentation_loss",
]
