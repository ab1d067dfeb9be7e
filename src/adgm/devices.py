"""Which torch device a run uses: 'cpu', 'cuda', 'cuda:N' or 'auto'; deterministic kernels."""

from __future__ import annotations

import contextlib
import os

import torch

from adgm.errors import AdgmError


def resolve_device(requested: str) -> torch.device:
    """torch.device for 'cpu', 'cuda' or 'cuda:N' (with a clear error when it is not there), or
    'auto': the first CUDA GPU where there is one, else the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise AdgmError(f"unknown device {requested!r}; use 'cpu' or 'cuda'") from None
    if device.type not in ("cpu", "cuda"):
        raise AdgmError(f"unsupported device {requested!r}; use 'cpu' or 'cuda'")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AdgmError("device 'cuda' was asked for but no CUDA GPU is available")
    return device


def synchronise(device: torch.device) -> None:
    """Wait for the work queued on `device` (a GPU's kernels run ahead of the host); a CPU's is
    already done. For timings."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# cuBLAS repeats its results only with a fixed workspace; torch refuses cuBLAS calls under
# deterministic algorithms without one of these two settings.
CUBLAS_WORKSPACE = ("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


@contextlib.contextmanager
def deterministic_kernels(enabled: bool):
    """Inside the block, with enabled, torch runs deterministic kernels only.

    On a GPU some of torch's kernels may add in an order that changes from run to run (atomic
    additions, for instance), so two runs of one command part after a few steps; measured on an H200
    (docs/speed.md): the SDGM's weights 6-8e-3 apart after 60 steps, and with deterministic
    kernels bitwise equal, a resumed run included. A CPU run is repeatable either way.
    ``torch.use_deterministic_algorithms(True)``, and ``CUBLAS_WORKSPACE_CONFIG`` set to a fixed
    workspace unless the caller set it (it must be set before the process's first cuBLAS call
    to take effect). The caller's settings are put back after the block.
    """
    if not enabled:
        yield
        return
    name, value = CUBLAS_WORKSPACE
    was_enabled = torch.are_deterministic_algorithms_enabled()
    was_set = name in os.environ
    os.environ.setdefault(name, value)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_enabled)
        if not was_set:
            os.environ.pop(name, None)
