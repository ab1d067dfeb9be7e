"""The Auxiliary Deep Generative Model (Maaløe et al. 2016, eqs. 5-6) and its ablation.

Generative model: p(a) p(y) p(z) p(x|y,z), p(a) = N(0, I).
Inference model: q(a|x) q(z|y,x), classifier q(y|a,x):
    q(a|x)   = N(a | mu(x), diag sigma^2(x))
    q(z|y,x) = N(z | mu(y,x), diag sigma^2(y,x))      (see GenerativeClassifier)
    q(y|a,x) = Cat(y | pi(a, x))

With ``classifier_reads_auxiliary`` False the classifier is q(y|x) = Cat(y | pi(x)), as M2's,
while a stays in the rest of the model (an ablation: what a gives the classifier as an input).
"""

from __future__ import annotations

import torch

from adgm.config import ModelConfig
from adgm.models.base import Auxiliary, GenerativeClassifier
from adgm.nn import GaussianLayer, MultiInputMLP, glorot_linear


class ADGM(GenerativeClassifier):
    """ADGM with a stochastic auxiliary variable a ~ q(a|x)."""

    stochastic_auxiliary = True

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.a_encoder = MultiInputMLP((config.x_dim,), config.hidden)
        self.a_head = GaussianLayer(
            config.hidden[-1], config.a_dim, init=config.resolved_gaussian_init
        )
        # q(y|a,x): first layer W_x x + W_a a + b, so W_x x is computed once for all samples of a.
        # Blind to a: q(y|x), first layer W_x x + b.
        reads_a = config.classifier_reads_auxiliary
        classifier_inputs = (config.x_dim, config.a_dim) if reads_a else (config.x_dim,)
        self.classifier = MultiInputMLP(classifier_inputs, config.hidden)
        self.classifier_out = glorot_linear(config.hidden[-1], config.n_classes)

    def auxiliary_encoder_parameters(self) -> list[torch.nn.Parameter]:
        """The parameters of q(a|x): its MLP and Gaussian head."""
        return [*self.a_encoder.parameters(), *self.a_head.parameters()]

    def q_a(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters (mu, logvar) of q(a|x); x (B, D) -> each (B, A)."""
        return self.a_head(self.a_encoder(x))

    def sample_auxiliary(
        self, x: torch.Tensor, n_samples: int, *, shared_noise: bool = False
    ) -> Auxiliary:
        """a_i ~ q(a|x), i = 1..S, by reparameterisation: value (S, B, A).

        shared_noise: the same eps_i for every row (see GaussianLayer.sample).
        """
        mu, logvar = self.q_a(x)
        value = GaussianLayer.sample(mu, logvar, n_samples, shared_noise=shared_noise)
        return Auxiliary(value, mu, logvar)

    def q_y_logits(self, x: torch.Tensor, aux: Auxiliary) -> torch.Tensor:
        """Logits of q(y|a,x); x (B, D), aux.value (S, B, A) -> (S, B, K).

        A classifier blind to a gives the logits of q(y|x), (1, B, K), whatever aux holds.
        """
        x_part = self.classifier.first_layer_part(0, x)  # (B, H), once for all samples
        if not self.config.classifier_reads_auxiliary:
            return self.classifier_out(self.classifier.from_pre_activation(x_part)).unsqueeze(0)
        pre = x_part + self.classifier.first_layer_part(1, aux.value)  # (S, B, H)
        return self.classifier_out(self.classifier.from_pre_activation(pre))


class DeterministicAuxADGM(ADGM):
    """The ablation of Fig. 2a: a = mu(x) is a deterministic function of x.

    a carries no KL term (it is not a latent variable any more), so the bound is M2's, and
    q(y|a,x) = q(y|mu(x), x) is a deterministic classifier of x.
    """

    stochastic_auxiliary = False

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        del self.a_head  # no variance: a is the output of a plain linear layer
        self.a_mean = glorot_linear(config.hidden[-1], config.a_dim)

    def auxiliary_encoder_parameters(self) -> list[torch.nn.Parameter]:
        """The parameters of the map x -> a = mu(x)."""
        return [*self.a_encoder.parameters(), *self.a_mean.parameters()]

    def q_a(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        """a = mu(x), (B, A); there is no variance."""
        return self.a_mean(self.a_encoder(x)), None

    def sample_auxiliary(
        self, x: torch.Tensor, n_samples: int, *, shared_noise: bool = False
    ) -> Auxiliary:
        """a = mu(x), value (1, B, A); n_samples and shared_noise are ignored."""
        mu, _ = self.q_a(x)
        return Auxiliary(mu.unsqueeze(0))
