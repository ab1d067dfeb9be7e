"""Bad input at the boundary: the project's own error with a clear message, nothing else."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adgm.cli import main
from adgm.config import DataConfig
from adgm.data import Dataset, split_semi_supervised
from adgm.data.idx import IMAGE_MAGIC, LABEL_MAGIC, parse_idx, read_idx_gz
from adgm.errors import AdgmError


def valid_idx(shape=(3, 2, 2)) -> bytes:
    header = IMAGE_MAGIC.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in shape)
    return header + bytes(range(int(np.prod(shape))))


@given(st.binary(max_size=64), st.sampled_from([IMAGE_MAGIC, LABEL_MAGIC]))
def test_idx_parser_on_random_bytes_returns_an_array_or_our_error(raw, magic):
    try:
        array = parse_idx(raw, magic=magic, name="random")
    except AdgmError:
        return
    assert array.dtype == np.uint8 and array.ndim == (magic & 0xFF)


@given(st.data())
def test_idx_parser_on_corrupted_valid_files(data):
    raw = bytearray(valid_idx())
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    try:
        array = parse_idx(bytes(raw[:cut]), magic=IMAGE_MAGIC, name="corrupted")
    except AdgmError:
        return
    assert array.ndim == 3 and array.size == cut - 16


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.binary(max_size=200), keep=st.floats(0, 1))
def test_gzip_reader_on_damaged_files_returns_an_array_or_our_error(tmp_path, junk, keep):
    packed = gzip.compress(valid_idx())
    path = tmp_path / "damaged.gz"
    path.write_bytes(packed[: int(keep * len(packed))] + junk)
    try:
        array = read_idx_gz(path, magic=IMAGE_MAGIC)
    except AdgmError:
        return
    assert array.shape == (3, 2, 2)


def good_dataset(n=30, d=8):
    rng = np.random.default_rng(0)
    return Dataset(rng.random((n, d), dtype=np.float32), np.arange(n) % 3)


def with_images(images):
    return Dataset(images, np.arange(len(images)) % 3)


@pytest.mark.parametrize(
    "train, message",
    [
        (with_images(np.full((30, 8), np.nan, dtype=np.float32)), "NaN or infinite"),
        (with_images(np.full((30, 8), np.inf, dtype=np.float32)), "NaN or infinite"),
        (with_images(np.full((30, 8), 2.0, dtype=np.float32)), r"in \[0, 1\]"),
        (with_images(np.zeros((30, 8, 2), dtype=np.float32)), r"\(N, D\) array"),
        (with_images(np.zeros((30, 8), dtype=np.uint8)), "floating point"),
        (Dataset(np.zeros((30, 8), np.float32), np.arange(29) % 3), "labels of shape"),
        (Dataset(np.zeros((30, 8), np.float32), np.arange(30) % 4), r"labels must lie in 0..2"),
        (Dataset(np.zeros((30, 8), np.float32), np.full(30, 0.5)), "labels must be integers"),
        (good_dataset(d=9), "9 features, test images 8"),
    ],
)
def test_bad_arrays_are_named(train, message):
    with pytest.raises(AdgmError, match=message):
        split_semi_supervised(
            train, good_dataset(), DataConfig(n_labels=3, unlabelled_batch=5), n_classes=3
        )


@pytest.mark.parametrize(
    "n_labels, message",
    [(2, "fewer than the number of classes"), (60, "class 0 has 10 points, fewer than the 20")],
)
def test_impossible_label_counts_are_named(n_labels, message):
    with pytest.raises(AdgmError, match=message):
        split_semi_supervised(
            good_dataset(),
            good_dataset(),
            DataConfig(n_labels=n_labels, unlabelled_batch=5),
            n_classes=3,
        )


def test_unwritable_run_folder_is_one_line(mnist_dir, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["train", "--subset", "500", "--out", str(blocker / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("adgm: error: cannot write the run folder") and err.count("\n") == 1


def test_resume_without_a_checkpoint_is_one_line(tmp_path, capsys):
    assert main(["train", "--resume", "--out", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
