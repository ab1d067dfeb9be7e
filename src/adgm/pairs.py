"""The (point, label) pairs of one pass and the Monte Carlo noise drawn for them.

A pass covers B points whose first B_l carry labels: each labelled point is paired with its own
label, each other point with every one of the K labels (eq. 11), P = B_l + (B - B_l) K pairs.
The noise is drawn in one fixed order, eps_a then eps_z of the labelled points, then eps_a and
eps_z of the others, so that one pass over both halves of a batch equals the labelled and the
unlabelled bounds computed apart, draw for draw (``adgm.objectives``).
"""

from __future__ import annotations

import torch


def pair_index(y_labelled: torch.Tensor, n_rows: int, n_classes: int):
    """(rows, labels), each (P,): (i, y_i) for the labelled rows, then (i, k) for k = 0..K-1."""
    n_labelled = y_labelled.shape[0]
    device = y_labelled.device
    other = torch.arange(n_labelled, n_rows, device=device)
    rows = torch.cat([torch.arange(n_labelled, device=device), other.repeat_interleave(n_classes)])
    labels = torch.cat([y_labelled, torch.arange(n_classes, device=device).repeat(len(other))])
    return rows, labels


def draw_noise(
    x: torch.Tensor,
    n_labelled: int,
    n_samples: int,
    *,
    a_units: int | None,
    z_units: int,
    n_classes: int,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """eps_a (S, B, A), or None when a_units is None (no stochastic a), and eps_z (S, P, Z),
    each ~ N(0, I) in x's dtype and device, drawn in the order of the module docstring."""
    n_other = x.shape[0] - n_labelled

    def draw(rows: int, units: int) -> torch.Tensor:
        return torch.randn((n_samples, rows, units), dtype=x.dtype, device=x.device)

    eps_a_l = draw(n_labelled, a_units) if a_units is not None else None
    eps_z_l = draw(n_labelled, z_units)
    eps_a_u = draw(n_other, a_units) if a_units is not None else None
    eps_z_u = draw(n_other * n_classes, z_units)
    eps_z = torch.cat([eps_z_l, eps_z_u], dim=1)
    if a_units is None:
        return None, eps_z
    return torch.cat([eps_a_l, eps_a_u], dim=1), eps_z
