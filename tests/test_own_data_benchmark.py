"""benchmarks/own_data.py: its --set reaches the estimators and names their records."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from adgm import ADGMClassifier
from tests.scripts import load_script

own_data = load_script("benchmarks", "own_data")


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


def test_svc_reads_the_labelled_rows_alone():
    """Moving every unlabelled row changes nothing; the fit is SVC on the labelled rows."""
    from sklearn.svm import SVC

    x, y, x_test, _ = own_data.load("digits", 0, 0)
    partial = own_data.hide_labels(y, 5, 0)
    fitted = own_data.method("svc", False, 0)(x, partial)
    moved = x.copy()
    moved[partial == -1] = 1.0 - moved[partial == -1]
    refitted = own_data.method("svc", False, 0)(moved, partial)
    labelled = partial != -1
    by_hand = SVC().fit(x[labelled], partial[labelled])
    assert (fitted.predict(x_test) == by_hand.predict(x_test)).all()
    assert (refitted.predict(x_test) == by_hand.predict(x_test)).all()


def test_self_training_svc_labels_unlabelled_rows_and_mostly_rightly():
    """It takes confident unlabelled rows as labelled ones; on digits most of the labels it
    gives them are the true ones (against 10% by chance). (With 5 labels a class no row's
    calibrated probability reaches the 0.75 threshold and it takes none.)"""
    x, y, _, _ = own_data.load("digits", 0, 0)
    partial = own_data.hide_labels(y, 10, 0)
    fitted = own_data.method("self-training-svc", False, 0)(x, partial)
    taken = fitted.labeled_iter_ > 0
    assert taken.sum() >= 50
    assert (fitted.transduction_[taken] == y[taken]).mean() > 0.8
    assert own_data.label("self-training-svc", "bf16", {"max_steps": 3}) == "self-training-svc"


def test_the_table_puts_baselines_before_estimators_whatever_the_files_order():
    def fit(dataset, method, accuracy):
        return {
            "dataset": dataset,
            "labels_per_class": 5,
            "draw": 0,
            "method": method,
            "accuracy": accuracy,
            "fit_seconds": 2.0,
            "n_train": 100,
            "n_test": 10,
        }

    records = [fit("digits", "adgm max_steps=6000", 0.9), fit("digits", "logreg", 0.8)]
    records += [fit("digits", "sdgm", 0.85), fit("digits", "svc", 0.7), fit("wine", "svc", 0.6)]
    header, _, digits, wine = own_data.table(records).splitlines()
    assert header == "| data set | labels | logreg | svc | adgm max_steps=6000 | sdgm |"
    assert (
        digits == "| digits (100 train) | 50 | 80.0 (1 draw) (2 s) | 70.0 (1 draw) (2 s) | "
        "90.0 (1 draw) (2 s) | 85.0 (1 draw) (2 s) |"
    )
    assert wine == "| wine (100 train) | 15 |  | 60.0 (1 draw) (2 s) |  |  |"


def test_a_missing_data_set_is_one_line_before_any_fit(tmp_path):
    """digits comes first in the list, but nothing is fitted or recorded: every data set is
    found before the first fit, so a missing one costs seconds, not hours."""
    out = tmp_path / "fits.jsonl"
    empty = tmp_path / "no-fashion"
    empty.mkdir()
    env = {**os.environ, "ADGM_FASHION_DATA_DIR": str(empty), "HOME": str(tmp_path)}
    command = [sys.executable, own_data.__file__, "--datasets", "digits", "fashion-mnist"]
    command += ["--methods", "logreg", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("own_data.py: error: Fashion-MNIST file ")
    assert "missing" in line and "Traceback" not in result.stderr
    assert result.stdout == "" and not out.exists()


def test_an_out_file_that_cannot_be_written_is_one_line_before_any_fit(tmp_path):
    command = [sys.executable, own_data.__file__, "--datasets", "wine", "--methods", "logreg"]
    out = tmp_path / "no-such-folder" / "fits.jsonl"
    result = subprocess.run(command + ["--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"own_data.py: error: --out {out}: no folder {tmp_path / 'no-such-folder'}"
    )
    assert result.stdout == ""  # no fit ran
    result = subprocess.run(command + ["--out", str(tmp_path)], capture_output=True, text=True)
    assert result.stderr.strip() == f"own_data.py: error: --out {tmp_path}: is a folder"
