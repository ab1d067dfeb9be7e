"""Locating, downloading and loading MNIST (60,000 training and 10,000 test images)."""

from __future__ import annotations

import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adgm.data.idx import IMAGE_MAGIC, LABEL_MAGIC, md5_of, read_idx_gz
from adgm.errors import AdgmError

# md5 of the gzipped files of the public MNIST distribution.
MNIST_FILES = {
    "train_images": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
DATA_DIR_ENV = "ADGM_DATA_DIR"


@dataclass(frozen=True)
class Dataset:
    """Images as float32 in [0, 1], shape (N, D), and integer labels (N,) (int64)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def cache_dir() -> Path:
    """The user cache folder for downloads: $XDG_CACHE_HOME/adgm/mnist or ~/.cache/adgm/mnist."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "adgm" / "mnist"


def resolve_data_dir(data_dir: str | None, *, download: bool = True) -> Path:
    """Find a folder holding the four verified MNIST files.

    Order: the explicit `data_dir`, then $ADGM_DATA_DIR (both must already hold the files), then
    the user cache, downloading into it when `download` is true.
    """
    explicit = data_dir or os.environ.get(DATA_DIR_ENV)
    if explicit:
        folder = Path(explicit)
        if not folder.is_dir():
            source = "data_dir" if data_dir else DATA_DIR_ENV
            raise AdgmError(f"MNIST folder {folder} (from {source}) does not exist")
        verify_files(folder)
        return folder
    folder = cache_dir()
    missing = [f for f, _ in MNIST_FILES.values() if not (folder / f).is_file()]
    if missing and download:
        download_mnist(folder, missing)
    verify_files(folder)
    return folder


def verify_files(folder: Path) -> None:
    """Check that the four files exist and have the published md5 sums."""
    for filename, expected in MNIST_FILES.values():
        path = folder / filename
        if not path.is_file():
            raise AdgmError(f"MNIST file {path} is missing (set {DATA_DIR_ENV} or --data-dir)")
        found = md5_of(path)
        if found != expected:
            raise AdgmError(f"MNIST file {path} has md5 {found}, expected {expected}: corrupt?")


def download_mnist(folder: Path, filenames: list[str]) -> None:
    """Download the named files into `folder`, trying each mirror; each file lands atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    for filename in filenames:
        errors = []
        for mirror in MIRRORS:
            try:
                _download_atomically(mirror + filename, folder / filename)
                break
            except OSError as exc:
                errors.append(f"{mirror}: {exc}")
        else:
            raise AdgmError(f"could not download {filename}: {'; '.join(errors)}")


def _download_atomically(url: str, target: Path) -> None:
    handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            out.write(response.read())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_mnist(data_dir: str | None = None, *, download: bool = True) -> tuple[Dataset, Dataset]:
    """(train, test): 60,000 training images (train + validation merged) and 10,000 test."""
    folder = resolve_data_dir(data_dir, download=download)
    return _load_split(folder, "train"), _load_split(folder, "test")


def _load_split(folder: Path, split: str) -> Dataset:
    images = read_idx_gz(folder / MNIST_FILES[f"{split}_images"][0], magic=IMAGE_MAGIC)
    labels = read_idx_gz(folder / MNIST_FILES[f"{split}_labels"][0], magic=LABEL_MAGIC)
    if len(images) != len(labels):
        raise AdgmError(f"MNIST {split}: {len(images)} images but {len(labels)} labels")
    flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
    return Dataset(flat, labels.astype(np.int64))
