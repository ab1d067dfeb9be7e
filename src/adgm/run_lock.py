"""One process at a time per run folder: an exclusive ``flock`` on ``RUN_DIR/lock``.

The kernel releases a ``flock`` when its process ends, however it ends (SIGKILL included), so a
lock left by a killed run never blocks a later ``--resume``; the file itself may stay behind and
only records, for the error message, which process holds it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from adgm.errors import AdgmError

LOCK_FILE = "lock"


class RunLock:
    """Held from ``acquire`` until ``release`` or the end of the process."""

    def __init__(self, run_dir: Path, handle: int):
        self.run_dir, self._handle = Path(run_dir), handle

    @classmethod
    def acquire(cls, run_dir: Path) -> RunLock:
        """Lock the run folder (created if needed), or raise AdgmError naming the holder."""
        path = Path(run_dir) / LOCK_FILE
        try:
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise AdgmError(f"cannot write the run folder {run_dir}: {exc}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(handle, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(handle)
            raise AdgmError(
                f"{run_dir} is in use by another adgm process (pid {holder}); wait for it to "
                "end or stop it, then --resume"
            ) from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
        return cls(run_dir, handle)

    def release(self) -> None:
        """Unlock (the file stays; an unlocked file blocks nobody)."""
        if self._handle is not None:
            os.close(self._handle)  # closing the descriptor releases the flock
            self._handle = None

    def __del__(self):
        self.release()
