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
    """The processor's model name with its family and model numbers where Linux gives them, e.g.
    'AMD EPYC (family 26, model 2)': a virtual machine's name alone ('AMD EPYC') can stand for
    processors a generation apart. platform.processor() where Linux's cpuinfo is absent."""
    fields: dict[str, str] = {}
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if not line.strip():
                break  # the first processor's block is enough
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name")
    if not name:
        return platform.processor() or platform.machine() or sys.platform
    if fields.get("cpu family") and fields.get("model"):
        return f"{name} (family {fields['cpu family']}, model {fields['model']})"
    return name


def _usable_cores() -> int:
    """The CPUs this process may run on (its affinity where the platform tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
