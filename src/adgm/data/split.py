"""The semi-supervised split: a balanced, seeded draw of labelled images."""

from __future__ import annotations

import numpy as np

from adgm.errors import AdgmError


def balanced_label_indices(
    labels: np.ndarray, n_labels: int, n_classes: int, seed: int
) -> np.ndarray:
    """Indices of n_labels points, n_labels / n_classes from each class, drawn with `seed`.

    Raises AdgmError if n_labels is not a multiple of n_classes or a class has too few points.
    Returns the indices sorted by class, then by draw order (deterministic for a seed).
    """
    if n_labels < n_classes:
        raise AdgmError(f"n_labels={n_labels} is fewer than the number of classes ({n_classes})")
    if n_labels % n_classes != 0:
        raise AdgmError(
            f"n_labels={n_labels} is not a multiple of the number of classes ({n_classes})"
        )
    per_class = n_labels // n_classes
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(n_classes):
        members = np.flatnonzero(labels == label)
        if len(members) < per_class:
            raise AdgmError(
                f"class {label} has {len(members)} points, fewer than the {per_class} labels asked"
            )
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.concatenate(chosen)
