"""Checkpoints that describe themselves and are written atomically.

A checkpoint is a dict of tensors and plain values only: {"model", "optimizer", "config",
"epoch", "rng": {"torch", "batches"}, "alpha"}. It is written to a temporary file in the same
folder, flushed to disk, then renamed over the target, so a crash never leaves a half-written
checkpoint under the real name. It is read with ``weights_only=True``: loading never runs code.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from collections.abc import Callable
from typing import Any, BinaryIO

import torch

from adgm.errors import AdgmError

LATEST = "checkpoint-latest.pt"


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call write(file) on a temp file beside `path`, fsync it, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file atomically (UTF-8)."""
    atomic_write(path, lambda out: out.write(text.encode("utf-8")))


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """torch.save `state` to `path` atomically."""
    atomic_write(path, lambda out: torch.save(state, out))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint safely (weights_only); a missing or corrupt file gives an AdgmError."""
    if not path.is_file():
        raise AdgmError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise AdgmError(f"checkpoint {path} is unreadable: {str(exc).splitlines()[0]}") from None
