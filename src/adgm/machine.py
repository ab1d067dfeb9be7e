"""What a run trains on, in a few words: recorded each time a run starts or resumes.

A long run may continue on another machine (or with another torch), and its epoch times, and in
bf16 the rounding of its matrix products, change with it. ``describe_machine`` is the record a
run folder keeps of each start (``RunFolder.record_start``), so that the hours of a run can be
read against the machine they ran on.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from pathlib import Path
from typing import Any

import torch


def describe_machine(device: torch.device) -> dict[str, Any]:
    """{host, cpu, cores, threads, python, torch, device[, gpu]} of this process.

    ``cpu`` is the processor's model name (from /proc/cpuinfo on Linux), ``cores`` the CPUs this
    process may use, ``threads`` torch's intra-op threads, ``gpu`` the CUDA device's name when
    `device` is a CUDA device.
    """
    described = {
        "host": socket.gethostname(),
        "cpu": cpu_model(),
        "cores": _usable_cores(),
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
    }
    if device.type == "cuda":
        described["gpu"] = torch.cuda.get_device_name(device)
    return described


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The processor's model name, e.g. 'AMD EPYC'; platform.processor() where Linux's is absent."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or sys.platform


def _usable_cores() -> int:
    """The CPUs this process may run on (its affinity where the platform tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
