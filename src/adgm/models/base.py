"""What M2 and the ADGM share: the generative model p(x|y,z) and the encoder q(z|y,x).

p(x|y,z) is Bernoulli (binary or [0, 1] data, the paper) or a diagonal Gaussian with a learned
variance per feature (real-valued, standardised data), chosen by ``ModelConfig.likelihood``.

Shapes: B points, D pixels, K classes, Z latent units, S Monte Carlo samples.
Labels enter the networks one-hot. When no label is given, the encoder and decoder enumerate all
K labels at once (eq. 11), reusing the label-free part of the first layer for every label.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from adgm.config import ModelConfig
from adgm.distributions import log_bernoulli, log_normal_diag
from adgm.nn import GaussianLayer, MultiInputMLP, glorot_linear

GAUSSIAN_LOGVAR_FLOOR = math.log(1e-3)


class Auxiliary(NamedTuple):
    """The auxiliary variable a of one forward pass (None everywhere for M2).

    value: a itself, (S, B, A) when stochastic, (1, B, A) when deterministic.
    mu, logvar: parameters of q(a|x), (B, A); None unless a is stochastic.
    """

    value: torch.Tensor | None
    mu: torch.Tensor | None = None
    logvar: torch.Tensor | None = None


class GenerativeClassifier(nn.Module):
    """p(y) p(z) p(x|y,z) with p(z) = N(0, I), p(y) uniform, and q(z|y,x).

    p(x|y,z) = Bernoulli(sigmoid(f(z, y))), or N(f(z, y), diag exp(x_logvar)) with one learned
    log-variance per feature when ``config.likelihood == "gaussian"``.

    Subclasses add the classifier q(y|...) and, for the ADGM, the auxiliary q(a|x).
    """

    stochastic_auxiliary = False  # True where q(a|x) is a distribution to sample (the ADGM)
    generative_auxiliary = False  # True where a is also generated, p(a|...) (adgm-gen, sdgm)

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        hidden = config.hidden
        # q(z|y,x) = N(mu(y,x), diag sigma^2(y,x)): first layer W_x x + W_y y + b.
        self.z_encoder = MultiInputMLP((config.x_dim, config.n_classes), hidden)
        self.z_head = GaussianLayer(hidden[-1], config.z_dim, init=config.resolved_gaussian_init)
        # p(x|z,y) = Bernoulli(sigmoid(f(z, y))): first layer W_z z + W_y y + b.
        self.decoder = MultiInputMLP((config.z_dim, config.n_classes), hidden)
        self.decoder_out = glorot_linear(hidden[-1], config.x_dim)
        if config.likelihood == "gaussian":
            self.x_logvar = nn.Parameter(torch.zeros(config.x_dim))  # (D,), variance 1 at start

    @property
    def n_classes(self) -> int:
        return self.config.n_classes

    def q_z(self, x: torch.Tensor, y: torch.Tensor | None = None):
        """Parameters (mu, logvar) of q(z|y,x).

        Args:
            x: (B, D) images.
            y: (B,) integer labels, or None to enumerate all K labels.
        Returns:
            mu, logvar of shape (B, Z) for given labels, (B, K, Z) for all labels.
        """
        if y is not None:
            return self.q_z_pairs(x, y)
        mu, logvar = self.q_z_pairs(x, y=x.new_zeros(0, dtype=torch.long))
        shape = (x.shape[0], self.n_classes)
        return mu.unflatten(0, shape), logvar.unflatten(0, shape)

    def q_z_pairs(self, x: torch.Tensor, y: torch.Tensor):
        """Parameters (mu, logvar) of q(z|y,x) for the (point, label) pairs of a training step.

        The first B_l rows of x are paired with their labels y; each other row is paired with
        every one of the K labels (eq. 11). All pairs go through the network in one pass, and the
        label-free part of the first layer, W_x x + b, is computed once per row.

        Args:
            x: (B, D) images, the B_l labelled ones first.
            y: (B_l,) integer labels of the first B_l rows, B_l <= B.
        Returns:
            mu, logvar of shape (P, Z), P = B_l + (B - B_l) K: the labelled pairs in row order,
            then (row, label) for the other rows, row-major (the label changes fastest).
        """
        x_part = self.z_encoder.first_layer_part(0, x)  # (B, H), includes the bias
        label_maps = self.z_encoder.input_maps[1].weight.t()  # (K, H): W_y applied to one-hots
        n_labelled = y.shape[0]
        pre_parts = []  # pre-activations of the first layer, (pairs, H)
        if n_labelled > 0:
            pre_parts.append(x_part[:n_labelled] + label_maps.index_select(0, y))
        if n_labelled < x.shape[0]:
            pre_parts.append((x_part[n_labelled:].unsqueeze(1) + label_maps).flatten(0, 1))
        pre = pre_parts[0] if len(pre_parts) == 1 else torch.cat(pre_parts)
        return self.z_head(self.z_encoder.from_pre_activation(pre))

    def z_means(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of q(z|y,x) for every label: x (B, D) -> (B, K, Z)."""
        return self.q_z(x)[0]

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """f(z, y): the logits of a Bernoulli p(x|z,y), or the mean of a Gaussian one.

        Args:
            z: (..., B, Z) with y given as (B,) labels, or (..., B, K, Z) with y None
               (label k of the K axis).
        Returns:
            f of shape z.shape[:-1] + (D,).
        """
        label_maps = self.decoder.input_maps[1].weight.t()  # (K, H)
        pre = self.decoder.first_layer_part(0, z)  # (..., H), includes the bias
        pre = pre + (label_maps if y is None else label_maps.index_select(0, y))
        return self.decoder_out(self.decoder.from_pre_activation(pre))

    def log_px(
        self, x: torch.Tensor, z: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """log p(x|z,y), summed over the D features.

        Args:
            x: data broadcastable against decode(z, y), e.g. (B, D) with z (S, B, Z), or
               (B, 1, D) with z (S, B, K, Z) and y None.
        Returns:
            shape decode(z, y).shape[:-1].
        """
        return self.log_likelihood_of(x, self.decode(z, y))

    def log_likelihood_of(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """log p(x|f) summed over features: Bernoulli with logits f, or N(f, diag exp(x_logvar)).

        The Gaussian's log-variance is floored at GAUSSIAN_LOGVAR_FLOOR (variance 1e-3 of a
        standardised feature): a constant feature, standardised to exactly 0, would otherwise
        let log p(x|z,y) grow without bound as its variance shrinks.
        """
        if self.config.likelihood == "gaussian":
            return log_normal_diag(x, f, self.x_logvar.clamp(min=GAUSSIAN_LOGVAR_FLOOR))
        return log_bernoulli(x, f)

    def x_mean(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """E[x|z,y]: sigmoid(f) for Bernoulli pixels, f for Gaussian features; (..., D)."""
        f = self.decode(z, y)
        return f if self.config.likelihood == "gaussian" else torch.sigmoid(f)

    def auxiliary_encoder_parameters(self) -> list[nn.Parameter]:
        """The parameters of q(a|x) (none for M2); see subclasses."""
        return []

    def sample_auxiliary(
        self, x: torch.Tensor, n_samples: int, *, shared_noise: bool = False
    ) -> Auxiliary:
        """Draw the auxiliary variable for x; see subclasses."""
        raise NotImplementedError

    def q_y_logits(self, x: torch.Tensor, aux: Auxiliary) -> torch.Tensor:
        """Logits of the classifier, (S, B, K) (S = 1 when it does not depend on samples)."""
        raise NotImplementedError

    @torch.no_grad()
    def predict_proba(
        self, x: torch.Tensor, n_samples: int = 100, *, shared_noise: bool = False
    ) -> torch.Tensor:
        """E_q(a|x)[q(y|a,x)] estimated with n_samples draws of a (q(y|x) for M2); (B, K).

        shared_noise: every row uses the same eps_1..eps_S, so a row's estimate does not depend
        on which other rows are in the batch (still an unbiased S-sample estimate per row).
        """
        aux = self.sample_auxiliary(x, n_samples, shared_noise=shared_noise)
        return F.softmax(self.q_y_logits(x, aux), dim=-1).mean(0)
