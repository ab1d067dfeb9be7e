"""Own-data readers (.npz, CSV, image folders), Fashion-MNIST, and training on own data."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from adgm.cli import main
from adgm.config import DataConfig
from adgm.data import load_data, read_own_data
from adgm.data.idx import IMAGE_MAGIC, LABEL_MAGIC
from adgm.data.mnist import FASHION_MNIST, IdxSource, load_idx_source
from adgm.errors import AdgmError


def write_npz(path, n=60, d=6, test=True, labels=(4, 9)):
    rng = np.random.default_rng(0)
    y = np.full(n, -1)
    y[: 2 * len(labels)] = np.tile(labels, 2)
    arrays = {"X": rng.normal(size=(n, d)).astype(np.float32), "y": y}
    if test:
        arrays["X_test"] = rng.normal(size=(10, d)).astype(np.float32)
        arrays["y_test"] = np.resize(labels, 10)
    np.savez(path, **arrays)
    return arrays


def test_npz_labels_are_coded_in_sorted_order_and_the_test_set_follows(tmp_path):
    arrays = write_npz(tmp_path / "d.npz")
    own = read_own_data(tmp_path / "d.npz")
    assert own.class_names == ("4", "9")
    np.testing.assert_array_equal(own.train.labels[:4], [0, 1, 0, 1])
    assert np.all(own.train.labels[4:] == -1)
    np.testing.assert_array_equal(own.test.labels, np.resize([0, 1], 10))
    np.testing.assert_allclose(own.train.images, arrays["X"])


def test_csv_with_empty_and_minus_one_as_unlabelled(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,label,b\n0.1,2,0.2\n0.3,,0.4\n0.5,-1,0.6\n0.7,5,0.8\n\n")
    own = read_own_data(path)
    assert own.class_names == ("2", "5")
    np.testing.assert_array_equal(own.train.labels, [0, -1, -1, 1])
    np.testing.assert_allclose(own.train.images, [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8]])


def test_csv_label_column_can_be_named(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("class,x\n1,0.5\n0,0.25\n")
    own = read_own_data(path, label_column="class")
    np.testing.assert_array_equal(own.train.labels, [1, 0])


def write_image(path, size=(4, 3), value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, color=value).save(path)


def test_image_folder_one_sub_folder_per_class_and_unlabelled(tmp_path):
    write_image(tmp_path / "cat" / "a.png", value=255)
    write_image(tmp_path / "dog" / "b.png", value=0)
    write_image(tmp_path / "dog" / "c.png", value=51)
    write_image(tmp_path / "unlabelled" / "d.png")
    own = read_own_data(tmp_path)
    assert own.class_names == ("cat", "dog")
    np.testing.assert_array_equal(own.train.labels, [0, 1, 1, -1])
    assert own.train.images.shape == (4, 12)
    np.testing.assert_allclose(own.train.images[:3, 0], [1.0, 0.0, 0.2])


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("d.csv", "a,b\n1,2\n", "no column 'label' in the header"),
        ("d.csv", "a,label\n1,0\n2\n", "line 3: 1 fields, the header has 2"),
        ("d.csv", "a,label\n1,cat\n", "label 'cat' is not an integer"),
        ("d.csv", "a,label\n1,-3\n", "unknown label value -3"),
        ("d.csv", "a,label\nx,1\n", "column 'a': 'x' is not a number"),
        ("d.csv", "a,label\n", "needs a header row and at least one data row"),
        ("d.txt", "1,2\n", "unknown data format"),
        ("d.npz", "not a zip", "not a readable .npz file"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(AdgmError, match=message):
        read_own_data(path)


def test_bad_npz_arrays_give_clear_errors(tmp_path):
    np.savez(tmp_path / "a.npz", X=np.zeros((3, 2)))
    with pytest.raises(AdgmError, match="no array 'y'"):
        read_own_data(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", X=np.zeros((3, 2)), y=np.zeros(4, dtype=int))
    with pytest.raises(AdgmError, match="3 rows in X but y has shape"):
        read_own_data(tmp_path / "b.npz")
    np.savez(
        tmp_path / "c.npz",
        X=np.zeros((3, 2)),
        y=np.array([0, 1, -1]),
        X_test=np.zeros((1, 2)),
        y_test=np.array([2]),
    )
    with pytest.raises(AdgmError, match="label '2' is not one of the training classes"):
        read_own_data(tmp_path / "c.npz")


def test_image_of_another_size_is_named(tmp_path):
    write_image(tmp_path / "a" / "1.png", size=(4, 3))
    write_image(tmp_path / "b" / "2.png", size=(5, 3))
    with pytest.raises(AdgmError, match=r"2.png is 5x3 pixels, but .*1.png is 4x3"):
        read_own_data(tmp_path)


def test_a_damaged_image_is_named(tmp_path):
    write_image(tmp_path / "a" / "1.png")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(AdgmError, match="2.png: not a readable image"):
        read_own_data(tmp_path)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".npz"]))
def test_readers_on_random_bytes_return_data_or_our_error(tmp_path, raw, suffix):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(raw)
    try:
        own = read_own_data(path)
    except AdgmError:
        return
    assert own.train.images.ndim == 2 and len(own.train.labels) == len(own.train.images)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_csv_reader_on_damaged_valid_files(tmp_path, data):
    text = bytearray(b"a,label,b\n0.1,1,2\n0.5,,3\n0.25,0,1e3\n")
    for _ in range(data.draw(st.integers(1, 3))):
        text[data.draw(st.integers(0, len(text) - 1))] = data.draw(st.integers(0, 255))
    path = tmp_path / "damaged.csv"
    path.write_bytes(bytes(text))
    try:
        own = read_own_data(path)
    except AdgmError:
        return
    assert own.train.images.dtype == np.float32 and own.train.labels.dtype == np.int64


def fake_idx_source(folder) -> IdxSource:
    """A Fashion-MNIST-like source of four tiny IDX files written here, with their md5 sums."""
    import hashlib

    rng = np.random.default_rng(0)
    files = {}
    for split, n in (("train", 30), ("test", 10)):
        for kind, magic, array in (
            ("images", IMAGE_MAGIC, rng.integers(0, 256, size=(n, 4, 4))),
            ("labels", LABEL_MAGIC, np.arange(n) % 10),
        ):
            header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
            raw = gzip.compress(header + array.astype(np.uint8).tobytes())
            name = f"{split}-{kind}.gz"
            (folder / name).write_bytes(raw)
            files[f"{split}_{kind}"] = (name, (hashlib.md5(raw).hexdigest(),))
    return IdxSource("Fake", "fake", "ADGM_FAKE_DIR", files, mirrors=(), system_dirs=(str(folder),))


def test_an_idx_source_is_found_in_its_system_folder_and_checked(tmp_path, monkeypatch):
    monkeypatch.delenv("ADGM_FAKE_DIR", raising=False)
    source = fake_idx_source(tmp_path)
    train, test = load_idx_source(source)
    assert train.images.shape == (30, 16) and test.images.shape == (10, 16)
    with open(tmp_path / "test-labels.gz", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(AdgmError, match="Fake file .*test-labels.gz has md5"):
        load_idx_source(source)


def test_fashion_mnist_accepts_the_published_and_the_debian_md5_sums():
    for name, accepted in FASHION_MNIST.files.values():
        assert name.endswith("-ubyte.gz") and len(accepted) == 2
    assert FASHION_MNIST.system_dirs == ("/usr/share/datasets/fashion-mnist",)


def test_own_gaussian_data_are_standardised_and_not_binarised(tmp_path):
    write_npz(tmp_path / "d.npz", d=3)
    data = load_data(DataConfig(dataset=str(tmp_path / "d.npz")))
    assert data.likelihood == "gaussian"
    np.testing.assert_allclose(data.x_unlabelled.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(data.x_unlabelled.std(0, unbiased=False), 1, atol=1e-4)
    with pytest.raises(AdgmError, match="Bernoulli likelihood needs features in"):
        load_data(DataConfig(dataset=str(tmp_path / "d.npz")), likelihood="bernoulli")


def test_cli_trains_and_evaluates_on_own_npz(tmp_path, capsys):
    write_npz(tmp_path / "d.npz", n=200, d=8)
    out = tmp_path / "run"
    args = ["train", "--data", str(tmp_path / "d.npz"), "--epochs", "2", "--out", str(out)]
    assert main([*args, "--hidden", "16", "--z-dim", "2", "--a-dim", "2"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["likelihood"] == "gaussian" and config["model"]["n_classes"] == 2
    assert config["data"]["labelled_batch"] == 4  # adapted to the 4 labels
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and 0 <= rows[-1]["test_error"] <= 1
    capsys.readouterr()
    assert main(["evaluate", str(out), "--samples", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["epoch"] == 2


def test_cli_reports_a_bad_own_file_in_one_line(tmp_path, capsys):
    (tmp_path / "d.csv").write_text("a,b\n1,2\n")
    assert main(["train", "--data", str(tmp_path / "d.csv"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("adgm: error: ") and "no column 'label'" in err and err.count("\n") == 1
