"""FLOPs of one training step, counted from the layer sizes (matrix products only).

The count follows what adgm actually computes (``adgm.models``): the x-part of a first layer is
computed once per x and reused for every label y and sample of a; label inputs are one-hot and
cost nothing (a row lookup). A product of an (R, I) matrix with an (I, O) one costs 2 R I O
FLOPs forward; backward costs the same again for the weight gradient and once more for the input
gradient, except where the input is the data x, which needs no gradient.
Element-wise work (activations, log densities, sampling) is not counted.
"""

from __future__ import annotations

from typing import NamedTuple

from adgm.config import ModelConfig


class MacCount(NamedTuple):
    """Multiply-adds of a forward pass, and how many of them take the data x as input."""

    total: int
    on_data: int


def _mlp_macs(rows: int, first_in: int, hidden: tuple[int, ...], out: int) -> int:
    """Multiply-adds of first_in -> hidden... -> out for `rows` rows."""
    sizes = (first_in, *hidden, out)
    return rows * sum(a * b for a, b in zip(sizes, sizes[1:]))


def forward_macs(config: ModelConfig, batch: int, n_samples: int, *, labelled: bool) -> MacCount:
    """Multiply-adds of one forward pass of the bound over `batch` points."""
    d, h, k, z, a = config.x_dim, config.hidden, config.n_classes, config.z_dim, config.a_dim
    labels = 1 if labelled else k
    x_part = batch * d * h[0]  # a first layer applied to x, once per x
    if config.name in ("adgm-gen", "sdgm"):
        return _generative_auxiliary_macs(config, batch, n_samples, labels)
    # q(z|y,x): x-part once, the rest once per (x, label); p(x|z,y) once per (sample, label).
    total = x_part + _mlp_macs(batch * labels, h[0], h[1:], 2 * z)
    total += _mlp_macs(n_samples * batch * labels, z, h, d)
    if config.name == "m2":  # q(y|x)
        return MacCount(total + _mlp_macs(batch, d, h, k), 2 * x_part)
    samples_of_a = n_samples if config.name == "adgm" else 1
    a_out = 2 * a if config.name == "adgm" else a  # mean and log-variance, or the mean only
    total += _mlp_macs(batch, d, h, a_out)  # q(a|x)
    return MacCount(total + _classifier_macs(config, batch, samples_of_a), 3 * x_part)


def _classifier_macs(config: ModelConfig, batch: int, samples_of_a: int) -> int:
    """q(y|a,x): its x-part once per x, the rest once per sample of a; q(y|x) once per x."""
    d, h, k, a = config.x_dim, config.hidden, config.n_classes, config.a_dim
    if not config.classifier_reads_auxiliary:
        return _mlp_macs(batch, d, h, k)
    return (
        batch * d * h[0]
        + samples_of_a * batch * a * h[0]
        + _mlp_macs(samples_of_a * batch, h[0], h[1:], k)
    )


def step_flops(
    config: ModelConfig, labelled_batch: int, unlabelled_batch: int, n_samples: int
) -> int:
    """FLOPs of one training step (forward and backward), 2 FLOPs a multiply-add."""
    flops = 0
    for batch, labelled in ((labelled_batch, True), (unlabelled_batch, False)):
        macs = forward_macs(config, batch, n_samples, labelled=labelled)
        flops += 2 * (3 * macs.total - macs.on_data)
    return flops


def _generative_auxiliary_macs(
    config: ModelConfig, batch: int, n_samples: int, labels: int
) -> MacCount:
    """adgm-gen and the SDGM: every network after q(a|x) runs once per sample of a."""
    d, h, z, a = config.x_dim, config.hidden, config.z_dim, config.a_dim
    x_part = batch * d * h[0]
    rows, pairs = n_samples * batch, n_samples * batch * labels
    total = _mlp_macs(batch, d, h, 2 * a)  # q(a|x)
    total += _classifier_macs(config, batch, n_samples)  # q(y|a,x)
    total += x_part + rows * a * h[0] + _mlp_macs(pairs, h[0], h[1:], 2 * z)  # q(z|a,y,x)
    total += _mlp_macs(pairs, z, h, 2 * a)  # p(a|...): its z-part and the rest
    total += _mlp_macs(pairs, z, h, d)  # p(x|...): its z-part and the rest
    on_data = 3 * x_part
    if config.name == "adgm-gen":  # p(a|x,y,z) also reads x
        total += x_part
        on_data += x_part
    else:  # p(x|a,y,z) also reads a
        total += pairs * a * h[0]
    return MacCount(total, on_data)
