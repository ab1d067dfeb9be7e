"""benchmarks/own_data.py: its --set reaches the estimators and names their records."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from adgm import ADGMClassifier
from tests.test_run_diagnostics import benchmark

own_data = benchmark("own_data")


def test_settings_read_numbers_tuples_and_words_and_name_the_records():
    words = ["max_steps=6000", "hidden=500,500", "lr=3e-4", "inputs=binary"]
    settings = own_data.parse_settings(words)
    assert settings == {"max_steps": 6000, "hidden": (500, 500), "lr": 3e-4, "inputs": "binary"}
    assert own_data.label("sdgm", "bf16", settings) == (
        "sdgm bf16 max_steps=6000 hidden=500,500 lr=0.0003 inputs=binary"
    )
    assert own_data.label("label-spreading", "bf16", settings) == "label-spreading"
    assert own_data.label("adgm", "fp32", {}) == "adgm"


def test_a_fit_with_settings_equals_the_estimator_fitted_by_hand(tmp_path, monkeypatch):
    out = tmp_path / "fits.jsonl"
    argv = ["own_data.py", "--datasets", "digits", "--labels-per-class", "5", "--draws", "1"]
    argv += ["--methods", "adgm", "--set", "max_steps=30", "eval_samples=3", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    own_data.main()
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["method"] == "adgm max_steps=30 eval_samples=3"
    x, y, x_test, y_test = own_data.load("digits", 0, 0)
    by_hand = ADGMClassifier(random_state=0, max_steps=30, eval_samples=3)
    by_hand.fit(x, own_data.hide_labels(y, 5, 0))
    # Equal to the bit: a fit that ignored --set would have trained 3,000 steps, not 30.
    assert record["accuracy"] == by_hand.score(x_test, y_test)


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["--set", "max_steps"], "--set takes NAME=VALUE, not 'max_steps'"),
        (["--set", "epoch=3"], "--set: the estimators have no parameter ['epoch']"),
    ],
)
def test_bad_settings_are_one_line(words, message):
    script = own_data.__file__
    result = subprocess.run(
        [sys.executable, script, "--datasets", "wine", *words], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"own_data.py: error: {message}"
