"""benchmarks/label_draws.py: the baselines see the labelled draw of training, rows aligned."""

from __future__ import annotations

import numpy as np

from adgm.data.mnist import Dataset
from adgm.data.split import balanced_label_indices
from tests.scripts import load_script

label_draws = load_script("benchmarks", "label_draws")


def clusters(n_per_class: int, seed: int, noise: float) -> Dataset:
    """Ten classes, each a block of 8 bright pixels of its own among 80, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), n_per_class)
    images = np.full((len(labels), 80), 0.1, dtype=np.float32)
    for row, label in enumerate(labels):
        images[row, 8 * label : 8 * label + 8] = 0.9
    images += rng.normal(0.0, noise, images.shape).astype(np.float32)
    return Dataset(np.clip(images, 0.0, 1.0), labels.astype(np.int64))


def test_separable_classes_are_learned_from_the_draw_alone():
    train, test = clusters(20, seed=0, noise=0.05), clusters(10, seed=1, noise=0.05)
    errors = label_draws.draw_errors(train, test, n_labels=10, label_seed=4)
    assert errors == {"1-NN": 0.0, "logistic regression": 0.0}


def test_the_baselines_are_fitted_to_exactly_the_labelled_draw():
    """Every training image outside the draw shows the next class's pattern: only a fit to the
    draw alone (the rows balanced_label_indices picks for the seed) classifies the test set."""
    train, test = clusters(20, seed=0, noise=0.05), clusters(10, seed=1, noise=0.05)
    drawn = balanced_label_indices(train.labels, 10, 10, 7)
    misleading = np.roll(train.images, 8, axis=1)  # class c's block where class c + 1's is
    misleading[drawn] = train.images[drawn]
    train = Dataset(misleading, train.labels)
    errors = label_draws.draw_errors(train, test, n_labels=10, label_seed=7)
    assert errors == {"1-NN": 0.0, "logistic regression": 0.0}
    # Another seed's draw is mostly misleading images: the baselines then get most labels wrong.
    other = label_draws.draw_errors(train, test, n_labels=10, label_seed=8)
    assert min(other.values()) > 0.5
