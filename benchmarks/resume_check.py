"""Exact resume on a device: a run stopped in the middle of an epoch and resumed against the same
run uninterrupted, on MNIST with the paper's sizes (1 MC).

Trains, for each model, three runs of --epochs short epochs (--steps steps each) from seed 0:
two uninterrupted (whether the device is deterministic at all) and one asked to stop, as Ctrl-C
does, after step --stop-step of the last epoch, then resumed from its checkpoint in a fresh
Trainer. Prints, per model, whether the final weights and the metrics rows (losses and test
error; times left out) are bitwise equal. The tests check the same on a CPU with tiny models;
this is for a GPU, where the Monte Carlo noise comes from the device's generator.

    python benchmarks/resume_check.py --device cuda      # the default: a GPU where there is one
    python benchmarks/resume_check.py --device cpu --steps 6 --stop-step 3   # a smoke test
    python benchmarks/resume_check.py --device cuda --deterministic   # deterministic kernels

--deterministic trains every run as `adgm train --deterministic` does (torch's deterministic
algorithms only, with cuBLAS's fixed workspace: adgm.devices.deterministic_kernels), to tell
whether the device's own run-to-run differences come from the kernels torch chooses. A
difference in weights is given as the largest |w1 - w2|.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from adgm.checkpoint import load_latest_checkpoint
from adgm.config import RunConfig
from adgm.data import load_data
from adgm.devices import resolve_device
from adgm.errors import AdgmError
from adgm.run_folder import without_timings
from adgm.train import Trainer, TrainingInterrupted, read_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="cpu, cuda[:N], or auto (a GPU if any)")
    parser.add_argument("--models", nargs="+", default=["adgm", "sdgm"])
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60, help="steps per epoch")
    parser.add_argument("--stop-step", type=int, default=17, help="step of the last epoch")
    parser.add_argument("--test-subset", type=int, default=2000)
    parser.add_argument("--deterministic", action="store_true")
    args = parser.parse_args()
    try:
        args.device = str(resolve_device(args.device))
    except AdgmError as error:
        raise SystemExit(f"resume_check: {error}") from None
    for name in args.models:
        config = _config(name, args)
        data = load_data(config.data, likelihood="auto", device=args.device)
        with tempfile.TemporaryDirectory() as tmp:
            folders = [Path(tmp) / f for f in ("straight", "again", "stopped")]
            for folder in folders[:2]:
                _train(config, folder, data)
            _train(config, folders[2], data, stop_at=(args.epochs - 1, args.stop_step))
            resumed = Trainer(config, folders[2], data)
            resumed.resume()
            where = f"epoch {resumed.epoch + 1}, step {resumed.step}"
            resumed.fit(log=lambda _: None)
            deterministic = _same(folders[0], folders[1])
            exact = _same(folders[0], folders[2])
        print(
            f"{name} ({args.precision}, {args.device}"
            f"{', deterministic algorithms' if args.deterministic else ''}): "
            f"two uninterrupted runs {deterministic}; "
            f"stopped after {where} and resumed: {exact}",
            flush=True,
        )


def _config(name: str, args: argparse.Namespace) -> RunConfig:
    paper = RunConfig()
    return replace(
        paper,
        data=replace(paper.data, test_subset=args.test_subset),
        model=replace(paper.model, name=name),
        train=replace(
            paper.train,
            epochs=args.epochs,
            max_steps_per_epoch=args.steps,
            eval_samples=10,
            precision=args.precision,
            device=args.device,
            deterministic=args.deterministic,  # adgm train --deterministic
        ),
    )


def _train(config: RunConfig, folder: Path, data, stop_at: tuple[int, int] | None = None) -> None:
    """Train a run in folder; with stop_at (epoch, step), stop it there as the first Ctrl-C does.

    A stop this function did not ask for (a real Ctrl-C or SIGTERM, e.g. from `timeout`) leaves
    the run short of its steps, so that any comparison after it would report a difference that
    is not the device's: it ends the script with a one-line message instead."""
    trainer = Trainer(config, folder, data)
    trainer.start()
    asked = False
    if stop_at is not None:
        step_once = trainer.loop.step_once

        def step_then_stop(*args, **kwargs):  # as the first Ctrl-C does
            nonlocal asked
            terms = step_once(*args, **kwargs)
            if (trainer.epoch, trainer.step + 1) == stop_at:
                trainer.stop_requested = asked = True
            return terms

        trainer.loop.step_once = step_then_stop
    try:
        trainer.fit(log=lambda _: None)
    except TrainingInterrupted as stop:
        if not asked:
            raise SystemExit(
                f"resume_check: {config.model.name}: stopped by a signal ({stop}); no verdict"
            ) from None


def _same(first: Path, second: Path) -> str:
    weights = [load_latest_checkpoint(folder)["model"] for folder in (first, second)]
    largest = max((weights[0][k] - weights[1][k]).abs().max().item() for k in weights[0])
    rows = [list(map(without_timings, read_metrics(folder))) for folder in (first, second)]
    verdict = "weights equal" if largest == 0 else f"WEIGHTS DIFFER (by up to {largest:.2e})"
    return verdict + (", metrics equal" if rows[0] == rows[1] else ", METRICS DIFFER")


if __name__ == "__main__":
    main()
