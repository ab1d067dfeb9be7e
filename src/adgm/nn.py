"""Building blocks: a ReLU MLP whose first layer can take several inputs, and a Gaussian layer.

The first layer of a network with inputs (x, y) or (x, a) is written as a sum of one linear map
per input, ``h1 = relu(W_x x + W_y y + b)``. This is the same function as one linear map of the
concatenation [x, y], but it lets a caller compute ``W_x x`` once and reuse it for every label y
or every sample of a (see ``adgm.models``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


def glorot_normal_(weight: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Glorot & Bengio (2010) normal init: std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_out, fan_in = weight.shape
    with torch.no_grad():
        return weight.normal_(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def glorot_linear(n_in: int, n_out: int, *, gain: float = 1.0, bias: bool = True) -> nn.Linear:
    """A linear layer with Glorot-normal weights and biases ~ N(0, 1e-3^2) (the released code)."""
    layer = nn.Linear(n_in, n_out, bias=bias)
    glorot_normal_(layer.weight, gain)
    if bias:
        with torch.no_grad():
            layer.bias.normal_(0.0, 1e-3)
    return layer


RELU_GAIN = math.sqrt(2.0)


class MultiInputMLP(nn.Module):
    """h = MLP(x_1, ..., x_m): first layer relu(sum_i W_i x_i + b), then ReLU layers.

    Args:
        input_dims: sizes of the inputs, e.g. (784, 10) for (x, y).
        hidden: hidden layer sizes, e.g. (500, 500).
    """

    def __init__(self, input_dims: Sequence[int], hidden: Sequence[int]):
        super().__init__()
        first = hidden[0]
        self.input_maps = nn.ModuleList(
            [
                glorot_linear(d, first, gain=RELU_GAIN, bias=(i == 0))
                for i, d in enumerate(input_dims)
            ]
        )
        self.layers = nn.ModuleList(
            [glorot_linear(h_in, h_out, gain=RELU_GAIN) for h_in, h_out in zip(hidden, hidden[1:])]
        )
        self.out_dim = hidden[-1]

    def first_layer_part(self, index: int, value: torch.Tensor) -> torch.Tensor:
        """W_index @ value (+ b for input 0), before the ReLU; shape (..., hidden[0])."""
        return self.input_maps[index](value)

    def from_pre_activation(self, pre: torch.Tensor) -> torch.Tensor:
        """The rest of the network, given the summed first-layer pre-activation (..., hidden[0])."""
        h = torch.relu(pre)
        for layer in self.layers:
            h = torch.relu(layer(h))
        return h

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        pre = sum(self.first_layer_part(i, v) for i, v in enumerate(inputs))
        return self.from_pre_activation(pre)


class GaussianLayer(nn.Module):
    """A diagonal Gaussian N(mu(h), diag exp(logvar(h))) from a hidden representation h.

    Returns ``(mu, logvar)``, each of shape (..., out_dim); ``sample`` applies the
    reparameterisation trick, ``mu + exp(logvar / 2) * eps`` with eps ~ N(0, I).

    init: "glorot" (the paper: Glorot-normal weights) or "small" (weights and biases
    ~ N(0, 1e-3^2), as the authors' ICML 2016 code: every Gaussian starts close to N(0, I)).
    """

    def __init__(self, n_in: int, out_dim: int, *, init: str = "glorot"):
        super().__init__()
        self.mu = glorot_linear(n_in, out_dim)
        self.logvar = glorot_linear(n_in, out_dim)
        if init == "small":
            with torch.no_grad():
                for layer in (self.mu, self.logvar):
                    layer.weight.normal_(0.0, 1e-3)
        elif init != "glorot":
            raise ValueError(f"unknown Gaussian layer init {init!r}")

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar), in float32 also under bf16 autocast: the densities and KL terms built
        from them are sums over units that need its precision."""
        mu, logvar = self.mu(h), self.logvar(h)
        if mu.dtype in (torch.bfloat16, torch.float16):
            return mu.float(), logvar.float()
        return mu, logvar

    @staticmethod
    def sample(
        mu: torch.Tensor, logvar: torch.Tensor, n_samples: int, *, shared_noise: bool = False
    ) -> torch.Tensor:
        """Draw (n_samples, *mu.shape) reparameterised samples.

        With shared_noise, the same eps_i (n_samples, 1, *mu.shape[1:]) serves every row of the
        batch (common random numbers): a row's draws then do not depend on the other rows.
        """
        batch_shape = (1, *mu.shape[1:]) if shared_noise else tuple(mu.shape)
        eps = torch.randn((n_samples, *batch_shape), dtype=mu.dtype, device=mu.device)
        return GaussianLayer.reparameterise(mu, logvar, eps)

    @staticmethod
    def reparameterise(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """mu + exp(logvar / 2) * eps: a draw of N(mu, diag exp(logvar)) for eps ~ N(0, I)."""
        return mu + torch.exp(0.5 * logvar) * eps
