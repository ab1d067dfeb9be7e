"""Reading gzipped IDX files (the MNIST format) with checks that give clear errors."""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

from adgm.errors import AdgmError

# IDX magic numbers: 0x0000 0803 (uint8, 3 dims: images), 0x0000 0801 (uint8, 1 dim: labels)
IMAGE_MAGIC = 0x00000803
LABEL_MAGIC = 0x00000801


def md5_of(path: Path) -> str:
    """The md5 hex digest of a file's bytes."""
    digest = hashlib.md5()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise AdgmError(f"cannot read {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def parse_idx(raw: bytes, *, magic: int, name: str) -> np.ndarray:
    """Decode uncompressed IDX bytes with the given magic number into a uint8 array.

    Raises AdgmError (naming `name`) for a wrong magic number, a short header, or a payload whose
    size does not match the header.
    """
    if len(raw) < 4:
        raise AdgmError(f"{name}: not an IDX file (only {len(raw)} bytes)")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise AdgmError(f"{name}: wrong IDX magic number 0x{found:08x}, expected 0x{magic:08x}")
    n_dims = magic & 0xFF
    header = 4 + 4 * n_dims
    if len(raw) < header:
        raise AdgmError(f"{name}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise AdgmError(
            f"{name}: IDX payload has {len(raw) - header} bytes, header {shape} says {expected}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx_gz(path: Path, *, magic: int) -> np.ndarray:
    """Read a gzipped IDX file; corrupt or truncated gzip data gives an AdgmError."""
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise AdgmError(f"{path}: cannot decompress ({exc})") from None
    return parse_idx(raw, magic=magic, name=str(path))
