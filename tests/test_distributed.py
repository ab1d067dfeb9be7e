"""Data-parallel training: shards, and 2 CPU processes with gloo (in-process spawn and torchrun)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.multiprocessing as mp

from adgm.config import DataConfig
from adgm.data import epoch_batches
from adgm.distributed import leave_process_group
from adgm.train import Trainer
from tests.test_train import blobs, tiny_run


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_shards_split_the_unlabelled_rows_and_share_the_labelled_half():
    _, data = tiny_run()
    halves = [
        list(
            epoch_batches(
                data,
                torch.Generator().manual_seed(3),
                labelled_batch=6,
                unlabelled_batch=20,
                shard=(rank, 2),
            )
        )
        for rank in (0, 1)
    ]
    assert len(halves[0]) == len(halves[1]) == 200 // 2 // 20
    for (x_l0, y_l0, _), (x_l1, y_l1, _) in zip(*halves):
        assert torch.equal(y_l0, y_l1) and x_l0.shape == x_l1.shape
    rows = [torch.cat([x_u for _, _, x_u in half]) for half in halves]
    assert rows[0].shape == rows[1].shape == (100, 20)


def train_one_rank(rank: int, port: int, folder: str) -> None:
    """One of two processes: train 2 short epochs, then save this rank's weights."""
    os.environ.update(
        RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    config, data = tiny_run(epochs=2)
    trainer = Trainer(config, os.path.join(folder, "run"), data)
    trainer.start()
    trainer.fit(log=lambda _: None)
    torch.save(trainer.model.state_dict(), os.path.join(folder, f"rank{rank}.pt"))
    leave_process_group(finished=True)


def test_two_gloo_processes_keep_identical_weights_and_rank_0_writes(tmp_path):
    mp.spawn(train_one_rank, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    weights = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for name, value in weights[0].items():
        assert torch.equal(value, weights[1][name]), name
    _, data = tiny_run()
    initial = Trainer(tiny_run()[0], None, data).model.state_dict()
    assert any(not torch.equal(initial[k], weights[0][k]) for k in initial)  # it trained
    rows = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["epoch"] for r in rows] == [1, 2]  # once, from rank 0
    # each rank did (200 // 2) // 20 = 5 steps an epoch
    assert all(abs(r["steps_per_s"] * r["seconds"] - 5) < 1e-6 for r in rows)


def test_torchrun_runs_the_cli_on_two_processes(tmp_path):
    x = np.concatenate([blobs(200, 0).images, blobs(60, 1).images])
    labels = np.concatenate([blobs(200, 0).labels, blobs(60, 1).labels])
    y = np.where(np.arange(len(x)) < 200, -1, labels)  # 60 labelled, 200 unlabelled
    np.savez(tmp_path / "d.npz", X=x, y=y)
    out = tmp_path / "run"
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"),
        *("--master-port", str(free_port()), "-m", "adgm", "train"),
        *("--data", str(tmp_path / "d.npz"), "--epochs", "2", "--out", str(out)),
        *("--hidden", "16", "--z-dim", "2", "--a-dim", "2", "--eval-samples", "3"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert DataConfig(**json.loads((out / "config.json").read_text())["data"]).labelled_batch == 60


def _worker_pids(parent: int) -> dict[int, int]:
    """{rank: pid} of the torchrun workers below `parent` (read from /proc)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        variables = dict(item.split(b"=", 1) for item in environ if b"=" in item)
        marker = variables.get(b"ADGM_TEST_RUN")
        if marker == str(parent).encode() and b"RANK" in variables and "python" in stat:
            found[int(variables[b"RANK"])] = int(entry)
    return found


def test_ctrl_c_on_one_torchrun_rank_stops_every_rank_after_the_same_step(tmp_path):
    """SIGINT to rank 1 alone: both ranks stop after the same step (they agree at each step),
    rank 0 writes a checkpoint, and no process waits forever for the other."""
    import signal
    import time

    x = np.concatenate([blobs(2000, 0).images, blobs(60, 1).images])
    labels = np.concatenate([blobs(2000, 0).labels, blobs(60, 1).labels])
    y = np.where(np.arange(len(x)) < 2000, -1, labels)
    np.savez(tmp_path / "d.npz", X=x, y=y)
    out = tmp_path / "run"
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"),
        *("--master-port", str(free_port()), "-m", "adgm", "train"),
        *("--data", str(tmp_path / "d.npz"), "--epochs", "1000", "--out", str(out)),
        *("--hidden", "16", "--z-dim", "2", "--a-dim", "2", "--eval-samples", "3"),
        *("--unlabelled-batch", "10", "--checkpoint-every", "1000"),
    ]
    marker = str(os.getpid())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ADGM_TEST_RUN": marker}
    log = tmp_path / "log"
    with log.open("w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 120
        metrics = out / "metrics.jsonl"
        while not (metrics.exists() and metrics.read_text().count("\n") >= 1):
            assert time.monotonic() < deadline and process.poll() is None, "no epoch finished"
            time.sleep(0.2)
        workers = _worker_pids(int(marker))
        assert sorted(workers) == [0, 1]
        os.kill(workers[1], signal.SIGINT)
        try:
            process.wait(timeout=120)  # a rank left waiting in an all-reduce would hang here
        except subprocess.TimeoutExpired:
            raise AssertionError("torchrun still running:\n" + log.read_text()[-3000:]) from None
    finally:
        if process.poll() is None:
            process.kill()
    checkpoints = sorted((out / "checkpoints").glob("*.pt"))
    assert checkpoints, log.read_text()[-2000:]
    state = torch.load(checkpoints[-1], weights_only=True)
    assert state["epoch"] >= 1 and 0 < state["step"] < 100  # mid-epoch: 100 steps a rank
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, state["epoch"] + 1))


def test_a_ctrl_c_during_the_stop_agreement_is_kept_for_the_next_check(monkeypatch):
    """The SIGINT handler runs just after the agreement's all-reduce returns, when the other
    rank has already agreed not to stop. This step must not stop (the other rank goes on), and
    the request must survive to the next check instead of being overwritten by the agreement."""
    from types import SimpleNamespace

    from adgm.pausing import Pausing

    pausing = Pausing(SimpleNamespace(world_size=2), torch.device("cpu"))

    def all_reduce_then_ctrl_c(flag, op):  # the other rank sends 0; MAX keeps ours
        pausing.stop_requested = True  # the handler, on return from the blocking call

    monkeypatch.setattr(torch.distributed, "all_reduce", all_reduce_then_ctrl_c)
    assert pausing.stop_now(due=True) is False  # as the other rank decides
    assert pausing.stop_requested
    monkeypatch.setattr(torch.distributed, "all_reduce", lambda flag, op: None)
    assert pausing.stop_now(due=False) is False  # no check, no stop
    assert pausing.stop_now(due=True) is True  # both ranks see our 1 now


def test_the_checkpoint_clock_is_due_after_its_minutes_and_restarts_when_saved(monkeypatch):
    from types import SimpleNamespace

    from adgm import pausing as module

    now = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    never = module.Pausing(SimpleNamespace(world_size=1), torch.device("cpu"))
    clock = module.Pausing(SimpleNamespace(world_size=1), torch.device("cpu"), 2.0)
    now[0] += 119.0
    assert not clock.checkpoint_due()
    now[0] += 1.0
    assert clock.checkpoint_due() and not never.checkpoint_due()
    clock.saved()
    assert not clock.checkpoint_due()
    assert not clock.stop_now(due=True)
    clock.stop_requested = True  # one process: Ctrl-C stops after the step, checked or not
    assert clock.stop_now(due=False)


def test_adgm_train_lets_its_trainer_go_before_it_leaves_the_process_group(tmp_path, monkeypatch):
    """The model of a distributed run holds the process group, so the trainer must be gone
    (weakly referenced, it reads None after a collection) when the group is torn down."""
    import gc
    import weakref

    import adgm.distributed
    from adgm.cli import main

    x, labels = blobs(200, 0).images, blobs(200, 0).labels
    np.savez(tmp_path / "d.npz", X=x, y=np.where(np.arange(200) < 150, -1, labels))
    made, alive_at_leave = [], []
    start = Trainer.__init__

    def remembered(self, *args, **kwargs):
        start(self, *args, **kwargs)
        made.append(weakref.ref(self))

    def leave(*, finished):
        gc.collect()
        alive_at_leave.append([ref() is not None for ref in made])

    monkeypatch.setattr(Trainer, "__init__", remembered)
    monkeypatch.setattr(adgm.distributed, "leave_process_group", leave)
    flags = ["--data", str(tmp_path / "d.npz"), "--epochs", "1", "--hidden", "8"]
    assert (
        main(["train", *flags, "--z-dim", "2", "--a-dim", "2", "--out", str(tmp_path / "r")]) == 0
    )
    assert alive_at_leave == [[False]]
