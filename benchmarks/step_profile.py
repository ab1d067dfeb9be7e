"""Where a training step's time goes: torch.profiler over steps of benchmarks/step_time.py.

Prints ms per step spent in matrix products (against their FLOP floor at the dense matmul rate
measured in the same run), in the Adam update, and in each of the costliest other operators.

    python benchmarks/step_profile.py                       # ADGM, 1 MC, fp32, CPU
    python benchmarks/step_profile.py --model adgm --samples 10 --dtype bf16
"""

from __future__ import annotations

import argparse

import torch
from step_time import DTYPES, make_step, matmul_gflops
from torch.profiler import ProfilerActivity, profile

from adgm.config import ModelConfig
from adgm.cpu import flush_denormals, keep_freed_memory
from adgm.devices import synchronise
from adgm.flops import step_flops

MATMULS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::_mkldnn_linear"}
OPTIMISER = {"aten::_fused_adam_"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    models = ["adgm", "adgm-det", "m2", "adgm-gen", "sdgm"]
    parser.add_argument("--model", default="adgm", choices=models)
    parser.add_argument("--samples", type=int, default=1, help="Monte Carlo samples")
    parser.add_argument("--dtype", default="fp32", choices=list(DTYPES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--top", type=int, default=12, help="other operators to list")
    args = parser.parse_args()
    device = torch.device(args.device)
    flush_denormals()
    if device.type == "cpu":
        keep_freed_memory()
    one_step = make_step(args.model, args.samples, args.dtype, device)
    for _ in range(3):
        one_step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(args.steps):
            one_step()
        synchronise(device)
    use_device_time = device.type == "cuda"

    def ms(event) -> float:  # self time of an operator, per step
        total = event.self_device_time_total if use_device_time else event.self_cpu_time_total
        return total / args.steps / 1000

    events = prof.key_averages()
    total = sum(ms(e) for e in events)
    matmul = sum(ms(e) for e in events if e.key in MATMULS)
    optimiser = sum(ms(e) for e in events if e.key in OPTIMISER)
    flops = step_flops(ModelConfig(name=args.model), 100, 100, args.samples)
    floor_ms = flops / (matmul_gflops(device, args.dtype, repeats=10) * 1e9) * 1000
    print(f"{args.model} {args.samples} MC {args.dtype} on {device}, {args.steps} steps profiled")
    print(f"  {total:7.2f} ms/step in operators ({'device' if use_device_time else 'CPU'} time)")
    print(
        f"  {matmul:7.2f} ms  {100 * matmul / total:4.1f}%  matrix products "
        f"(FLOP floor {floor_ms:.2f} ms: {matmul / floor_ms:.2f}x)"
    )
    print(f"  {optimiser:7.2f} ms  {100 * optimiser / total:4.1f}%  Adam update")
    others = [e for e in events if e.key not in MATMULS | OPTIMISER]
    for event in sorted(others, key=ms, reverse=True)[: args.top]:
        calls = event.count / args.steps
        print(
            f"  {ms(event):7.2f} ms  {100 * ms(event) / total:4.1f}%  {event.key} ({calls:g} calls)"
        )


if __name__ == "__main__":
    main()
