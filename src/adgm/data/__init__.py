"""Data: MNIST IDX files, the semi-supervised split, binarisation and batching."""

from adgm.data.batches import (
    SemiSupervisedData,
    binarise_fixed,
    epoch_batches,
    load_data,
    resolve_likelihood,
    split_given_labels,
    split_semi_supervised,
    steps_per_epoch,
)
from adgm.data.idx import read_idx_gz
from adgm.data.mnist import Dataset, load_fashion_mnist, load_mnist, resolve_data_dir
from adgm.data.readers import OwnData, read_own_data
from adgm.data.split import balanced_label_indices

__all__ = [
    "Dataset",
    "SemiSupervisedData",
    "balanced_label_indices",
    "binarise_fixed",
    "epoch_batches",
    "OwnData",
    "load_data",
    "load_fashion_mnist",
    "load_mnist",
    "read_own_data",
    "resolve_likelihood",
    "split_given_labels",
    "read_idx_gz",
    "resolve_data_dir",
    "split_semi_supervised",
    "steps_per_epoch",
]
