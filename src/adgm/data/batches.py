"""Tensors for training and evaluation, and the paper's batches of labelled + unlabelled images."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from adgm.config import DataConfig
from adgm.data.mnist import Dataset, load_fashion_mnist, load_mnist
from adgm.data.readers import OwnData, read_own_data
from adgm.data.split import balanced_label_indices
from adgm.errors import AdgmError

EVAL_BINARISATION_SEED = 20160217  # fixed: every run is evaluated on the same binary test images
FIXED_ORDER_SALT = 2  # the "fixed" unlabelled order is drawn with label_seed + 2 (the hold-out: +1)


@dataclass(frozen=True)
class SemiSupervisedData:
    """Everything a run needs, as tensors on one device.

    With ``likelihood == "bernoulli"``, x_labelled (N_l, D) and x_unlabelled (N_u, D) hold grey
    levels in [0, 1]: they are binarised afresh as batches are drawn, and x_test and x_valid are
    binarised once, with a fixed seed (or kept as grey levels: ``DataConfig.test_inputs``).
    shuffle False: the unlabelled rows are visited in their stored order every epoch (the
    class-sorted or fixed order of ``DataConfig.unlabelled_order``). With "gaussian" all
    features are real numbers, standardised with ``feature_mean`` and ``feature_std`` (D,) of
    the training set, and used as they are. x_test is None when there is no test set (own
    data without one).
    binarise False: Bernoulli data are used as grey levels in training too (the Bernoulli
    log-likelihood sum_d x_d log p_d + (1 - x_d) log(1 - p_d) holds for x_d in [0, 1]).
    y_unlabelled (N_u,): the true classes of the unlabelled rows, in their stored order, where
    the data set has them (MNIST and Fashion-MNIST; None for own data). Training never reads
    them; they say which classes an unshuffled epoch visits when (benchmarks/epoch_phase.py).
    x_train_eval (N_e, D), y_train_eval (N_e,): the last ``DataConfig.eval_train_points``
    training images, prepared as the test images, and their classes: the error on images the
    run trains on (unlabelled), beside the test error; None when not asked for.
    """

    x_labelled: torch.Tensor
    y_labelled: torch.Tensor
    x_unlabelled: torch.Tensor
    x_test: torch.Tensor | None
    y_test: torch.Tensor | None
    x_valid: torch.Tensor | None
    y_valid: torch.Tensor | None
    n_classes: int
    likelihood: str = "bernoulli"
    feature_mean: np.ndarray | None = None
    feature_std: np.ndarray | None = None
    shuffle: bool = True
    binarise: bool = True
    y_unlabelled: torch.Tensor | None = None
    x_train_eval: torch.Tensor | None = None
    y_train_eval: torch.Tensor | None = None

    @property
    def x_dim(self) -> int:
        return self.x_unlabelled.shape[1]


def binarise_fixed(images: np.ndarray, seed: int = EVAL_BINARISATION_SEED) -> np.ndarray:
    """One Bernoulli draw per pixel with a fixed seed: the binary images used for evaluation."""
    rng = np.random.default_rng(seed)
    return (rng.random(images.shape, dtype=np.float32) < images).astype(np.float32)


def split_semi_supervised(
    train: Dataset, test: Dataset, config: DataConfig, *, n_classes: int, device: str = "cpu"
) -> SemiSupervisedData:
    """The paper's split: labelled subset drawn from all training images, which all stay unlabelled.

    With n_validation > 0, that many images (drawn with label_seed) are held out of the
    unlabelled set as a validation set before the labelled subset is drawn.
    """
    config.validate()
    validate_dataset(train, n_classes, "training set")
    validate_dataset(test, n_classes, "test set")
    if train.images.shape[1] != test.images.shape[1]:
        raise AdgmError(
            f"training images have {train.images.shape[1]} features, "
            f"test images {test.images.shape[1]}"
        )
    if config.subset is not None:
        train = Dataset(train.images[: config.subset], train.labels[: config.subset])
    if config.test_subset is not None:
        test = Dataset(test.images[: config.test_subset], test.labels[: config.test_subset])
    train, valid = _hold_out(train, config.n_validation, config.label_seed)
    labelled = balanced_label_indices(train.labels, config.n_labels, n_classes, config.label_seed)
    unlabelled_rows = np.arange(len(train))
    if config.unlabelled_order == "class-sorted":  # class 0 first, then 1, ...; stable
        unlabelled_rows = np.argsort(train.labels, kind="stable")
    elif config.unlabelled_order == "fixed":  # one permutation, drawn with the label seed
        unlabelled_rows = np.random.default_rng(config.label_seed + FIXED_ORDER_SALT).permutation(
            len(train)
        )
    test_images = test_inputs(test.images, config.test_inputs)
    if config.unlabelled_batch > len(train):
        raise AdgmError(
            f"unlabelled_batch={config.unlabelled_batch} exceeds the {len(train)} training images"
        )
    if config.eval_train_points > len(train):
        raise AdgmError(
            f"eval_train_points={config.eval_train_points} exceeds the {len(train)} training images"
        )
    train_eval = slice(len(train) - config.eval_train_points, None)

    def tensor(array: np.ndarray) -> torch.Tensor:
        return _to_tensor(array, device)

    return SemiSupervisedData(
        x_labelled=tensor(train.images[labelled]),
        y_labelled=tensor(train.labels[labelled]),
        x_unlabelled=tensor(train.images[unlabelled_rows]),
        y_unlabelled=tensor(train.labels[unlabelled_rows]),
        x_test=tensor(test_images),
        y_test=tensor(test.labels),
        x_valid=None if valid is None else tensor(test_inputs(valid.images, config.test_inputs)),
        y_valid=None if valid is None else tensor(valid.labels),
        n_classes=n_classes,
        shuffle=config.unlabelled_order == "shuffled",
        x_train_eval=(
            tensor(test_inputs(train.images[train_eval], config.test_inputs))
            if config.eval_train_points
            else None
        ),
        y_train_eval=tensor(train.labels[train_eval]) if config.eval_train_points else None,
    )


def test_inputs(images: np.ndarray, kind: str) -> np.ndarray:
    """Evaluation images of a Bernoulli model: "binary" (one seeded binarisation) or "grey"."""
    return binarise_fixed(images) if kind == "binary" else images


def _to_tensor(array: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)


def validate_dataset(data: Dataset, n_classes: int, name: str) -> None:
    """Check what the models assume of a data set; an AdgmError names the first problem.

    images: (N, D) finite values in [0, 1] (Bernoulli means); labels: (N,) integers in
    [0, n_classes).
    """
    images, labels = np.asarray(data.images), np.asarray(data.labels)
    if images.ndim != 2 or images.shape[0] == 0 or images.shape[1] == 0:
        raise AdgmError(f"{name}: images must be a non-empty (N, D) array, got {images.shape}")
    if labels.shape != (images.shape[0],):
        raise AdgmError(f"{name}: {images.shape[0]} images but labels of shape {labels.shape}")
    if not np.issubdtype(images.dtype, np.floating):
        raise AdgmError(f"{name}: images must be floating point in [0, 1], got {images.dtype}")
    if not np.all(np.isfinite(images)):
        raise AdgmError(f"{name}: images contain NaN or infinite values")
    if images.min() < 0 or images.max() > 1:
        raise AdgmError(
            f"{name}: pixel values must lie in [0, 1] (Bernoulli means), "
            f"found [{images.min():g}, {images.max():g}]"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise AdgmError(f"{name}: labels must be integers, got {labels.dtype}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise AdgmError(
            f"{name}: labels must lie in 0..{n_classes - 1}, found {labels.min()}..{labels.max()}"
        )


def _hold_out(train: Dataset, n_validation: int, seed: int) -> tuple[Dataset, Dataset | None]:
    if n_validation == 0:
        return train, None
    if n_validation >= len(train):
        raise AdgmError(f"n_validation={n_validation} leaves no training images")
    order = np.random.default_rng(seed + 1).permutation(len(train))
    keep, held = np.sort(order[n_validation:]), np.sort(order[:n_validation])
    return (
        Dataset(train.images[keep], train.labels[keep]),
        Dataset(train.images[held], train.labels[held]),
    )


IDX_DATASETS = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist}


def load_data(
    config: DataConfig, *, likelihood: str = "auto", device: str = "cpu"
) -> SemiSupervisedData:
    """The data set config.dataset names: "mnist", "fashion-mnist" or a path to own data.

    MNIST-format sets are fully labelled: n_labels of them are drawn (the paper's split). Own
    data (.npz, .csv or an image folder, see ``adgm.data.readers``) brings its own labels.
    """
    if config.dataset in IDX_DATASETS:
        train, test = IDX_DATASETS[config.dataset](config.data_dir)
        if likelihood not in ("auto", "bernoulli"):
            raise AdgmError(
                f"{config.dataset} images are grey levels: use the Bernoulli likelihood"
            )
        return split_semi_supervised(train, test, config, n_classes=10, device=device)
    if config.unlabelled_order == "class-sorted":
        raise AdgmError(
            "unlabelled_order='class-sorted' needs the labels of every training "
            "image; it works with mnist and fashion-mnist only"
        )
    if config.unlabelled_order != "shuffled":
        raise AdgmError(
            f"unlabelled_order={config.unlabelled_order!r} is the authors' MNIST order; it works "
            "with mnist and fashion-mnist only"
        )
    if config.eval_train_points:
        raise AdgmError(
            "eval_train_points needs the class of every training image; it works with mnist "
            "and fashion-mnist only"
        )
    own = read_own_data(
        config.dataset, test_path=config.test_data, label_column=config.label_column
    )
    return split_given_labels(
        own, likelihood=likelihood, device=device, test_kind=config.test_inputs
    )


def resolve_likelihood(requested: str, features: np.ndarray) -> str:
    """ "auto" -> "bernoulli" for features in [0, 1] (grey levels), else "gaussian"."""
    if requested == "auto":
        inside = features.size > 0 and features.min() >= 0 and features.max() <= 1
        return "bernoulli" if inside else "gaussian"
    if requested == "bernoulli" and (features.min() < 0 or features.max() > 1):
        raise AdgmError(
            "the Bernoulli likelihood needs features in [0, 1], found "
            f"[{features.min():g}, {features.max():g}]; use the Gaussian likelihood"
        )
    if requested not in ("bernoulli", "gaussian"):
        raise AdgmError(f"unknown likelihood {requested!r}; use auto, bernoulli or gaussian")
    return requested


def split_given_labels(
    own: OwnData, *, likelihood: str = "auto", device: str = "cpu", test_kind: str = "binary"
) -> SemiSupervisedData:
    """Own data: rows with a label (>= 0) are the labelled set; all rows are the unlabelled set.

    With the Gaussian likelihood every feature is standardised with the training set's mean and
    standard deviation (a constant feature keeps its scale), test features alike.
    """
    train, test = own.train, own.test
    n_classes = len(own.class_names)
    labelled = np.flatnonzero(train.labels >= 0)
    if n_classes < 2:
        raise AdgmError(f"the data have labels of {n_classes} class(es); at least 2 are needed")
    likelihood = resolve_likelihood(likelihood, train.images)
    mean = std = None
    x_train, x_test = train.images, None if test is None else test.images
    if likelihood == "gaussian":
        mean, spread = x_train.mean(0), x_train.std(0)
        std = np.where(spread > 1e-6, spread, 1.0).astype(np.float32)
        x_train = (x_train - mean) / std
        x_test = None if test is None else (test.images - mean) / std
    elif x_test is not None:
        if x_test.min() < 0 or x_test.max() > 1:
            raise AdgmError("test features must lie in [0, 1] like the training features")
        x_test = test_inputs(x_test, test_kind)

    def tensor(array):
        return None if array is None else _to_tensor(array, device)

    return SemiSupervisedData(
        x_labelled=tensor(x_train[labelled]),
        y_labelled=tensor(train.labels[labelled]),
        x_unlabelled=tensor(x_train),
        x_test=tensor(x_test),
        y_test=None if test is None else tensor(test.labels),
        x_valid=None,
        y_valid=None,
        n_classes=n_classes,
        likelihood=likelihood,
        feature_mean=mean,
        feature_std=std,
    )


def steps_per_epoch(data: SemiSupervisedData, unlabelled_batch: int, world_size: int = 1) -> int:
    """One epoch is one pass over the unlabelled set: (N_u // W) // unlabelled_batch steps
    (W processes each take a shard of N_u // W rows; W = 1 without distributed training)."""
    return (len(data.x_unlabelled) // world_size) // unlabelled_batch


def epoch_batches(
    data: SemiSupervisedData,
    generator: torch.Generator,
    *,
    labelled_batch: int,
    unlabelled_batch: int,
    max_steps: int | None = None,
    shard: tuple[int, int] = (0, 1),
    noise_on_device: bool | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield (x_labelled (B_l, D), y_labelled (B_l,), x_unlabelled (B_u, D)) binary batches.

    The unlabelled set is shuffled once per epoch (unless data.shuffle is False) and each image
    is binarised by a fresh Bernoulli draw when its batch is made (so once per epoch); Gaussian
    data are used as they are.
    The labelled half is the whole labelled set when labelled_batch equals its size (the paper:
    100 of 100), otherwise a random subset per step; it is binarised afresh at every step, as in
    the authors' released code.
    All randomness comes from `generator` (a CPU generator), so a seeded generator gives the same
    batches.

    noise_on_device (default: when the data are not on the CPU): draw the per-step noise
    (binarisation, labelled subsets) with a generator on the data's device, seeded once per epoch
    from `generator`. A step then makes no host-to-device copy, which on a GPU would wait for the
    work queued before it; the batches are as reproducible, but other than the CPU draws.

    shard = (rank, W): process `rank` of W takes the rows rank, rank + W, ... of the epoch's
    permutation (the same permutation on every process, whose generators share a seed) and the
    same labelled half.
    """
    n_labelled = len(data.y_labelled)
    if labelled_batch > n_labelled:
        raise AdgmError(f"labelled_batch={labelled_batch} exceeds the {n_labelled} labels")
    device = data.x_unlabelled.device
    rank, world_size = shard
    if data.shuffle:
        order = torch.randperm(len(data.x_unlabelled), generator=generator).to(device)
    else:  # the stored order, every epoch (the authors' class-sorted or fixed order)
        order = torch.arange(len(data.x_unlabelled), device=device)
    order = order[rank::world_size]
    if noise_on_device is None:
        noise_on_device = device.type != "cpu"
    noise = generator
    if noise_on_device:
        seed = int(torch.randint(2**62, (1,), generator=generator))
        noise = torch.Generator(device=device).manual_seed(seed)
    n_steps = steps_per_epoch(data, unlabelled_batch, world_size)
    if max_steps is not None:
        n_steps = min(n_steps, max_steps)
    for step in range(n_steps):
        rows = order[step * unlabelled_batch : (step + 1) * unlabelled_batch]
        if labelled_batch == n_labelled:
            labelled_rows = torch.arange(n_labelled, device=device)
        else:
            labelled_rows = torch.randperm(n_labelled, generator=noise, device=noise.device)
            labelled_rows = labelled_rows[:labelled_batch].to(device)
        x_l, x_u = data.x_labelled[labelled_rows], data.x_unlabelled[rows]
        if data.likelihood == "bernoulli" and data.binarise:
            x_l, x_u = _bernoulli(x_l, noise), _bernoulli(x_u, noise)
        yield x_l, data.y_labelled[labelled_rows], x_u


def _bernoulli(probabilities: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Binary images: pixel = 1 with probability equal to its grey level.

    The uniform draws are made on the generator's device and moved to the data's (no copy when
    they are the same).
    """
    uniform = torch.rand(probabilities.shape, generator=generator, device=generator.device)
    return (uniform.to(probabilities.device) < probabilities).to(probabilities.dtype)
