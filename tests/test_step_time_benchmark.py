"""benchmarks/step_time.py: its summary names the case it summarises; unknown models are refused."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.scripts import load_script

step_time = load_script("benchmarks", "step_time")


def test_the_summary_names_the_model_it_times(monkeypatch, capsys):
    argv = ["step_time.py", "--models", "m2", "--dtypes", "fp32", "--json"]
    monkeypatch.setattr(sys, "argv", argv + ["--warmup", "0", "--repeats", "1"])
    step_time.main()
    *rows, summary = capsys.readouterr().out.strip().splitlines()
    (row,) = [json.loads(line) for line in rows]
    assert (row["model"], row["mc_samples"], row["dtype"]) == ("m2", 1, "fp32")
    # Only M2 was timed, so the summary is M2's, not the ADGM's it defaults to.
    assert summary.startswith("summary: m2 1 MC fp32 on cpu: ")
    assert f"{row['ms_per_step']:.1f} ms/step" in summary


def test_an_unknown_model_is_a_usage_error_before_any_timing():
    command = [sys.executable, step_time.__file__, "--models", "adgm", "vae"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 2
    assert "invalid choice: 'vae'" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
