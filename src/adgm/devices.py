"""Which torch device a run uses: 'cpu', 'cuda', 'cuda:N' or 'auto'."""

from __future__ import annotations

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
