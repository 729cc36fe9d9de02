"""Two-stage training of the four dedicated PLAVE models (SR autoencoder, then the GAN).

Public entry: `train(data_path, output_dir, setup, targets, *, resume=True) -> {target: checkpoint}`,
used by `brasyn train` and by the MLCube's train task; `load_training_setup` resolves presets.
"""

from brasyn.training.config import (
    AutoencoderStage,
    DataConfig,
    LossWeights,
    TrainingConfig,
    TrainingSetup,
    TrainParameters,
    TranslationStage,
    load_training_setup,
)
from brasyn.training.runner import train

__all__ = [
    "AutoencoderStage",
    "DataConfig",
    "LossWeights",
    "TrainingConfig",
    "TrainingSetup",
    "TrainParameters",
    "TranslationStage",
    "load_training_setup",
    "train",
]
