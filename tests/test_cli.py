"""The command line, end to end: a tiny run on real MNIST that learns, resume, and bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from adgm.cli import main
from adgm.plots import run_label

SMALL = [
    "--subset",
    "6000",
    "--test-subset",
    "1000",
    "--hidden",
    "64",
    "64",
    "--z-dim",
    "16",
    "--a-dim",
    "16",
    "--eval-samples",
    "10",
]


def adgm(*args, env_overrides=None, cwd=None):
    env = {**os.environ, **(env_overrides or {})}
    return subprocess.run(
        [sys.executable, "-m", "adgm.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=cwd,
    )


def test_tiny_mnist_run_learns_and_resumes(mnist_dir, tmp_path):
    out = tmp_path / "run"
    first = adgm("train", *SMALL, "--epochs", "2", "--out", str(out))
    assert first.returncode == 0, first.stderr
    second = adgm("train", "--resume", "--epochs", "4", "--out", str(out))
    assert second.returncode == 0, second.stderr
    assert "resuming" in second.stdout and "after epoch 2" in second.stdout
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4]
    # 240 steps (60 a epoch) with 100 labels: far better than chance (90%).
    assert rows[-1]["test_error"] < 0.6, rows
    evaluated = adgm("evaluate", str(out), "--samples", "5")
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert result["epoch"] == 4 and 0 <= result["test_error"] < 0.6
    assert result["test_inputs"] == "binary"
    grey = adgm("evaluate", str(out), "--samples", "5", "--test-inputs", "grey")
    assert grey.returncode == 0, grey.stderr
    grey_result = json.loads(grey.stdout)
    assert grey_result["test_inputs"] == "grey" and 0 <= grey_result["test_error"] < 0.6
    earlier = adgm("evaluate", str(out), "--samples", "5", "--epoch", "3")
    assert earlier.returncode == 0, earlier.stderr
    assert json.loads(earlier.stdout)["epoch"] == 3
    gone = adgm("evaluate", str(out), "--epoch", "1")  # three checkpoints are kept: 2, 3, 4
    assert one_line_error(gone).endswith("(epochs kept: 2, 3, 4)")
    changed = adgm("train", "--resume", "--out", str(out), "--model", "m2")
    assert one_line_error(changed).endswith("may be given (got --model)")


def one_line_error(result) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("adgm: error: "), result.stderr
    return lines[0]


def test_missing_data_folder_is_one_line(tmp_path):
    result = adgm(
        "train",
        "--out",
        str(tmp_path / "r"),
        env_overrides={"ADGM_DATA_DIR": str(tmp_path / "missing")},
    )
    assert "does not exist" in one_line_error(result)


def test_wrong_md5_is_one_line(mnist_dir, tmp_path):
    data = tmp_path / "mnist"
    shutil.copytree(mnist_dir, data)
    with open(data / "train-labels-idx1-ubyte.gz", "r+b") as handle:
        handle.seek(100)
        handle.write(b"\xff\xff")
    result = adgm("train", "--out", str(tmp_path / "r"), "--data-dir", str(data))
    assert "md5" in one_line_error(result)


def test_a_prior_on_a_network_the_model_lacks_is_one_line_and_leaves_no_run(
    mnist_dir, tmp_path, capsys
):
    out = tmp_path / "r"
    args = ["train", *SMALL, "--model", "m2", "--weight-prior", "--weight-prior-on", "q-y,p-a"]
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "adgm: error: --weight-prior-on p-a: this model has no trained p-a network "
        "(it has q-y, q-z, p-x)"
    )
    assert not out.exists()


@pytest.mark.filterwarnings("default::adgm.errors.AdgmWarning")
def test_bf16_on_a_cpu_without_bf16_kernels_is_one_warning_line_and_the_run_trains(
    mnist_dir, tmp_path, capsys, monkeypatch
):
    from adgm import cpu

    monkeypatch.setattr(cpu, "has_bf16_matrix_kernels", lambda: False)
    tiny = ["--subset", "300", "--test-subset", "100", "--hidden", "32", "32"]
    tiny += ["--eval-samples", "2"]
    out = tmp_path / "r"
    assert main(["train", *tiny, "--precision", "bf16", "--epochs", "1", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if "warning" in line.lower()]
    assert warned == [
        "adgm: warning: this CPU has no fast bf16 matrix kernels (they need AVX-512 or AMX): a "
        "bf16 training step takes several times an fp32 one here (13 times on an AVX2-only AMD "
        "EPYC); precision fp32 is faster"
    ]
    assert (out / "metrics.jsonl").exists()


def test_labels_not_divisible_by_classes_is_one_line(mnist_dir, tmp_path, capsys):
    assert main(["train", "--n-labels", "15", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "adgm: error: n_labels=15 is not a multiple of the number of classes (10)"


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--epochs", "0"], "epochs must be positive"),
        (["train", "--device", "cuda:0"], "CUDA"),
        (["train", "--cuda-graphs"], "--cuda-graphs needs a CUDA device (--device cuda)"),
        (["train", "--weight-prior-on", "q-y"], "--weight-prior-on needs --weight-prior"),
        (
            ["train", "--model", "m2", "--no-classifier-reads-auxiliary"],
            "a classifier blind to a needs a model with a stochastic a (adgm, adgm-gen, sdgm)",
        ),
        (["evaluate", "/nonexistent/run"], "not a run folder"),
        (["train", "--resume"], "runs/adgm is not a run folder (no config.json)"),
        (["train", "--resume", "--model", "sdgm"], "runs/sdgm is not a run folder"),
        (
            ["train", "--data", "own.npz", "--subset", "100", "--n-labels", "20"],
            "--subset, --n-labels split mnist and fashion-mnist; own data (own.npz)",
        ),
        (["evaluate", "/nonexistent/run", "--points", "0"], "not a run folder"),
        (
            ["train", "--data", "own.npz", "--preset", "authors-2015"],
            "--preset authors-2015 sets --unlabelled-order, --test-inputs, which apply to mnist",
        ),
    ],
)
def test_bad_settings_are_one_line(args, message, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("ADGM_DATA_DIR", str(tmp_path))  # never reached, or reported clearly
    monkeypatch.chdir(tmp_path)  # where the default run folders runs/MODEL would be
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("adgm: error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("model", ["adgm-gen", "sdgm"])
def test_tiny_mnist_run_of_a_generated_auxiliary_learns_and_keeps_a_active(
    model, mnist_dir, tmp_path
):
    """The models with p(a|...) learn, their a carries information, and log p(x) is reported."""
    out = tmp_path / model
    run = adgm("train", *SMALL, "--model", model, "--epochs", "4", "--out", str(out))
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["test_error"] < 0.6 and rows[-1]["test_error"] < rows[0]["test_error"], rows
    units = adgm("plot", "active-units", str(out))
    assert units.returncode == 0, units.stderr
    report = json.loads((out / "active-units.json").read_text())
    assert report["active"]["a"] >= 4, report["active"]  # of 16 units of a
    evaluated = adgm(
        "evaluate", str(out), "--log-likelihood", "--iw-samples", "20", "--points", "50"
    )
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert result["points"] == 50 and -400 < result["test_log_likelihood"] < 0, result
    grey = adgm("evaluate", str(out), "--log-likelihood", "--test-inputs", "grey")
    assert grey.returncode == 2 and grey.stdout == "", grey
    assert grey.stderr.count("\n") == 1 and "--test-inputs binary" in grey.stderr, grey.stderr


def test_help_names_every_subcommand_without_loading_torch():
    script = (
        "import sys\n"
        "from adgm.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('torch loaded' if 'torch' in sys.modules else 'torch not loaded')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    for command in ("train", "evaluate", "sample", "plot", "summary", "reproduce"):
        assert command in result.stdout
    assert "``" not in result.stdout, result.stdout  # plain text, not reStructuredText
    assert result.stdout.strip().endswith("torch not loaded")


def test_every_public_name_resolves():
    import adgm

    assert sorted(adgm.__all__) == sorted(adgm._EXPORTS)
    for name in adgm.__all__:
        assert getattr(adgm, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        adgm.nothing  # noqa: B018


def test_resume_without_out_continues_the_default_run_folder(mnist_dir, tmp_path):
    short = [*SMALL, "--model", "m2", "--max-steps-per-epoch", "5"]
    first = adgm("train", *short, "--epochs", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = adgm("train", "--resume", "--model", "m2", "--epochs", "2", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "resuming runs/m2 after epoch 1" in again.stdout
    rows = (tmp_path / "runs" / "m2" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(row)["epoch"] for row in rows] == [1, 2]


def test_a_run_trained_with_cuda_graphs_resumes_on_a_cpu_without_them(mnist_dir, tmp_path, capsys):
    """As if its first epoch ran on a GPU with --cuda-graphs: config.json says so."""
    out = tmp_path / "run"
    short = [*SMALL, "--model", "m2", "--max-steps-per-epoch", "5", "--out", str(out)]
    assert main(["train", *short, "--epochs", "1"]) == 0
    stored = json.loads((out / "config.json").read_text())
    stored["train"].update(device="cuda", cuda_graphs=True)
    (out / "config.json").write_text(json.dumps(stored))
    capsys.readouterr()
    asked = ["train", "--resume", "--out", str(out), "--device", "cpu", "--cuda-graphs"]
    assert main(asked) == 2
    assert capsys.readouterr().err.strip() == (
        "adgm: error: --cuda-graphs needs a CUDA device (--device cuda); this run trains on cpu"
    )
    again = ["train", "--resume", "--out", str(out), "--epochs", "2", "--device", "cpu"]
    assert main(again) == 0
    assert "resuming on cpu: training on without CUDA graphs" in capsys.readouterr().out
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(row)["epoch"] for row in rows] == [1, 2]


def test_the_authors_preset_changes_exactly_their_settings_and_flags_override_it():
    from adgm.cli import build_parser
    from adgm.cli_flags import config_from_args
    from adgm.config import RunConfig

    def config(*flags):
        return config_from_args(build_parser().parse_args(["train", *flags]))

    paper = RunConfig().to_dict()
    assert config().to_dict() == paper and config("--preset", "paper").to_dict() == paper
    authors = config("--preset", "authors-2015").to_dict()
    changed = {
        (section, key): value
        for section, fields in authors.items()
        for key, value in fields.items()
        if paper[section][key] != value
    }
    assert changed == {
        ("data", "unlabelled_order"): "class-sorted",
        ("data", "test_inputs"): "grey",
        ("train", "alpha"): 1200.0,
        ("train", "classification_term"): "mean-log",
        ("train", "label_weights"): "sample-mean",
        ("train", "weight_prior"): True,
        ("train", "train_auxiliary"): False,
    }
    later = config("--preset", "authors-2016", "--model", "sdgm").to_dict()
    assert {
        (section, key): value
        for section, fields in later.items()
        for key, value in fields.items()
        if paper[section][key] != value
    } == {
        ("data", "unlabelled_order"): "fixed",
        ("data", "test_inputs"): "grey",
        ("model", "name"): "sdgm",
        ("model", "gaussian_init"): "small",
        ("train", "alpha"): 60.0,
        ("train", "classification_term"): "mean-log",
        ("train", "label_weights"): "sample-mean",
        ("train", "analytic_kl"): False,
        ("train", "weight_prior"): True,
    }
    mixed = config("--preset", "authors-2015", "--alpha", "600", "--train-auxiliary")
    assert mixed.train.alpha == 600.0 and mixed.train.train_auxiliary
    assert mixed.data.unlabelled_order == "class-sorted" and mixed.train.weight_prior
    one_network = config("--preset", "authors-2015", "--weight-prior-on", "q-y")
    assert one_network.train.weight_prior and one_network.train.weight_prior_on == "q-y"
    assert "weight prior on q-y" in run_label(one_network)


def test_a_run_from_the_authors_preset_trains_and_resume_refuses_a_preset(
    mnist_dir, tmp_path, capsys
):
    import torch

    from adgm.checkpoint import load_latest_checkpoint

    out = tmp_path / "authors"
    flags = ["--preset", "authors-2015", *SMALL, "--max-steps-per-epoch", "5", "--out", str(out)]
    assert main(["train", *flags, "--epochs", "1"]) == 0
    stored = json.loads((out / "config.json").read_text())
    assert stored["data"]["unlabelled_order"] == "class-sorted"
    assert stored["train"]["train_auxiliary"] is False and stored["model"]["hidden"] == [64, 64]
    first = load_latest_checkpoint(out)["model"]
    assert main(["train", "--resume", "--out", str(out), "--epochs", "2"]) == 0
    second = load_latest_checkpoint(out)["model"]
    moved = {name for name in first if not torch.equal(first[name], second[name])}
    assert any(name.startswith("classifier") for name in moved), sorted(moved)
    assert not any(name.startswith(("a_encoder", "a_head")) for name in moved), sorted(moved)
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--preset", "authors-2015"]) == 2
    assert capsys.readouterr().err.strip() == (
        "adgm: error: --resume keeps the run's settings; --preset cannot be given with it"
    )


def test_a_reader_that_stops_early_ends_the_output_quietly(tmp_path):
    """`adgm summary ... | head`: the reader closes the pipe before adgm writes; adgm ends with
    the shell's SIGPIPE status and no traceback."""
    from adgm.config import RunConfig

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(RunConfig().to_dict()))
    rows = [{"epoch": e, "seconds": 1.0, "test_error": 0.5 / e} for e in range(1, 301)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    process = subprocess.Popen(
        [sys.executable, "-m", "adgm.cli", "summary", str(run), "--at", *map(str, range(1, 301))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdout.close()  # long before the command has imported what it needs to write
    with process.stderr:
        stderr = process.stderr.read()
    assert process.wait(timeout=120) == 141, stderr
    assert stderr == ""


def test_summary_leaves_out_a_metrics_line_cut_short_and_names_a_damaged_one(tmp_path, capsys):
    """A crash while appending leaves half a last line (the run's resume drops it): readers
    leave it out. A line that does not parse before the last is damage: one line, status 2."""
    from adgm.config import RunConfig

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(RunConfig().to_dict()))
    rows = [{"epoch": e, "seconds": 1.0, "test_error": 0.5 / e} for e in (5, 10)]
    whole = "".join(json.dumps(r) + "\n" for r in rows)
    (run / "metrics.jsonl").write_text(whole + '{"epoch": 15, "seconds": 1.')
    assert main(["summary", str(run)]) == 0
    shown = capsys.readouterr().out
    assert "5.00" in shown and "10" in shown and "15" not in shown.split("Machines")[0]

    (run / "metrics.jsonl").write_text(whole.replace("}\n", "\n", 1) + whole)
    assert main(["summary", str(run)]) == 2
    err = capsys.readouterr().err
    damaged = f"{run / 'metrics.jsonl'}, line 1, is not a JSON record: the file is damaged"
    assert err == f"adgm: error: {damaged}\n"


def test_a_run_reports_the_error_on_its_last_training_images(mnist_dir, tmp_path, capsys):
    """--eval-train-points N: the error on the last N training images (still trained on), as
    the authors' log reports it for MNIST's validation split; M2 predicts without drawing a, so
    the figure can be recomputed exactly from the checkpoint."""
    import numpy as np
    import torch

    from adgm.data import binarise_fixed, load_mnist
    from adgm.train import load_trained_model

    out = tmp_path / "m2"
    flags = [*SMALL, "--model", "m2", "--epochs", "1", "--max-steps-per-epoch", "3"]
    assert main(["train", *flags, "--eval-train-points", "300", "--out", str(out)]) == 0
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert "training-image error" in capsys.readouterr().out

    _, model, _ = load_trained_model(out)
    train, _ = load_mnist(str(mnist_dir), download=False)
    images, labels = train.images[5700:6000], train.labels[5700:6000]  # --subset 6000
    with torch.no_grad():
        probs = model.predict_proba(torch.from_numpy(binarise_fixed(images)), 1)
    expected = float(np.mean(probs.argmax(-1).numpy() != labels))
    assert row["train_error"] == pytest.approx(expected, abs=1e-6)  # one image is 3e-3
    assert 0.0 < row["train_error"] < 1.0
