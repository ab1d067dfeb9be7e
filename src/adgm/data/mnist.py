"""Locating, downloading and loading MNIST and Fashion-MNIST (60,000 training, 10,000 test)."""

from __future__ import annotations

import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adgm.data.idx import IMAGE_MAGIC, LABEL_MAGIC, md5_of, read_idx_gz
from adgm.errors import AdgmError


@dataclass(frozen=True)
class IdxSource:
    """Where an MNIST-format data set lives and how its four gzipped IDX files are checked.

    files maps "train_images", "train_labels", "test_images", "test_labels" to
    (file name, md5 sums accepted for the .gz file). system_dirs are read-only folders searched
    before the user cache, e.g. where a Debian package installs the files.
    """

    name: str
    cache_name: str
    env_var: str
    files: dict[str, tuple[str, tuple[str, ...]]]
    mirrors: tuple[str, ...]
    system_dirs: tuple[str, ...] = ()


MNIST = IdxSource(
    name="MNIST",
    cache_name="mnist",
    env_var="ADGM_DATA_DIR",
    files={
        "train_images": ("train-images-idx3-ubyte.gz", ("f68b3c2dcbeaaa9fbdd348bbdeb94873",)),
        "train_labels": ("train-labels-idx1-ubyte.gz", ("d53e105ee54ea40749a09fcbcd1e9432",)),
        "test_images": ("t10k-images-idx3-ubyte.gz", ("9fb629c4189551a2d022fa330f9573f3",)),
        "test_labels": ("t10k-labels-idx1-ubyte.gz", ("ec29112dd5afa0611ce80d1b7f02629c",)),
    },
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
)
# Fashion-MNIST (Xiao et al. 2017): the published .gz sums, then those of Debian's package
# dataset-fashion-mnist, which recompresses the same IDX files.
FASHION_MNIST = IdxSource(
    name="Fashion-MNIST",
    cache_name="fashion-mnist",
    env_var="ADGM_FASHION_DATA_DIR",
    files={
        "train_images": (
            "train-images-idx3-ubyte.gz",
            ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "cf8536b0aa1a6ac5fa3f23001093305c"),
        ),
        "train_labels": (
            "train-labels-idx1-ubyte.gz",
            ("25c81989df183df01b3e8a0aad5dffbe", "10bea18fdb374794d4bb42e356e600c9"),
        ),
        "test_images": (
            "t10k-images-idx3-ubyte.gz",
            ("bef4ecab320f06d8554ea6380940ec79", "f78720b4224f21cce2f2ccf2d7a94c9a"),
        ),
        "test_labels": (
            "t10k-labels-idx1-ubyte.gz",
            ("bb300cfdad3c16e7a12a480ee83cd310", "0d30e22e447f3c33dab9ed536400ac01"),
        ),
    },
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    system_dirs=("/usr/share/datasets/fashion-mnist",),
)
DATA_DIR_ENV = MNIST.env_var


@dataclass(frozen=True)
class Dataset:
    """Features as float32, shape (N, D) (images: grey levels in [0, 1]), integer labels (N,).

    A label of -1 marks an unlabelled point (own data only; MNIST is fully labelled).
    """

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def cache_dir(source: IdxSource = MNIST) -> Path:
    """The user cache folder for downloads: $XDG_CACHE_HOME/adgm/<name> or ~/.cache/adgm/<name>."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "adgm" / source.cache_name


def resolve_data_dir(
    data_dir: str | None, *, download: bool = True, source: IdxSource = MNIST
) -> Path:
    """Find a folder holding the four verified files of `source`.

    Order: the explicit `data_dir`, then the source's environment variable (both must already
    hold the files), then its system folders (used when they hold all four files), then the user
    cache, downloading into it when `download` is true.
    """
    explicit = data_dir or os.environ.get(source.env_var)
    if explicit:
        folder = Path(explicit)
        if not folder.is_dir():
            origin = "data_dir" if data_dir else source.env_var
            raise AdgmError(f"{source.name} folder {folder} (from {origin}) does not exist")
        verify_files(folder, source)
        return folder
    for system in map(Path, source.system_dirs):
        if all((system / name).is_file() for name, _ in source.files.values()):
            verify_files(system, source)
            return system
    folder = cache_dir(source)
    missing = [name for name, _ in source.files.values() if not (folder / name).is_file()]
    if missing and download:
        download_files(folder, missing, source)
    verify_files(folder, source)
    return folder


def verify_files(folder: Path, source: IdxSource = MNIST) -> None:
    """Check that the four files exist and have one of the accepted md5 sums."""
    for filename, accepted in source.files.values():
        path = folder / filename
        if not path.is_file():
            raise AdgmError(
                f"{source.name} file {path} is missing (set {source.env_var} or --data-dir)"
            )
        found = md5_of(path)
        if found not in accepted:
            raise AdgmError(
                f"{source.name} file {path} has md5 {found}, expected {accepted[0]}: corrupt?"
            )


def download_files(folder: Path, filenames: list[str], source: IdxSource = MNIST) -> None:
    """Download the named files into `folder`, trying each mirror; each file lands atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    for filename in filenames:
        errors = []
        for mirror in source.mirrors:
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
    return load_idx_source(MNIST, data_dir, download=download)


def load_fashion_mnist(
    data_dir: str | None = None, *, download: bool = True
) -> tuple[Dataset, Dataset]:
    """Fashion-MNIST (train, test): 60,000 and 10,000 28x28 images of 10 kinds of clothing."""
    return load_idx_source(FASHION_MNIST, data_dir, download=download)


def load_idx_source(
    source: IdxSource, data_dir: str | None = None, *, download: bool = True
) -> tuple[Dataset, Dataset]:
    """(train, test) of an MNIST-format source, pixels scaled to [0, 1] and flattened."""
    folder = resolve_data_dir(data_dir, download=download, source=source)
    return _load_split(folder, "train", source), _load_split(folder, "test", source)


def _load_split(folder: Path, split: str, source: IdxSource) -> Dataset:
    images = read_idx_gz(folder / source.files[f"{split}_images"][0], magic=IMAGE_MAGIC)
    labels = read_idx_gz(folder / source.files[f"{split}_labels"][0], magic=LABEL_MAGIC)
    if len(images) != len(labels):
        raise AdgmError(f"{source.name} {split}: {len(images)} images but {len(labels)} labels")
    flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
    return Dataset(flat, labels.astype(np.int64))
