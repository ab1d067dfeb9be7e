"""M2 of Kingma et al. (2014): p(y) p(z) p(x|y,z) with inference q(z|y,x) and classifier q(y|x)."""

from __future__ import annotations

import torch

from adgm.config import ModelConfig
from adgm.models.base import Auxiliary, GenerativeClassifier
from adgm.nn import MultiInputMLP, glorot_linear


class M2(GenerativeClassifier):
    """M2: the ADGM without an auxiliary variable; q(y|x) = Cat(pi(x)) is a plain MLP."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.classifier = MultiInputMLP((config.x_dim,), config.hidden)
        self.classifier_out = glorot_linear(config.hidden[-1], config.n_classes)

    def sample_auxiliary(
        self, x: torch.Tensor, n_samples: int, *, shared_noise: bool = False
    ) -> Auxiliary:
        """M2 has no auxiliary variable."""
        return Auxiliary(value=None)

    def q_y_logits(self, x: torch.Tensor, aux: Auxiliary) -> torch.Tensor:
        """Logits of q(y|x); x (B, D) -> (1, B, K)."""
        return self.classifier_out(self.classifier(x)).unsqueeze(0)
