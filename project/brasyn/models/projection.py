"""PatchNCE projection heads: one two-layer MLP per contrastive layer (built eagerly, own optimizer)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from brasyn.models.config import ModelConfig
from brasyn.models.init import init_weights

NCE_LAYERS: tuple[str, ...] = ("mma", "fused")
"""Names of the contrastive layers, in the order `contrastive_loss` expects them."""


class PatchNCEHeads(nn.Module):
    """Per layer: Linear(C_l -> D), ReLU, Linear(D -> D), L2-normalize (D = nce_channels).

    Layer "mma" has C = n_sources * 4 * base_channels inputs, layer "fused" 4 * base_channels.
    """

    def __init__(self, *, in_channels: dict[str, int], out_channels: int = 256) -> None:
        super().__init__()
        self.names = tuple(in_channels)
        self.heads = nn.ModuleDict(
            {
                name: nn.Sequential(
                    nn.Linear(c, out_channels), nn.ReLU(inplace=True), nn.Linear(out_channels, out_channels)
                )
                for name, c in in_channels.items()
            }
        )

    @classmethod
    def from_config(cls, config: ModelConfig) -> PatchNCEHeads:
        """Heads for the MMA output and F_fus of the generator built from `config`; weights N(0, init_gain)."""
        width = 4 * config.base_channels
        model = cls(in_channels={"mma": config.n_sources * width, "fused": width}, out_channels=config.nce_channels)
        return init_weights(model, config.init_gain)

    def __len__(self) -> int:
        return len(self.names)

    def forward(self, layer: int | str, x: Tensor) -> Tensor:
        """layer index (0 = "mma", 1 = "fused") or name; x (B, S, C_l) -> unit vectors (B, S, D)."""
        name = self.names[layer] if isinstance(layer, int) else layer
        return F.normalize(self.heads[name](x), dim=-1, eps=1e-7)
