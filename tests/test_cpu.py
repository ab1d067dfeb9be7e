"""The CPU process settings of adgm.cpu."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

STEPS_OF_FRESH_TENSORS = """
import resource, torch
from adgm.cpu import keep_freed_memory

def faults_in_ten_steps():
    # Like a training step: tensors of several sizes live together, then are all freed.
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        alive = [torch.ones(n) for n in (8_600_000, 4_000_000, 1_100_000, 8_600_000)]
        del alive
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = faults_in_ten_steps()
assert keep_freed_memory()
faults_in_ten_steps()  # the heap grows to the peak once
print(default, faults_in_ten_steps())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc only")
def test_keep_freed_memory_stops_page_faults_on_each_fresh_tensor():
    # In a child process: the setting lasts for the rest of the process.
    result = subprocess.run(
        [sys.executable, "-c", STEPS_OF_FRESH_TENSORS], capture_output=True, text=True, check=True
    )
    default, kept = map(int, result.stdout.split())
    # A step allocates 89 MB, 21,800 pages of 4 KiB; glibc's defaults fault most of them in anew.
    assert default > 50_000, (default, kept)
    assert kept < default / 20, (default, kept)


def _cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")),
    reason="reads the x86 flags of /proc/cpuinfo",
)
def test_bf16_kernels_are_reported_where_the_cpu_has_avx512_or_amx():
    from adgm.cpu import has_bf16_matrix_kernels

    flags = _cpu_flags()
    expected = {"avx512bw", "avx512vl", "avx512dq"} <= flags or "amx_bf16" in flags
    assert has_bf16_matrix_kernels() == expected, sorted(f for f in flags if "512" in f)


@pytest.mark.filterwarnings("default::adgm.errors.AdgmWarning")
def test_bf16_on_a_cpu_without_bf16_kernels_warns_and_nothing_else_does(monkeypatch):
    import warnings

    import torch

    from adgm import cpu
    from adgm.errors import AdgmWarning

    monkeypatch.setattr(cpu, "has_bf16_matrix_kernels", lambda: False)
    with pytest.warns(AdgmWarning, match="no fast bf16 matrix kernels"):
        cpu.warn_if_bf16_is_slow("bf16", torch.device("cpu"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cpu.warn_if_bf16_is_slow("fp32", torch.device("cpu"))
        cpu.warn_if_bf16_is_slow("bf16", torch.device("cuda"))  # a GPU has its own bf16 units
        monkeypatch.setattr(cpu, "has_bf16_matrix_kernels", lambda: True)
        cpu.warn_if_bf16_is_slow("bf16", torch.device("cpu"))
    assert caught == []
