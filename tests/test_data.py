"""IDX reading, md5 checks, the label split, binarisation and batching."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
import torch

from adgm.config import DataConfig
from adgm.data import (
    Dataset,
    balanced_label_indices,
    binarise_fixed,
    epoch_batches,
    load_mnist,
    resolve_data_dir,
    split_semi_supervised,
)
from adgm.data.idx import IMAGE_MAGIC, LABEL_MAGIC, parse_idx, read_idx_gz
from adgm.errors import AdgmError


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_idx_round_trip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(images, IMAGE_MAGIC)))
    np.testing.assert_array_equal(read_idx_gz(path, magic=IMAGE_MAGIC), images)


@pytest.mark.parametrize(
    "raw, message",
    [
        (idx_bytes(np.zeros(3), LABEL_MAGIC), "wrong IDX magic number"),
        (idx_bytes(np.zeros((2, 2, 2)), IMAGE_MAGIC)[:-1], "payload has 7 bytes"),
        (IMAGE_MAGIC.to_bytes(4, "big") + b"\x00\x00", "truncated IDX header"),
        (b"\x00", "not an IDX file"),
    ],
)
def test_bad_idx_bytes_give_clear_errors(raw, message):
    with pytest.raises(AdgmError, match=message):
        parse_idx(raw, magic=IMAGE_MAGIC, name="f")


def test_corrupt_gzip_gives_clear_error(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((2, 2, 2)), IMAGE_MAGIC))[:-6])
    with pytest.raises(AdgmError, match="cannot decompress"):
        read_idx_gz(path, magic=IMAGE_MAGIC)


def test_missing_data_folder_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("ADGM_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(AdgmError, match="does not exist"):
        resolve_data_dir(None)


def test_wrong_md5_is_reported(mnist_dir, tmp_path):
    for path in mnist_dir.glob("*.gz"):
        shutil.copy(path, tmp_path / path.name)
    with open(tmp_path / "t10k-labels-idx1-ubyte.gz", "ab") as handle:
        handle.write(b"junk")
    with pytest.raises(AdgmError, match="t10k-labels-idx1-ubyte.gz has md5 .* expected"):
        resolve_data_dir(str(tmp_path))


def test_mnist_loads_with_paper_sizes(mnist_dir):
    train, test = load_mnist(str(mnist_dir))
    assert train.images.shape == (60_000, 784) and test.images.shape == (10_000, 784)
    assert train.images.dtype == np.float32 and 0.0 <= train.images.min() < train.images.max() <= 1
    assert np.bincount(test.labels).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]


def test_label_split_is_balanced_seeded_and_reproducible():
    labels = np.random.default_rng(0).integers(0, 10, size=5_000)
    first = balanced_label_indices(labels, 100, 10, seed=3)
    assert np.bincount(labels[first], minlength=10).tolist() == [10] * 10
    assert len(set(first.tolist())) == 100
    np.testing.assert_array_equal(first, balanced_label_indices(labels, 100, 10, seed=3))
    assert set(first.tolist()) != set(balanced_label_indices(labels, 100, 10, seed=4).tolist())


def test_label_split_rejects_bad_counts():
    labels = np.repeat(np.arange(10), 5)
    with pytest.raises(AdgmError, match="not a multiple of the number of classes"):
        balanced_label_indices(labels, 15, 10, seed=0)
    with pytest.raises(AdgmError, match="class 0 has 5 points, fewer than the 6"):
        balanced_label_indices(labels, 60, 10, seed=0)


def synthetic_split(n_unlabelled=40, n_labels=6, grey=0.5, **config):
    rng = np.random.default_rng(0)
    images = np.full((n_unlabelled, 30), grey, dtype=np.float32)
    labels = np.arange(n_unlabelled) % 3
    test = Dataset(rng.random((9, 30), dtype=np.float32), rng.integers(0, 3, 9))
    data_config = DataConfig(
        n_labels=n_labels, labelled_batch=n_labels, unlabelled_batch=10, **config
    )
    return split_semi_supervised(Dataset(images, labels), test, data_config, n_classes=3)


def one_epoch(data, seed_or_generator, labelled_batch=6):
    generator = seed_or_generator
    if isinstance(seed_or_generator, int):
        generator = torch.Generator().manual_seed(seed_or_generator)
    return list(epoch_batches(data, generator, labelled_batch=labelled_batch, unlabelled_batch=10))


def test_batches_have_paper_layout_and_are_binary():
    data = synthetic_split()
    batches = one_epoch(data, 0)
    assert len(batches) == 4  # one pass over 40 unlabelled images in batches of 10
    for x_l, y_l, x_u in batches:
        assert x_l.shape == (6, 30) and y_l.shape == (6,) and x_u.shape == (10, 30)
        assert set(torch.unique(torch.cat([x_l, x_u])).tolist()) <= {0.0, 1.0}
        assert torch.equal(y_l, data.y_labelled)  # the whole labelled set in every batch


@pytest.mark.parametrize("labelled_batch", [6, 4])
def test_noise_drawn_on_the_data_device_is_seeded_and_binary(labelled_batch):
    """The GPU path (noise_on_device), run on the CPU: reproducible from the CPU generator's
    state (which is what a resumed epoch replays), binary, and other draws than the CPU path."""
    data = synthetic_split()

    def epoch(seed):
        generator = torch.Generator().manual_seed(seed)
        return list(
            epoch_batches(
                data,
                generator,
                labelled_batch=labelled_batch,
                unlabelled_batch=10,
                noise_on_device=True,
            )
        )

    first, again, cpu_path = epoch(0), epoch(0), one_epoch(data, 0, labelled_batch)
    assert len(first) == len(cpu_path) == 4
    for batch, same in zip(first, again):
        assert all(torch.equal(a, b) for a, b in zip(batch, same))
        x_l, y_l, x_u = batch
        assert x_l.shape == (labelled_batch, 30) and x_u.shape == (10, 30)
        assert set(torch.unique(torch.cat([x_l, x_u])).tolist()) <= {0.0, 1.0}
    assert not all(torch.equal(a[2], b[2]) for a, b in zip(first, cpu_path))
    assert not all(torch.equal(a[2], b[2]) for a, b in zip(first, epoch(1)))


def test_binarisation_changes_per_epoch_and_is_seeded():
    data = synthetic_split()
    generator = torch.Generator().manual_seed(0)
    first, second = one_epoch(data, generator), one_epoch(data, generator)
    for (l1, _, u1), (l2, _, u2) in zip(first, second):
        assert not torch.equal(u1, u2) and not torch.equal(l1, l2)
    again = one_epoch(data, 0)
    for (l1, _, u1), (l2, _, u2) in zip(first, again):
        assert torch.equal(u1, u2) and torch.equal(l1, l2)
    ink = torch.cat([u for _, _, u in first + second]).mean().item()
    assert abs(ink - 0.5) < 0.02  # Bernoulli(grey level)


def test_evaluation_binarisation_is_fixed():
    images = np.random.default_rng(1).random((20, 30), dtype=np.float32)
    np.testing.assert_array_equal(binarise_fixed(images), binarise_fixed(images))
    assert set(np.unique(binarise_fixed(images)).tolist()) == {0.0, 1.0}


def test_validation_hold_out_and_subset():
    data = synthetic_split(n_unlabelled=40, n_validation=10)
    assert data.x_unlabelled.shape[0] == 30 and data.x_valid.shape == (10, 30)
    with pytest.raises(AdgmError, match="unlabelled_batch=10 exceeds the 8 training images"):
        synthetic_split(n_unlabelled=40, subset=8, n_labels=3)


def grey_dataset(n: int, seed: int) -> Dataset:
    """n images of 6 grey pixels, labels 0..2 in a random order."""
    rng = np.random.default_rng(seed)
    return Dataset(rng.random((n, 6), dtype=np.float32), rng.integers(0, 3, size=n))


def test_class_sorted_order_visits_the_classes_in_turn_the_same_way_every_epoch():
    """The authors' paper-era data order: unlabelled images stacked by class, never shuffled."""
    train, test = grey_dataset(60, 0), grey_dataset(10, 1)
    config = DataConfig(n_labels=6, labelled_batch=6, unlabelled_batch=10)
    sorted_data = split_semi_supervised(
        train,
        test,
        DataConfig(**{**config.__dict__, "unlabelled_order": "class-sorted"}),
        n_classes=3,
    )
    order = np.argsort(train.labels, kind="stable")
    np.testing.assert_array_equal(sorted_data.x_unlabelled.numpy(), train.images[order])
    assert sorted(train.labels[order][:10].tolist()) == [0] * 10  # the first batch: class 0
    shuffled = split_semi_supervised(train, test, config, n_classes=3)
    assert shuffled.shuffle and not sorted_data.shuffle
    np.testing.assert_array_equal(shuffled.x_unlabelled.numpy(), train.images)


@pytest.mark.parametrize("order", ["class-sorted", "fixed", "shuffled"])
def test_the_classes_of_the_unlabelled_rows_follow_them_through_subset_hold_out_and_order(order):
    """y_unlabelled is each stored unlabelled row's own class: found here by looking the row up
    among the training images, after a subset, a validation hold-out and the order."""
    train, test = grey_dataset(80, 8), grey_dataset(10, 9)
    config = DataConfig(
        n_labels=6,
        labelled_batch=6,
        unlabelled_batch=10,
        unlabelled_order=order,
        subset=70,
        n_validation=20,
    )
    data = split_semi_supervised(train, test, config, n_classes=3)
    rows = data.x_unlabelled.numpy()
    assert len(rows) == 50
    found = [int(np.flatnonzero((train.images == row).all(axis=1))[0]) for row in rows]
    assert max(found) < 70  # inside the subset
    np.testing.assert_array_equal(data.y_unlabelled.numpy(), train.labels[found])
    if order == "class-sorted":
        assert np.all(np.diff(data.y_unlabelled.numpy()) >= 0)


def test_own_data_have_no_classes_for_their_unlabelled_rows(tmp_path):
    path = tmp_path / "own.npz"
    x = np.random.default_rng(0).random((30, 4), dtype=np.float32)
    np.savez(path, X=x, y=np.array([0, 1, 2] + [-1] * 27))
    from adgm.data import load_data

    data = load_data(
        DataConfig(dataset=str(path), n_labels=3, labelled_batch=3, unlabelled_batch=5)
    )
    assert data.y_unlabelled is None


def test_fixed_order_is_one_permutation_of_the_label_seed_kept_every_epoch():
    """The authors' ICML 2016 data order: the unlabelled images shuffled once, at loading."""
    train, test = grey_dataset(60, 6), grey_dataset(10, 7)

    def fixed(label_seed):
        config = DataConfig(
            n_labels=6,
            labelled_batch=6,
            unlabelled_batch=10,
            unlabelled_order="fixed",
            label_seed=label_seed,
        )
        return split_semi_supervised(train, test, config, n_classes=3)

    first, again, other = fixed(0), fixed(0), fixed(1)
    assert not first.shuffle  # epoch_batches visits the stored rows in order, every epoch
    rows = first.x_unlabelled.numpy()
    order = [int(np.flatnonzero((train.images == row).all(axis=1))[0]) for row in rows]
    assert sorted(order) == list(range(60)) and order != list(range(60))  # a true permutation
    np.testing.assert_array_equal(again.x_unlabelled.numpy(), rows)  # the same at every load
    assert not np.array_equal(other.x_unlabelled.numpy(), rows)  # another label seed, another


def test_unshuffled_batches_follow_the_stored_rows_in_every_epoch():
    train, test = grey_dataset(40, 2), grey_dataset(10, 3)
    config = DataConfig(
        n_labels=6, labelled_batch=6, unlabelled_batch=10, unlabelled_order="class-sorted"
    )
    data = split_semi_supervised(train, test, config, n_classes=3)
    grey = data.x_unlabelled
    generator = torch.Generator().manual_seed(0)
    for _ in range(2):  # two epochs
        for step, (_, _, x_u) in enumerate(
            epoch_batches(data, generator, labelled_batch=6, unlabelled_batch=10)
        ):
            rows = grey[step * 10 : (step + 1) * 10]
            # A binary pixel can be 1 only where the grey level is above 0.
            assert torch.all(x_u <= (rows > 0).float())
            assert torch.all((x_u == 0) | (x_u == 1))


@pytest.mark.parametrize("kind", ["binary", "grey"])
def test_test_inputs_are_one_seeded_binarisation_or_the_grey_levels(kind):
    train, test = grey_dataset(30, 4), grey_dataset(10, 5)
    config = DataConfig(n_labels=6, labelled_batch=6, unlabelled_batch=10, test_inputs=kind)
    data = split_semi_supervised(train, test, config, n_classes=3)
    expected = binarise_fixed(test.images) if kind == "binary" else test.images
    np.testing.assert_array_equal(data.x_test.numpy(), expected)


def test_class_sorted_order_of_own_data_is_refused_with_the_reason(tmp_path):
    from adgm.data import load_data

    path = tmp_path / "own.npz"
    np.savez(path, X=np.random.default_rng(0).random((20, 4)), y=np.r_[0, 1, np.full(18, -1)])
    with pytest.raises(AdgmError, match="needs the labels of every training image"):
        load_data(DataConfig(dataset=str(path), unlabelled_order="class-sorted"))
    with pytest.raises(AdgmError, match="'fixed' is the authors' MNIST order"):
        load_data(DataConfig(dataset=str(path), unlabelled_order="fixed"))
    with pytest.raises(AdgmError, match="unknown unlabelled_order 'random'"):
        DataConfig(unlabelled_order="random").validate()


@pytest.mark.parametrize("kind", ["binary", "grey"])
def test_training_images_to_evaluate_are_the_last_ones_still_trained_on(kind):
    """eval_train_points: the last N images of the training set, prepared as the test images
    are, with their classes; they stay in the unlabelled set."""
    train, test = grey_dataset(60, 3), grey_dataset(10, 4)
    config = DataConfig(
        n_labels=6, labelled_batch=6, unlabelled_batch=10, eval_train_points=15, test_inputs=kind
    )
    data = split_semi_supervised(train, test, config, n_classes=3)
    expected = train.images[45:] if kind == "grey" else binarise_fixed(train.images[45:])
    np.testing.assert_array_equal(data.x_train_eval.numpy(), expected)
    np.testing.assert_array_equal(data.y_train_eval.numpy(), train.labels[45:])
    assert len(data.x_unlabelled) == 60  # still trained on
    plain = DataConfig(n_labels=6, labelled_batch=6, unlabelled_batch=10)
    assert split_semi_supervised(train, test, plain, n_classes=3).x_train_eval is None
    with pytest.raises(AdgmError, match="eval_train_points=61 exceeds the 60 training images"):
        split_semi_supervised(
            train,
            test,
            DataConfig(n_labels=6, labelled_batch=6, unlabelled_batch=10, eval_train_points=61),
            n_classes=3,
        )


def test_training_images_to_evaluate_are_refused_for_own_data(tmp_path):
    path = tmp_path / "own.npz"
    x = np.random.default_rng(0).random((30, 4), dtype=np.float32)
    np.savez(path, X=x, y=np.array([0, 1, 2] + [-1] * 27))
    from adgm.data import load_data

    with pytest.raises(AdgmError, match="eval_train_points needs the class of every"):
        load_data(DataConfig(dataset=str(path), eval_train_points=5))
    with pytest.raises(AdgmError, match="must be >= 0"):
        DataConfig(eval_train_points=-1).validate()
