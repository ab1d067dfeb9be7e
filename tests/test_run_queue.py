"""scripts/run_queue.py: a queue of runs trained a few at a time, to their targets, resumable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.scripts import ROOT, load_script
from tests.test_train import blobs

SCRIPT = ROOT / "scripts" / "run_queue.py"
run_queue = load_script("scripts", "run_queue")

TINY = "--hidden 16 --z-dim 2 --a-dim 2 --eval-samples 3 --unlabelled-batch 20"


def tiny_data(folder: Path) -> Path:
    """200 unlabelled and 6 labelled blobs in the estimator's convention (-1: no label)."""
    x = np.concatenate([blobs(200, 0).images, blobs(6, 1).images])
    labels = np.concatenate([np.full(200, -1), blobs(6, 1).labels])
    path = folder / "d.npz"
    np.savez(path, X=x, y=labels)
    return path


def tiny_training(folder: Path) -> tuple[str, Path]:
    """The words of a tiny `adgm train` on blobs, and the queue's runs folder."""
    return f"adgm train --data {tiny_data(folder)} {TINY}", folder / "runs"


def queue_file(folder: Path, lines: list[str]) -> Path:
    path = folder / "queue.txt"
    path.write_text("# name target command\n" + "\n".join(lines) + "\n")
    return path


def epochs_of(run_dir: Path) -> list[int]:
    rows = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(row)["epoch"] for row in rows]


def start(queue: Path, runs: Path, *options: str) -> subprocess.Popen:
    """The queue in a session of its own, as a terminal would run it."""
    command = [sys.executable, str(SCRIPT), str(queue), "--runs-dir", str(runs), "--poll", "0.2"]
    command += options
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(queue: Path, runs: Path, *options: str) -> str:
    """Run the queue to its end; its output (it must succeed)."""
    process = start(queue, runs, *options)
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 0, output
    return output


def test_every_run_reaches_its_target_and_a_raised_target_continues_it(tmp_path):
    train, runs = tiny_training(tmp_path)
    lines = [f"first 2 {train} --model m2", f"second 1 {train}", f"third 2 {train} --seed 1"]
    output = finish(queue_file(tmp_path, lines), runs)
    assert epochs_of(runs / "first") == [1, 2]
    assert epochs_of(runs / "second") == [1]
    assert epochs_of(runs / "third") == [1, 2]
    assert json.loads((runs / "first" / "config.json").read_text())["model"]["name"] == "m2"

    lines[0] = f"first 3 {train} --model m2"  # raised: continues from its checkpoint
    lines.append(f"second 2 {train}")  # a later stage of a run already in the queue
    copies = tmp_path / "copies"  # and --copy-to keeps the running runs' small files there
    (copies / "first").mkdir(parents=True)
    (copies / "first" / "metrics.jsonl").write_text('{"epoch": 1}\n')  # stale: replaced
    output = finish(queue_file(tmp_path, lines), runs, "--copy-to", str(copies))
    assert "first: from epoch 2 to 3" in output and "second: from epoch 1 to 2" in output
    assert "third" not in output  # at its target already
    assert epochs_of(runs / "first") == [1, 2, 3] and epochs_of(runs / "second") == [1, 2]
    assert "resuming" in (runs / "first.log").read_text()
    assert sorted(path.name for path in copies.iterdir()) == ["first", "second"]  # not third
    for name in ("first", "second"):
        copied = sorted(path.name for path in (copies / name).iterdir())
        assert copied == ["command.txt", "config.json", "metrics.jsonl", "starts.jsonl"]
        for file in copied:
            assert (copies / name / file).read_bytes() == (runs / name / file).read_bytes()


def test_ctrl_c_stops_the_runs_with_a_checkpoint_and_the_queue_resumes_them(tmp_path):
    train, runs = tiny_training(tmp_path)
    queue = queue_file(tmp_path, [f"long 1000 {train}"])
    process = start(queue, runs)
    try:
        deadline = time.monotonic() + 120
        while not ((runs / "long" / "metrics.jsonl").exists() and epochs_of(runs / "long")):
            assert time.monotonic() < deadline and process.poll() is None, "no epoch finished"
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in a terminal: its whole group
        output = process.communicate(timeout=120)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "long: stopped at epoch" in output
    assert list((runs / "long" / "checkpoints").glob("*.pt"))
    log = (runs / "long.log").read_text()
    assert "adgm: interrupted: stopped at epoch" in log  # the step is finished, not abandoned
    assert "Ctrl-C again" in log and "the last checkpoint is kept" not in log


@pytest.mark.parametrize(
    "line, message",
    [
        ("name x adgm train --model m2", "expected NAME TARGET_EPOCH adgm train"),
        ("name 10 python train.py", "expected NAME TARGET_EPOCH adgm train"),
        ("name 10 adgm train --epochs 5", "--out, --epochs and --resume are the queue's"),
        ("name 10 adgm train\nname 20 adgm train --seed 1", "already in the queue with other"),
        ("name 10 adgm train\nname 10 adgm train", "must raise its target epoch"),
    ],
)
def test_a_malformed_queue_is_one_line_naming_the_line(tmp_path, line, message):
    queue = queue_file(tmp_path, [line])
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(queue), "--runs-dir", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "queue.txt, line " in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_read_queue_keeps_order_arguments_and_comments(tmp_path):
    queue = queue_file(
        tmp_path,
        [
            "a 100 adgm train --model sdgm --precision bf16  # the SDGM",
            "",
            "b 100 adgm train",
            "a 300 adgm train --model sdgm --precision bf16",
        ],
    )
    sdgm = ("--model", "sdgm", "--precision", "bf16")
    assert run_queue.read_queue(queue) == [
        run_queue.QueuedRun("a", 100, sdgm),
        run_queue.QueuedRun("b", 100, ()),
        run_queue.QueuedRun("a", 300, sdgm),
    ]


def test_a_later_stage_waits_while_its_run_trains(tmp_path):
    """With two slots and the queue a-to-1, a-to-2, b: b starts beside a, never a twice."""
    train, runs = tiny_training(tmp_path)
    lines = [f"a 1 {train}", f"a 2 {train}", f"b 1 {train} --model m2"]
    output = finish(queue_file(tmp_path, lines), runs)
    order = [line.split("run_queue: ")[1] for line in output.splitlines() if ": from" in line]
    assert order == ["a: from epoch 0 to 1", "b: from epoch 0 to 1", "a: from epoch 1 to 2"]
    assert epochs_of(runs / "a") == [1, 2] and "refused" not in output


def test_a_run_that_fails_is_not_started_again_by_its_later_lines(tmp_path):
    train, runs = tiny_training(tmp_path)
    bad = f"{train} --z-dim 0"  # refused by adgm train with a one-line error
    queue = queue_file(tmp_path, [f"bad 1 {bad}", f"good 1 {train}", f"bad 2 {bad}"])
    process = start(queue, runs)
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 1, output
    assert output.count("bad: from epoch") == 1 and "bad: exited with 2" in output
    assert epochs_of(runs / "good") == [1]


def test_lines_added_while_the_queue_trains_are_taken_and_a_broken_edit_is_survived(tmp_path):
    """The queue file is read again as the queue goes: an edit that breaks it keeps the last good
    queue (said once), and a line added later is trained in this same call."""
    train, runs = tiny_training(tmp_path)
    queue = queue_file(tmp_path, [f"a 3 {train}"])
    command = [sys.executable, str(SCRIPT), str(queue), "--runs-dir", str(runs), "--poll", "0.1"]
    command += ["--parallel", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while not (runs / "a.log").exists():  # a has started: the queue has read its file
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    queue_file(tmp_path, [f"a 3 {train}", "b one adgm train"])  # malformed: no target epoch
    time.sleep(0.5)
    queue_file(tmp_path, [f"a 3 {train}", f"b 1 {train} --model m2"])
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 0, output
    assert epochs_of(runs / "a") == [1, 2, 3], output
    assert epochs_of(runs / "b") == [1], output
    assert output.count("keeping the queue as it last read") == 1, output
    assert "line 3: expected NAME TARGET_EPOCH" in output


def pid_training(run_dir: Path) -> int | None:
    """The pid of the `adgm train` process training `run_dir`, or None."""
    for proc in Path("/proc").iterdir():
        try:
            words = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"train" in words and str(run_dir).encode() in words:
            return int(proc.name)
    return None


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the run's process in /proc")
def test_a_ctrl_c_to_one_run_pauses_it_and_the_next_line_starts(tmp_path):
    train, runs = tiny_training(tmp_path)
    queue = queue_file(tmp_path, [f"a 40 {train}", f"b 1 {train} --model m2"])
    command = [sys.executable, str(SCRIPT), str(queue), "--runs-dir", str(runs), "--poll", "0.1"]
    process = subprocess.Popen(
        [*command, "--parallel", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 120
    while not ((runs / "a" / "metrics.jsonl").exists() and pid_training(runs / "a")):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    os.kill(pid_training(runs / "a"), signal.SIGINT)
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 0, output  # a pause is not a failure
    assert output.count("a: from epoch") == 1, output  # not started again in this call
    assert "a: interrupted at epoch" in output and "exited with" not in output
    assert 1 <= len(epochs_of(runs / "a")) < 40
    assert epochs_of(runs / "b") == [1]


def test_a_copy_destination_that_cannot_be_written_is_said_once_and_the_run_goes_on(tmp_path):
    train, runs = tiny_training(tmp_path)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder")
    queue = queue_file(tmp_path, [f"c 1 {train}"])
    output = finish(queue, runs, "--copy-to", str(blocked))
    assert output.count("c: cannot copy its files to") == 1, output
    assert epochs_of(runs / "c") == [1]


def test_a_lost_runs_folder_retrains_from_the_copies_and_checks_them_row_by_row(tmp_path):
    """The machine replaced: the copies say which lines are done; a run short of its target
    trains again from epoch 0, its copy kept until the run passes it, then compared with it."""
    train, runs = tiny_training(tmp_path)
    copies = tmp_path / "copies"
    lines = [f"same 1 {train}", f"tampered 1 {train} --seed 3"]
    finish(queue_file(tmp_path, lines), runs, "--copy-to", str(copies))
    record = copies / "tampered" / "metrics.jsonl"
    row = json.loads(record.read_text())
    record.write_text(json.dumps({**row, "J": row["J"] + 1.0}) + "\n")

    lines += [f"same 2 {train}", f"tampered 2 {train} --seed 3"]
    output = finish(queue_file(tmp_path, lines), tmp_path / "new-runs", "--copy-to", str(copies))
    for name in ("same", "tampered"):  # their first lines: done by their copies
        assert f"{name}: {copies / name} records epoch 1; not trained again" in output
    assert "same: no run folder" in output and "training again from epoch 0" in output
    assert "same: passed its record (epoch 1) and agrees exactly" in output, output
    assert f"tampered: passed its record (epoch 1) and differs at epoch 1: J {row['J']}" in output
    kept = copies / "tampered" / "replaced-record"
    assert f"the record is kept in {kept}" in output
    assert json.loads((kept / "metrics.jsonl").read_text())["J"] == row["J"] + 1.0
    assert {f.name for f in kept.iterdir()} >= {"config.json", "command.txt", "metrics.jsonl"}
    assert not (copies / "same" / "replaced-record").exists()
    for name in ("same", "tampered"):
        assert epochs_of(tmp_path / "new-runs" / name) == [1, 2]
        assert epochs_of(copies / name) == [1, 2]


def test_a_copy_reaching_further_than_its_run_is_kept(tmp_path, capsys):
    """A copy is never shortened: it waits while its run is behind it."""
    copies, runs = tmp_path / "copies", tmp_path / "runs"
    (runs / "r").mkdir(parents=True)
    (runs / "r" / "metrics.jsonl").write_text('{"epoch": 1, "J": 2.0}\n')
    (copies / "r").mkdir(parents=True)
    (copies / "r" / "metrics.jsonl").write_text('{"epoch": 1, "J": 2.0}\n{"epoch": 2, "J": 1.0}\n')
    copier = run_queue.Copier(runs, copies)
    copier.copy("r")
    copier.copy("r")  # said once
    assert epochs_of(copies / "r") == [1, 2]
    assert capsys.readouterr().out.count(f"r: at epoch 1, {copies / 'r'} records 2: kept") == 1
    (runs / "r" / "metrics.jsonl").write_text('{"epoch": 1, "J": 2.0}\n{"epoch": 2, "J": 1.5}\n')
    copier.copy("r")  # level: copied; held before, so compared
    assert (copies / "r" / "metrics.jsonl").read_text().endswith('"J": 1.5}\n')
    said = "r: passed its record (epoch 2) and differs at epoch 2: J 1.5 against 1.0"
    assert said in capsys.readouterr().out
    kept = copies / "r" / "replaced-record" / "metrics.jsonl"
    assert kept.read_text() == '{"epoch": 1, "J": 2.0}\n{"epoch": 2, "J": 1.0}\n'
    # A second replacement keeps the first one's folder and adds another, even after a
    # half-made folder was left behind.
    (copies / "r" / "replaced-record-2.tmp").mkdir()
    copier.held.add("r")
    (runs / "r" / "metrics.jsonl").write_text('{"epoch": 1, "J": 2.0}\n{"epoch": 2, "J": 1.25}\n')
    copier.copy("r")
    assert kept.read_text().endswith('"J": 1.0}\n')
    again = copies / "r" / "replaced-record-2" / "metrics.jsonl"
    assert again.read_text().endswith('"J": 1.5}\n')
    assert not (copies / "r" / "replaced-record-2.tmp").exists()
    assert f"the record is kept in {again.parent}" in capsys.readouterr().out
    assert (
        run_queue.first_difference(
            [{"epoch": 1, "J": 2.0, "seconds": 3.0}], [{"epoch": 1, "J": 2.0, "seconds": 9.0}]
        )
        is None
    )

    (copies / "broken").mkdir()  # a copy that does not read counts as none, and is replaced
    (copies / "broken" / "metrics.jsonl").write_text("not json\n")
    (runs / "broken").mkdir()
    (runs / "broken" / "metrics.jsonl").write_text('{"epoch": 1, "J": 2.0}\n')
    assert copier.recorded_epoch("broken") == 0
    copier.copy("broken")
    assert epochs_of(copies / "broken") == [1]


@pytest.mark.parametrize(
    ("arguments", "on_the_cpu"),
    [
        ("--model sdgm --precision bf16", True),  # adgm train's default device is the CPU
        ("--precision=bf16 --device=cpu", True),
        ("--prec bf16 --device cpu --seed 1", True),  # argparse's abbreviation
        ("--precision bf16 --device cuda", False),
        ("--precision bf16 --device auto", "without CUDA"),
        ("--precision fp32", False),
        ("--model adgm", False),
        ("--precision bf17", False),  # refused by the CLI: it fails when it runs
    ],
)
def test_a_line_trains_bf16_on_the_cpu_by_its_precision_and_device(arguments, on_the_cpu):
    run = run_queue.QueuedRun("r", 1, tuple(arguments.split()))
    if on_the_cpu == "without CUDA":
        on_the_cpu = not torch_has_cuda()
    assert run_queue.trains_bf16_on_the_cpu(run) == on_the_cpu


def torch_has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def test_bf16_lines_are_held_on_a_cpu_without_bf16_kernels_and_the_rest_train(
    tmp_path, monkeypatch, capsys
):
    import adgm.cpu

    train, runs = tiny_training(tmp_path)
    lines = [f"slow 1 {train} --precision bf16 --device cpu", f"fast 1 {train} --device cpu"]
    queue = queue_file(tmp_path, lines + [f"slow 2 {train} --precision bf16 --device cpu"])
    monkeypatch.setattr(adgm.cpu, "has_bf16_matrix_kernels", lambda: False)
    runs.mkdir()
    assert run_queue.run_queue(queue, runs, 2, 0.2, hold_slow_bf16=True) == 0
    said = capsys.readouterr().out
    assert epochs_of(runs / "fast") == [1]
    assert not (runs / "slow").exists()
    assert said.count("slow: held: it trains in bf16 on this CPU, which has no bf16 kernels") == 1
    # Where the CPU has the kernels, or when asked to, the same line trains.
    monkeypatch.setattr(adgm.cpu, "has_bf16_matrix_kernels", lambda: True)
    assert run_queue.run_queue(queue, runs, 2, 0.2, hold_slow_bf16=True) == 0
    assert epochs_of(runs / "slow") == [1, 2]


def test_a_bf16_line_its_copy_already_reaches_is_done_not_held(tmp_path, monkeypatch, capsys):
    """On a CPU without bf16 kernels a finished bf16 line says it is done; its later line,
    which would train, is the one held."""
    import adgm.cpu

    train, runs = tiny_training(tmp_path)
    copies = tmp_path / "copies"
    line = f"{train} --precision bf16 --device cpu"
    queue = queue_file(tmp_path, [f"slow 1 {line}"])
    runs.mkdir()
    assert run_queue.run_queue(queue, runs, 1, 0.2, copy_to=copies) == 0
    assert epochs_of(copies / "slow") == [1]

    monkeypatch.setattr(adgm.cpu, "has_bf16_matrix_kernels", lambda: False)
    capsys.readouterr()
    queue = queue_file(tmp_path, [f"slow 1 {line}", f"slow 2 {line}"])
    new_runs = tmp_path / "new-runs"
    new_runs.mkdir()
    assert run_queue.run_queue(queue, new_runs, 1, 0.2, copy_to=copies, hold_slow_bf16=True) == 0
    said = capsys.readouterr().out
    assert f"slow: {copies / 'slow'} records epoch 1; not trained again" in said
    assert said.count("slow: held") == 1
    assert said.index("not trained again") < said.index("slow: held")
    assert not (new_runs / "slow").exists() and epochs_of(copies / "slow") == [1]


@pytest.mark.parametrize(
    ("fp32_line", "other_line", "twin"),
    [
        (
            "a 300 adgm train --model sdgm --seed 1",
            "b 300 adgm train --model sdgm --seed 1 --precision bf16",
            True,
        ),
        ("a 300 adgm train --model sdgm", "b 400 adgm train --prec bf16 --model sdgm", True),
        ("a 300 adgm train --model sdgm", "b 200 adgm train --model sdgm --precision bf16", False),
        (
            "a 300 adgm train --model sdgm --seed 1",
            "b 300 adgm train --model sdgm --precision bf16",
            False,
        ),
        ("a 300 adgm train --model sdgm", "b 300 adgm train --model m2 --precision bf16", False),
        ("a 300 adgm train --model sdgm", "b 300 adgm train --model sdgm", False),  # no bf16
        (
            "a 300 adgm train --model sdgm",
            "b 300 adgm train --model sdgm --precision bf16 --device cuda",
            False,
        ),
        ("a 300 adgm train --model sdgm --precision bf16", "b 300 adgm train --model sdgm", False),
    ],
)
def test_an_fp32_lines_bf16_twin_has_its_configuration_but_the_precision(
    tmp_path, fp32_line, other_line, twin
):
    """Seeds, model and device match, the target is reached; the precision alone differs."""
    queue = queue_file(tmp_path, [fp32_line, other_line])
    run, other = run_queue.read_queue(queue)
    assert run_queue.bf16_twin(run, [run, other]) == (other if twin else None)


def test_an_fp32_line_is_left_to_its_bf16_twin_where_the_twin_trains(tmp_path, monkeypatch, capsys):
    """With bf16 kernels the twin trains and the fp32 line is left (its later line too); without
    them the twin is held and the fp32 line trains; once the twin's record reaches the target,
    the fp32 line is left on any CPU."""
    import adgm.cpu

    train, runs = tiny_training(tmp_path)
    copies = tmp_path / "copies"
    fp32, bf16 = f"{train} --device cpu", f"{train} --device cpu --precision bf16"
    queue = queue_file(tmp_path, [f"full 1 {fp32}", f"half 2 {bf16}", f"full 2 {fp32}"])
    runs.mkdir()
    monkeypatch.setattr(adgm.cpu, "has_bf16_matrix_kernels", lambda: True)
    assert run_queue.run_queue(queue, runs, 2, 0.2, copy_to=copies, hold_slow_bf16=True) == 0
    said = capsys.readouterr().out
    assert epochs_of(runs / "half") == [1, 2] and not (runs / "full").exists()
    assert said.count("full: left to half, the same run in bf16") == 1

    monkeypatch.setattr(adgm.cpu, "has_bf16_matrix_kernels", lambda: False)
    other_runs = tmp_path / "other-runs"
    other_runs.mkdir()
    assert run_queue.run_queue(queue, other_runs, 2, 0.2, hold_slow_bf16=True) == 0
    said = capsys.readouterr().out
    assert epochs_of(other_runs / "full") == [1, 2] and not (other_runs / "half").exists()
    assert "half: held" in said and "left to" not in said

    new_runs = tmp_path / "new-runs"  # a machine without bf16 kernels, the twin's record kept
    new_runs.mkdir()
    assert run_queue.run_queue(queue, new_runs, 2, 0.2, copy_to=copies, hold_slow_bf16=True) == 0
    said = capsys.readouterr().out
    assert not (new_runs / "full").exists() and not (new_runs / "half").exists()
    assert "half: " in said and "records epoch 2; not trained again" in said
    assert said.count("full: left to half") == 1


def test_the_reproductions_queue_reads_and_adgm_train_takes_each_of_its_lines():
    """docs/runs/queue.txt: a line the CLI refuses would fail only when the queue reaches it,
    hours later."""
    lines = run_queue.read_queue(ROOT / "docs" / "runs" / "queue.txt")
    assert len(lines) > 10
    refused = [run.name for run in lines if run_queue.parsed_training_config(run.arguments) is None]
    assert refused == []
