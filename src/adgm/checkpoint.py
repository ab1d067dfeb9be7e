"""Checkpoints that describe themselves, written atomically, the last K kept.

A run folder keeps its checkpoints in ``checkpoints/``: files ``epoch-EEEEE-step-SSSSS.pt`` and a
text file ``latest`` naming the newest. A checkpoint file is written to a temporary file in the
same folder, flushed to disk and renamed over its name; only then is ``latest`` rewritten the
same way and older files beyond the last K deleted. A crash at any moment therefore leaves
``latest`` naming a complete checkpoint (or, if it is lost, the newest file that loads is used).
Checkpoints hold tensors and plain values only and are read with ``weights_only=True``: loading
never runs code.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

from adgm.errors import AdgmError

FOLDER = "checkpoints"
POINTER = "latest"


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a temp file beside `path` with write(file), fsync it, rename it over `path`.

    The folder is fsynced too, so the rename survives a power cut.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file atomically (UTF-8)."""
    atomic_write(path, lambda out: out.write(text.encode("utf-8")))


def checkpoint_name(epoch: int, step: int) -> str:
    """File name of the checkpoint taken after `step` steps of epoch `epoch + 1`."""
    return f"epoch-{epoch:05d}-step-{step:05d}.pt"


def save_checkpoint(run_dir: Path, state: dict[str, Any], *, keep: int) -> Path:
    """Write `state` as the newest checkpoint of `run_dir`, keeping the last `keep` files."""
    folder = Path(run_dir) / FOLDER
    path = folder / checkpoint_name(int(state["epoch"]), int(state["step"]))
    atomic_write(path, lambda out: torch.save(state, out))
    atomic_write_text(folder / POINTER, path.name + "\n")
    for old in sorted(folder.glob("epoch-*.pt"))[:-keep]:
        old.unlink()
    return path


def has_checkpoint(run_dir: Path) -> bool:
    """Whether the run folder holds any checkpoint file."""
    return any((Path(run_dir) / FOLDER).glob("epoch-*.pt"))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load one checkpoint file safely (weights_only); missing or corrupt gives an AdgmError."""
    if not path.is_file():
        raise AdgmError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged files; all mean the same
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise AdgmError(f"checkpoint {path} is unreadable: {reason}") from None


def load_epoch_checkpoint(run_dir: Path, epoch: int) -> dict[str, Any]:
    """The checkpoint taken at the end of epoch `epoch` (its file must still be kept)."""
    folder = Path(run_dir) / FOLDER
    path = folder / checkpoint_name(epoch, 0)
    if not path.is_file():
        kept = sorted(int(c.name.split("-")[1]) for c in folder.glob("epoch-*-step-00000.pt"))
        listed = ", ".join(map(str, kept)) if kept else "none"
        raise AdgmError(f"no checkpoint of epoch {epoch} in {folder} (epochs kept: {listed})")
    return load_checkpoint(path)


def load_latest_checkpoint(run_dir: Path) -> dict[str, Any]:
    """The checkpoint `latest` names; if that is missing or unreadable, the newest that loads."""
    folder = Path(run_dir) / FOLDER
    candidates = sorted(folder.glob("epoch-*.pt"), reverse=True)
    pointer = folder / POINTER
    if pointer.is_file():
        named = folder / pointer.read_text(encoding="utf-8").strip()
        candidates = [named] + [c for c in candidates if c != named]
    for candidate in candidates:
        try:
            return load_checkpoint(candidate)
        except AdgmError:
            continue
    raise AdgmError(f"no readable checkpoint in {folder}")
