"""Users' own data from files: ``.npz`` arrays, CSV with a label column, folders of images.

Every reader returns a ``Dataset`` whose features are float32 (N, D) and whose labels are int64
(N,), with -1 marking an unlabelled point, plus the names of the classes, in the order of the
label codes 0..K-1. Bad files give an ``AdgmError`` naming the file, and the row or image.

    .npz          arrays X (N, ...) and y (N,) of integers (-1: unlabelled); optionally X_test,
                  y_test. Integer labels are mapped to 0..K-1 in sorted order.
    .csv          a header row, one column of labels (default "label": an integer, or empty or -1
                  for unlabelled), every other column a number.
    folder/       one sub-folder of images per class (its name is the class name) and optionally
                  unlabelled/ with images without a label; images of one size, read as grey
                  levels in [0, 1] (needs Pillow).
"""

from __future__ import annotations

import csv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adgm.data.mnist import Dataset
from adgm.errors import AdgmError

UNLABELLED_FOLDER = "unlabelled"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".tif", ".tiff")


@dataclass(frozen=True)
class OwnData:
    """A training set (labels -1 where unknown), an optional test set and the class names."""

    train: Dataset
    test: Dataset | None
    class_names: tuple[str, ...]


def read_own_data(
    path: str | Path, *, test_path: str | Path | None = None, label_column: str = "label"
) -> OwnData:
    """Read a .npz, .csv or image folder (and, if given, a test set in the same format)."""
    path = Path(path)
    train, test, names = _read_any(path, label_column)
    if test_path is not None:
        if test is not None:
            raise AdgmError(f"{path} holds a test set already; drop --test-data")
        test, _, test_names = _read_any(Path(test_path), label_column)
        if np.any(test.labels < 0):
            raise AdgmError(f"test set {test_path} has unlabelled points; each needs a label")
        test = _recode(test, test_names, names, source=str(test_path))
    if test is not None and test.images.shape[1] != train.images.shape[1]:
        raise AdgmError(
            f"training points have {train.images.shape[1]} features, "
            f"test points {test.images.shape[1]}"
        )
    return OwnData(train, test, names)


def _read_any(path: Path, label_column: str) -> tuple[Dataset, Dataset | None, tuple[str, ...]]:
    if path.is_dir():
        train, names = read_image_folder(path)
        return train, None, names
    if not path.is_file():
        raise AdgmError(f"data file {path} does not exist")
    if path.suffix == ".npz":
        return read_npz(path)
    if path.suffix == ".csv":
        train, names = read_csv(path, label_column=label_column)
        return train, None, names
    raise AdgmError(f"{path}: unknown data format; use a .npz or .csv file or a folder of images")


# ----- .npz -------------------------------------------------------------------------------------
def read_npz(path: Path) -> tuple[Dataset, Dataset | None, tuple[str, ...]]:
    """(train, test or None, class names) from arrays X, y [, X_test, y_test]."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise AdgmError(f"{path}: not a readable .npz file ({exc})") from None
    for key in ("X", "y"):
        if key not in arrays:
            raise AdgmError(f"{path}: no array {key!r} (found {', '.join(arrays) or 'none'})")
    train, names = _encode(_dataset_from_arrays(arrays["X"], arrays["y"], f"{path} (X, y)"))
    if "X_test" not in arrays and "y_test" not in arrays:
        return train, None, names
    if "X_test" not in arrays or "y_test" not in arrays:
        raise AdgmError(f"{path}: X_test and y_test go together")
    test = _dataset_from_arrays(arrays["X_test"], arrays["y_test"], f"{path} (X_test, y_test)")
    if np.any(test.labels < 0):
        raise AdgmError(f"{path}: y_test has unlabelled points (-1)")
    test, test_names = _encode(test)
    return train, _recode(test, test_names, names, source=f"{path} (y_test)"), names


def _dataset_from_arrays(x: np.ndarray, y: np.ndarray, name: str) -> Dataset:
    if x.ndim < 2 or x.shape[0] == 0:
        raise AdgmError(f"{name}: X must have shape (N, D) or (N, H, W), got {x.shape}")
    if y.shape != (x.shape[0],):
        raise AdgmError(f"{name}: {x.shape[0]} rows in X but y has shape {y.shape}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise AdgmError(f"{name}: X must be numeric, got {x.dtype}")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.floating) or not np.all(y == np.round(y)):
            raise AdgmError(f"{name}: labels must be integers (-1 for unlabelled), got {y.dtype}")
    labels = y.astype(np.int64)
    if np.any(labels < -1):
        raise AdgmError(f"{name}: unknown label value {labels.min()} (-1 marks unlabelled)")
    features = x.reshape(x.shape[0], -1).astype(np.float32)
    if not np.all(np.isfinite(features)):
        raise AdgmError(f"{name}: X contains NaN or infinite values")
    return Dataset(features, labels)


def _encode(data: Dataset) -> tuple[Dataset, tuple[str, ...]]:
    """Integer labels -> codes 0..K-1 in sorted order (-1 stays), and the names str(value)."""
    values = np.unique(data.labels[data.labels >= 0])
    codes = np.where(data.labels >= 0, np.searchsorted(values, data.labels), -1)
    return Dataset(data.images, codes.astype(np.int64)), tuple(str(int(v)) for v in values)


def _recode(data: Dataset, names: tuple[str, ...], known: tuple[str, ...], *, source: str):
    """Codes into `names` -> codes into `known` (the training classes); -1 stays -1."""
    position = {name: code for code, name in enumerate(known)}
    codes = np.full(len(data), -1, dtype=np.int64)
    for label in np.unique(data.labels[data.labels >= 0]):
        name = names[label]
        if name not in position:
            raise AdgmError(
                f"{source}: label {name!r} is not one of the training classes ({', '.join(known)})"
            )
        codes[data.labels == label] = position[name]
    return Dataset(data.images, codes)


# ----- CSV --------------------------------------------------------------------------------------
def read_csv(path: Path, *, label_column: str = "label") -> tuple[Dataset, tuple[str, ...]]:
    """(data, class names) from a CSV file with a header and a label column."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AdgmError(f"{path}: cannot read CSV ({exc})") from None
    if len(rows) < 2:
        raise AdgmError(f"{path}: needs a header row and at least one data row")
    header = [name.strip() for name in rows[0]]
    if label_column not in header:
        raise AdgmError(
            f"{path}: no column {label_column!r} in the header (columns: {', '.join(header)})"
        )
    label_at = header.index(label_column)
    features, labels = [], []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue  # a blank line
        if len(row) != len(header):
            raise AdgmError(f"{path}, line {line}: {len(row)} fields, the header has {len(header)}")
        labels.append(_csv_label(row[label_at], path, line))
        features.append([_csv_number(v, path, line, header[i]) for i, v in _others(row, label_at)])
    x = np.asarray(features, dtype=np.float32)
    y = np.asarray(labels, dtype=np.int64)
    return _encode(_dataset_from_arrays(x, y, str(path)))


def _others(row: list[str], skip: int):
    return ((i, v) for i, v in enumerate(row) if i != skip)


def _csv_label(text: str, path: Path, line: int) -> int:
    text = text.strip()
    if text == "":
        return -1
    try:
        value = int(text)
    except ValueError:
        raise AdgmError(
            f"{path}, line {line}: label {text!r} is not an integer (empty or -1: unlabelled)"
        ) from None
    if value < -1:
        raise AdgmError(f"{path}, line {line}: unknown label value {value} (-1 marks unlabelled)")
    return value


def _csv_number(text: str, path: Path, line: int, column: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise AdgmError(
            f"{path}, line {line}, column {column!r}: {text!r} is not a number"
        ) from None


# ----- image folders ----------------------------------------------------------------------------
def read_image_folder(folder: Path) -> tuple[Dataset, tuple[str, ...]]:
    """(data, class names): one sub-folder per class, plus unlabelled/ (grey levels in [0, 1])."""
    class_dirs = sorted(d for d in folder.iterdir() if d.is_dir() and d.name != UNLABELLED_FOLDER)
    if not class_dirs:
        raise AdgmError(f"{folder}: no class sub-folders (one folder of images per class)")
    names = tuple(d.name for d in class_dirs)
    paths, labels = [], []
    for code, class_dir in enumerate(class_dirs):
        found = _image_files(class_dir)
        paths += found
        labels += [code] * len(found)
    unlabelled = folder / UNLABELLED_FOLDER
    if unlabelled.is_dir():
        found = _image_files(unlabelled)
        paths += found
        labels += [-1] * len(found)
    if not paths:
        raise AdgmError(f"{folder}: no images found ({', '.join(IMAGE_SUFFIXES)})")
    images = _read_images(paths)
    return Dataset(images, np.asarray(labels, dtype=np.int64)), names


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _read_images(paths: list[Path]) -> np.ndarray:
    """(N, H * W) float32 grey levels in [0, 1]; every image must have the first one's size."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise AdgmError("reading image folders needs Pillow: pip install 'adgm[images]'") from None
    arrays, size = [], None
    for path in paths:
        try:
            with Image.open(path) as image:
                grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        except (OSError, UnidentifiedImageError) as exc:
            raise AdgmError(f"{path}: not a readable image ({exc})") from None
        if size is None:
            size, first = grey.shape, path
        elif grey.shape != size:
            raise AdgmError(
                f"{path} is {grey.shape[1]}x{grey.shape[0]} pixels, but {first} is "
                f"{size[1]}x{size[0]}: all images must have one size"
            )
        arrays.append(grey.reshape(-1))
    return np.stack(arrays)
