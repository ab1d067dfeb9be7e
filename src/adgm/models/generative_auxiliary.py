"""ADGM variants whose auxiliary a is part of the generative model (Maaløe et al., ICML 2016).

In the paper's model (``adgm``, eqs. 5-6) a has no child in the generative model, so q(a|x) = p(a)
is an optimum of the bound and a trained q(a|x) collapses to its prior. The ICML 2016 version of
the same work puts a into the generative model, so that the bound rewards an a that explains x:

``adgm-gen`` (their "ADGM"):
    generative   p(y) p(z) p(x|y,z) p(a|x,y,z)
    inference    q(a|x) q(y|a,x) q(z|a,y,x)
``sdgm`` (their "SDGM", skip deep generative model):
    generative   p(y) p(z) p(a|y,z) p(x|a,y,z)
    inference    q(a|x) q(y|a,x) q(z|a,y,x)

with p(y) uniform, p(z) = N(0, I) and

    q(a|x)       = N(a | mu(x), diag sigma^2(x))              (as in ``adgm``)
    q(y|a,x)     = Cat(y | pi(a, x))                          (as in ``adgm``)
    q(z|a,y,x)   = N(z | mu(a, y, x), diag sigma^2(a, y, x))
    p(a|x,y,z)   = N(a | mu(x, y, z), diag sigma^2(x, y, z))  (adgm-gen)
    p(a|y,z)     = N(a | mu(y, z), diag sigma^2(y, z))        (sdgm)
    p(x|a,y,z)   = Bernoulli(sigmoid(f(a, y, z))) or Gaussian  (sdgm; adgm-gen: p(x|y,z))

The bounds are those of ``adgm.objectives`` with log p(a|...) - log q(a|x) in place of
log p(a) - log q(a|x); every factor is evaluated at the same a_i ~ q(a|x) (S, B, A) and the
z_{i,y} ~ q(z|a_i,y,x) drawn for each (point, label) pair.

Shapes: B points, P (point, label) pairs, D features, K classes, A auxiliary and Z latent units,
S Monte Carlo samples. ``rows`` (P,) gives the point of each pair and ``labels`` (P,) its label.
"""

from __future__ import annotations

import torch

from adgm.config import ModelConfig
from adgm.distributions import log_normal_diag
from adgm.models.adgm import ADGM
from adgm.models.base import Auxiliary
from adgm.nn import GaussianLayer, MultiInputMLP
from adgm.pairs import pair_index


class GenerativeAuxiliaryModel(ADGM):
    """What adgm-gen and the SDGM share: q(a|x), q(y|a,x) and q(z|a,y,x); see the module doc."""

    generative_auxiliary = True  # log p(a|...) is a factor of the generative model

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        # q(z|a,y,x): first layer W_x x + W_y y + W_a a + b.
        self.z_encoder = MultiInputMLP(
            (config.x_dim, config.n_classes, config.a_dim), config.hidden
        )

    def q_z_given_auxiliary(
        self, x: torch.Tensor, a: torch.Tensor, rows: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters (mu, logvar) of q(z|a,y,x) for (point, label) pairs, each (S, P, Z).

        Args:
            x: (B, D) points; a: (S, B, A) draws of q(a|x);
            rows: (P,) index of each pair's point; labels: (P,) its label.
        W_x x + b and W_a a are computed once per point, W_y y once per label.
        """
        x_part = self.z_encoder.first_layer_part(0, x)  # (B, H)
        a_part = self.z_encoder.first_layer_part(2, a)  # (S, B, H)
        label_maps = self.z_encoder.input_maps[1].weight.t()  # (K, H)
        pair_part = x_part.index_select(0, rows) + label_maps.index_select(0, labels)  # (P, H)
        pre = a_part.index_select(1, rows) + pair_part  # (S, P, H)
        return self.z_head(self.z_encoder.from_pre_activation(pre))

    def q_z(self, x: torch.Tensor, y: torch.Tensor | None = None, aux: Auxiliary | None = None):
        """Parameters of q(z|a,y,x) for one draw a ~ q(a|x) (or the given aux, S = 1).

        Shapes as ``GenerativeClassifier.q_z``: (B, Z) for labels y (B,), (B, K, Z) for y None.
        """
        aux = aux if aux is not None else self.sample_auxiliary(x, 1)
        given = y if y is not None else x.new_zeros(0, dtype=torch.long)  # None: every label
        rows, labels = pair_index(given, x.shape[0], self.n_classes)
        mu, logvar = self.q_z_given_auxiliary(x, aux.value[:1], rows, labels)
        shape = (x.shape[0],) if y is not None else (x.shape[0], self.n_classes)
        return mu[0].unflatten(0, shape), logvar[0].unflatten(0, shape)

    def z_means(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of q(z|a,y,x) at a = the mean of q(a|x), for every label: (B, K, Z)."""
        mu_a, logvar_a = self.q_a(x)
        return self.q_z(x, aux=Auxiliary(mu_a.unsqueeze(0), mu_a, logvar_a))[0]

    def p_a(
        self, x: torch.Tensor, z: torch.Tensor, rows: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters (mu, logvar) of the generative p(a|...) for the pairs, each (S, P, A)."""
        raise NotImplementedError

    def log_p_auxiliary(
        self,
        a: torch.Tensor,
        x: torch.Tensor,
        z: torch.Tensor,
        rows: torch.Tensor,
        labels: torch.Tensor,
    ) -> torch.Tensor:
        """log p(a|...) at the pairs' draws a (S, P, A), summed over units; (S, P)."""
        mu, logvar = self.p_a(x, z, rows, labels)
        return log_normal_diag(a, mu, logvar)

    def log_px_pairs(
        self,
        x: torch.Tensor,
        z: torch.Tensor,
        a: torch.Tensor,
        rows: torch.Tensor,
        labels: torch.Tensor,
    ) -> torch.Tensor:
        """log p(x|y,z) (adgm-gen) or log p(x|a,y,z) (sdgm) of each pair; (S, P).

        x: (B, D) points; z: (S, P, Z); a: (S, P, A) the pairs' auxiliary draws.
        """
        return self.log_px(x.index_select(0, rows), z, labels)


class GenerativeAuxiliaryADGM(GenerativeAuxiliaryModel):
    """``adgm-gen``: the ADGM with p(a|x,y,z) in the generative model (ICML 2016's ADGM)."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        # p(a|x,y,z): first layer W_z z + W_y y + W_x x + b.
        self.a_decoder = MultiInputMLP(
            (config.z_dim, config.n_classes, config.x_dim), config.hidden
        )
        self.a_decoder_head = GaussianLayer(
            config.hidden[-1], config.a_dim, init=config.resolved_gaussian_init
        )

    def p_a(self, x, z, rows, labels):
        """p(a|x,y,z) = N(mu(x,y,z), diag sigma^2(x,y,z)); x (B, D), z (S, P, Z) -> (S, P, A)."""
        pre = _first_layer(self.a_decoder, z, labels)  # (S, P, H)
        pre = pre + self.a_decoder.first_layer_part(2, x).index_select(0, rows)
        return self.a_decoder_head(self.a_decoder.from_pre_activation(pre))


class SkipDeepGenerativeModel(GenerativeAuxiliaryModel):
    """``sdgm``: p(y) p(z) p(a|y,z) p(x|a,y,z), a a stochastic layer of the generative path."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        # p(a|y,z): first layer W_z z + W_y y + b.
        self.a_decoder = MultiInputMLP((config.z_dim, config.n_classes), config.hidden)
        self.a_decoder_head = GaussianLayer(
            config.hidden[-1], config.a_dim, init=config.resolved_gaussian_init
        )
        # p(x|a,y,z): the base decoder's first layer W_z z + W_y y + b, plus W_a a.
        self.decoder = MultiInputMLP((config.z_dim, config.n_classes, config.a_dim), config.hidden)

    def p_a(self, x, z, rows, labels):
        """p(a|y,z) = N(mu(y, z), diag sigma^2(y, z)); z (S, P, Z) -> (S, P, A)."""
        return self.a_decoder_head(
            self.a_decoder.from_pre_activation(_first_layer(self.a_decoder, z, labels))
        )

    def decode(
        self, z: torch.Tensor, y: torch.Tensor | None = None, a: torch.Tensor | None = None
    ) -> torch.Tensor:
        """f(a, y, z): logits of p(x|a,y,z) (or the Gaussian mean).

        z: (..., B, Z) with y (B,), or (..., B, K, Z) with y None; a broadcastable to z's shape
        with A units. a None: a = the mean of p(a|y,z) (for drawing samples of x).
        """
        pre = _first_layer(self.decoder, z, y)
        if a is None:
            a_pre = _first_layer(self.a_decoder, z, y)
            a, _ = self.a_decoder_head(self.a_decoder.from_pre_activation(a_pre))
        pre = pre + self.decoder.first_layer_part(2, a)
        return self.decoder_out(self.decoder.from_pre_activation(pre))

    def log_px_pairs(self, x, z, a, rows, labels):
        """log p(x|a,y,z) of each pair; x (B, D), z (S, P, Z), a (S, P, A) -> (S, P)."""
        f = self.decode(z, labels, a)
        return self.log_likelihood_of(x.index_select(0, rows), f)


def _first_layer(mlp: MultiInputMLP, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """W_z z + W_y y + b of an MLP whose inputs start with (z, y); labels (P,) or None (all K)."""
    label_maps = mlp.input_maps[1].weight.t()  # (K, H)
    pre = mlp.first_layer_part(0, z)
    return pre + (label_maps if labels is None else label_maps.index_select(0, labels))
