"""The CPU process settings of adgm.cpu."""

from __future__ import annotations

import platform
import subprocess
import sys

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
