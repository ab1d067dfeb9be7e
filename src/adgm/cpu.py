"""Two process settings that make training fast on a CPU, both measured on MNIST-sized steps.

1. Denormal floats flushed to zero. Training makes them (e.g. Adam's second moments of
   parameters whose gradients all but vanish), and x86 arithmetic on them is slow: a checkpoint
   after 20 MNIST epochs stepped at 323 ms on one thread without the flush and 89 ms with it.
2. Freed memory kept in the process. glibc's malloc serves a block of more than
   M_MMAP_THRESHOLD bytes (128 KiB, raised on the fly up to 32 MiB) with its own mmap and gives
   it back to the kernel when it is freed. Every step then allocates the same large tensors
   afresh, and the kernel zero-fills each of their 4 KiB pages on first touch: an ADGM step with
   10 Monte Carlo samples took ~16,000 page faults. ``keep_freed_memory`` serves all blocks from
   the heap and keeps up to 1 GiB of freed memory for the next step.

And one check: whether this CPU multiplies bf16 matrices fast (``has_bf16_matrix_kernels``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import platform
import sys
import warnings

import torch

from adgm.errors import AdgmWarning

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
_M_MMAP_MAX = -4
_KEPT_BYTES = 1 << 30


def flush_denormals() -> None:
    """Treat denormal floats (|x| < 1.2e-38) as zero on this CPU thread and those it starts.

    The flag is per thread and new threads copy it, so call this before torch starts its thread
    pool (the CLI does it first thing).
    """
    torch.set_flush_denormal(True)


@contextlib.contextmanager
def denormals_flushed():
    """Flush denormals inside the block, then restore the caller's mode.

    For training from Python: the process is the caller's, so its setting is put back.
    """
    was_flushing = torch.tensor([1e-39]).mul(2.0).item() == 0.0  # no getter in torch
    flush_denormals()
    try:
        yield
    finally:
        if not was_flushing:
            torch.set_flush_denormal(False)


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of returning it to the kernel.

    Sets M_MMAP_MAX = 0 (every block comes from the heap) and M_TRIM_THRESHOLD = 1 GiB (the heap
    shrinks only past that much free memory at its top). This lasts for the rest of the process:
    glibc has no way to read the old values back. Returns False, changing nothing, where the C
    library is not glibc (macOS, Windows, musl), whose allocators behave differently.
    """
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    # mallopt returns 1 on success and 0 on failure.
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _KEPT_BYTES))


def has_bf16_matrix_kernels() -> bool:
    """Whether torch multiplies bf16 matrices on this CPU with oneDNN's kernels.

    oneDNN serves bf16 on x86 processors with AVX-512 (BW, VL, DQ) or AMX, and on Arm ones with
    BF16 instructions; elsewhere torch falls back to a plain loop. Measured on an AMD EPYC of
    family 25 (AVX2 only), one thread, 2026-12-06 (``benchmarks/step_time.py``): a 1100x500 by
    500x500 product at 2.6 GFLOP/s in bf16 against 88 in fp32, and an ADGM training step (1 MC)
    in 1.62 s against 0.12 s. True where torch does not say (an older or other build).
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return True


def warn_if_bf16_is_slow(precision: str, device: torch.device) -> None:
    """An AdgmWarning when bf16 training is asked for on a CPU without fast bf16 kernels."""
    if precision == "bf16" and device.type == "cpu" and not has_bf16_matrix_kernels():
        warnings.warn(
            "this CPU has no fast bf16 matrix kernels (they need AVX-512 or AMX): a bf16 "
            "training step takes several times an fp32 one here (13 times on an AVX2-only AMD "
            "EPYC); precision fp32 is faster",
            AdgmWarning,
            stacklevel=2,
        )
