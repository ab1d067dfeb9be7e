"""Redraw the tables of docs/results/*.md and README.md (and, with --figures, the figures) from
the run records in docs/runs.

    python scripts/regenerate_docs.py [--check] [--figures]

Each generated table sits in the document between two marker lines,

    <!-- generated: NAME -->
    | table | ... |
    (the command that drew it)
    <!-- end generated: NAME -->

and ``TABLES`` below says, document by document, which ``adgm`` command draws NAME. The
script runs every command
(``python -m adgm ...``, in the repository root), keeps the table rows of its output and writes
them, followed by the command itself, between the markers, so the command shown in the document
is always the one that drew the table. Text outside the markers is never changed, and the
documents are replaced each in one step, after every command has run (a failure leaves
them as they were). ``--check`` changes nothing
and exits with status 1 if a table differs from what its command draws now (runs still
training change their "last" columns at every evaluation). ``--figures`` also redraws the
figures of ``FIGURES`` (PNG files; not compared by --check).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def three_seeds(name: str) -> list[str]:
    """A setting's runs of seeds 0, 1 and 2 (training seed and labelled draw): NAME,
    NAME-seed1, NAME-seed2."""
    return [name, f"{name}-seed1", f"{name}-seed2"]


M2_BF16 = three_seeds("m2-1mc-bf16")
ADGM_BF16 = three_seeds("adgm-1mc-bf16")
ADGM_FROZEN_BF16 = three_seeds("adgm-1mc-bf16-a-frozen")
SDGM_SEEDS = three_seeds("sdgm-1mc-bf16")
SDGM_10MC_SEEDS = three_seeds("sdgm-10mc-bf16")  # the same seeds at 10 MC (GPU runs)
# The paper's ADGM at 10 MC: eq. 9's classification term (CPU), the mean of logs (CPU, GPU).
ADGM_10MC = ["adgm-10mc-bf16-cpu", "adgm-10mc-bf16-mean-log-cpu", "adgm-10mc-bf16-mean-log"]
# adgm-gen's three seeds: seed 0 and 1 in bf16, seed 2 in fp32 (trained on a CPU without bf16
# kernels); tables that average them pool the precisions.
# Table 1 lists these three, not seed 0's fp32 run (to epoch 100) too, so no seed counts twice.
ADGM_GEN_SEEDS = ["adgm-gen-1mc-bf16", "adgm-gen-1mc-bf16-seed1", "adgm-gen-1mc-seed2"]
# The SDGM with its classifier blind to a, beside the SDGM and M2 of the same seeds (fp32).
CLASSIFIER_BLIND = ["m2-1mc", "sdgm-1mc", "sdgm-1mc-classifier-blind"]
# Its table also lists the SDGM of seed 0 trained again (sdgm-1mc's command, on another
# processor), whose checkpoints give the SDGM's class errors beside the blind SDGM's.
CLASSIFIER_BLIND_TABLE = ["m2-1mc", "sdgm-1mc", "sdgm-1mc-repeat2", "sdgm-1mc-classifier-blind"]
# Seeds 0, 1 and 2 of M2 and of the SDGM as references for the blind SDGM's seeds (seed 0 fp32,
# seeds 1 and 2 bf16; tables that use them pool the precisions); the blind seeds trained so far.
M2_REFERENCE_SEEDS = ["m2-1mc", "m2-1mc-bf16-seed1", "m2-1mc-bf16-seed2"]
SDGM_REFERENCE_SEEDS = ["sdgm-1mc", "sdgm-1mc-bf16-seed1", "sdgm-1mc-bf16-seed2"]
CLASSIFIER_BLIND_SEEDS = [
    "sdgm-1mc-classifier-blind",
    "sdgm-1mc-classifier-blind-seed1",
    "sdgm-1mc-classifier-blind-seed2",
]
# The blind SDGM trained again in bf16 (on a CPU with bf16 kernels) to epoch 300, against the
# bf16 SDGM and M2 of its seeds, which reach 300: the seeds trained so far.
CLASSIFIER_BLIND_BF16_SEEDS = [
    "sdgm-1mc-bf16-classifier-blind",
    "sdgm-1mc-bf16-classifier-blind-seed1",
    "sdgm-1mc-bf16-classifier-blind-seed2",
]
# The authors' paper-era configuration at 1 MC: three hidden layers without the weight prior,
# two with it (the preset), two without it.
AUTHORS_2015_1MC = [
    "adgm-authors-2015-1mc-bf16",
    "adgm-authors-2015-1mc-bf16-two-layers",
    "adgm-authors-2015-1mc-bf16-no-prior",
]
# The authors' configuration at 10 MC as their code has it (two hidden layers, weight prior), on
# the CPU: class-sorted as theirs, and shuffled every epoch.
AUTHORS_2015_10MC_CPU = [
    "adgm-authors-2015-10mc-bf16-cpu",
    "adgm-authors-2015-10mc-bf16-shuffled-cpu",
]


# Table 1's rows, in docs/results/table-1.md (epochs 100, 200, 300) and in the README (more
# epochs): M2, the SDGM, adgm-gen and the paper's ADGM over seeds, the ablations, the authors'
# configurations, the blind classifier, then the 10 MC runs.
TABLE_1_RUNS = [
    "m2-1mc",
    *M2_BF16,
    "sdgm-1mc",
    *SDGM_SEEDS,
    *ADGM_GEN_SEEDS,
    *ADGM_BF16,
    *ADGM_FROZEN_BF16,
    "adgm-det-1mc-bf16",
    "sdgm-1mc-bf16-class-sorted",
    "sdgm-1mc-bf16-fixed-order",
    *AUTHORS_2015_1MC,
    "sdgm-authors-2016-1mc-bf16",
    "sdgm-1mc-classifier-blind",
    *CLASSIFIER_BLIND_BF16_SEEDS,
    *SDGM_10MC_SEEDS,
    "m2-10mc-bf16-cpu",
    *ADGM_10MC,
    "adgm-authors-2015-10mc-bf16",
    *AUTHORS_2015_10MC_CPU,
]


def runs(*names: str) -> list[str]:
    return [f"docs/runs/{name}" for name in names]


# NAME -> the adgm command (arguments after `adgm`) that draws the table.
RESULTS_TABLES: dict[str, list[str]] = {
    "table-1": [
        "reproduce",
        "table1-from-runs",
        *runs(*TABLE_1_RUNS),
        "--at",
        *"100 200 300".split(),
    ],
    "time-to": [
        "summary",
        *runs(
            "m2-1mc",
            *M2_BF16,
            "sdgm-1mc",
            *SDGM_SEEDS,
            "sdgm-1mc-bf16-fixed-order",
            "sdgm-authors-2016-1mc-bf16",
            "adgm-gen-1mc",
            *ADGM_GEN_SEEDS,
            *ADGM_BF16,
            *ADGM_FROZEN_BF16,
            "adgm-det-1mc-bf16",
            *AUTHORS_2015_1MC,
            *ADGM_10MC,
            *SDGM_10MC_SEEDS,
        ),
        "--at",
        *"100 300".split(),
        "--time-to",
        *"15 10 7 5 4 3.5 3 2.5 2.25".split(),
    ],
    "paired-seeds": [
        "reproduce",
        "paired-seeds",
        "--baseline",
        *runs(*M2_BF16),
        "--runs",
        *runs(
            *SDGM_SEEDS,
            *ADGM_GEN_SEEDS,
            *ADGM_BF16,
            *ADGM_FROZEN_BF16,
            "adgm-det-1mc-bf16",
        ),
        "--windows",
        "5-100",
        "105-300",
        "--pool-precisions",
    ],
    "adgm-gen-seeds": [
        "reproduce",
        "table1-from-runs",
        *runs(*ADGM_GEN_SEEDS, "m2-1mc-bf16", "m2-1mc-bf16-seed1", "m2-1mc-bf16-seed2"),
        "--at",
        *"20 50 100 140 200 300".split(),
        "--pool-precisions",
    ],
    "classifier-blind": [
        "summary",
        *runs(*CLASSIFIER_BLIND_TABLE),
        "--at",
        *"5 10 20 30 40 60 80 100".split(),
    ],
    "classifier-blind-seeds": [
        "reproduce",
        "paired-seeds",
        "--baseline",
        *runs(*M2_REFERENCE_SEEDS),
        "--runs",
        *runs(*SDGM_REFERENCE_SEEDS, *CLASSIFIER_BLIND_SEEDS),
        "--windows",
        "5-50",
        "55-100",
        "5-100",
        "--pool-precisions",
    ],
    "classifier-blind-bf16": [
        "reproduce",
        "paired-seeds",
        "--baseline",
        *runs(*M2_BF16),
        "--runs",
        *runs(*SDGM_SEEDS, *CLASSIFIER_BLIND_BF16_SEEDS),
        "--windows",
        "5-100",
        "105-200",
        "205-300",
        "105-300",
    ],
    "generative-auxiliary": [
        "summary",
        *runs(
            "m2-1mc",
            "sdgm-1mc",
            *SDGM_SEEDS,
            "adgm-gen-1mc",
            *ADGM_GEN_SEEDS,
            "adgm-1mc-bf16",
        ),
        "--at",
        *"5 10 20 40 60 80 100 150 200 250 300".split(),
    ],
}

README_TABLES: dict[str, list[str]] = {
    "results": [
        "reproduce",
        "table1-from-runs",
        *runs(*TABLE_1_RUNS),
        "--at",
        *"5 20 60 100 200 300".split(),
    ],
}


def results_tables(*names: str) -> dict[str, list[str]]:
    """The tables of RESULTS_TABLES that one page of docs/results/ holds."""
    return {name: RESULTS_TABLES[name] for name in names}


# Document (relative to the repository root) -> its tables.
TABLES: dict[str, dict[str, list[str]]] = {
    "docs/results/long-runs.md": results_tables("paired-seeds"),
    "docs/results/auxiliary.md": results_tables("generative-auxiliary", "adgm-gen-seeds"),
    "docs/results/table-1.md": results_tables("table-1", "time-to"),
    "docs/results/auxiliary-use.md": results_tables(
        "classifier-blind", "classifier-blind-seeds", "classifier-blind-bf16"
    ),
    "README.md": README_TABLES,
}

# Output PNG -> the adgm command that draws it.
FIGURES: dict[str, list[str]] = {
    # Seeds of a setting only once each has reached epoch 300 (a group's mean curve ends where
    # its shortest run ends), and M2 and the ADGMs over the same seeds, so that their means
    # compare like with like.
    "docs/figures/figure-2a-cpu.png": [
        "plot",
        "curves",
        *runs(
            *M2_BF16,
            "adgm-det-1mc-bf16",
            *ADGM_BF16,
            *ADGM_FROZEN_BF16,
            "adgm-10mc-bf16-cpu",
            *SDGM_SEEDS,
        ),
        "--group-seeds",
        "--reference",
    ],
    # The authors' paper-era configuration at 10 MC on this CPU, class-sorted and shuffled (test
    # error and, dotted, the error on its last 10,000 training images) beside its GPU run and the
    # log's two columns.
    "docs/figures/authors-10mc-cpu.png": [
        "plot",
        "curves",
        *runs("adgm-authors-2015-10mc-bf16", *AUTHORS_2015_10MC_CPU),
        "--reference",
    ],
    # The authors' paper-era configuration at 1 MC against the paper's ADGM (its first run) and M2.
    "docs/figures/authors-2015-cpu.png": [
        "plot",
        "curves",
        *runs("m2-1mc", "adgm-1mc-bf16/replaced-record", "adgm-authors-2015-1mc-bf16"),
        "--reference",
    ],
    # The class-sorted data order against the shuffled default (the SDGM), and M2.
    "docs/figures/ablation-class-sorted-cpu.png": [
        "plot",
        "curves",
        *runs("m2-1mc", "sdgm-1mc-bf16", "sdgm-1mc-bf16-class-sorted"),
        "--reference",
    ],
    # 10 MC against 1 MC in seed 0: the paper's ADGM, the authors' configuration and the SDGM.
    "docs/figures/mc-samples-gpu.png": [
        "plot",
        "curves",
        *runs(
            "adgm-authors-2015-1mc-bf16",
            "adgm-authors-2015-10mc-bf16",
            "adgm-1mc-bf16",
            "adgm-10mc-bf16",
            "sdgm-1mc-bf16",
            "sdgm-10mc-bf16",
        ),
        "--reference",
    ],
    # AUTHORS_2015_1MC, each with its last 10,000 training images, and the log.
    "docs/figures/authors-2015-prior-depth-cpu.png": [
        "plot",
        "curves",
        *runs(*AUTHORS_2015_1MC),
        "--reference",
    ],
    # Which network's prior costs the configuration its sevens: the prior on every network, on
    # none, on the classifier alone (fp32, on another processor) and on q(z|y,x) and p(x|y,z)
    # alone.
    "docs/figures/authors-2015-prior-per-network-cpu.png": [
        "plot",
        "curves",
        *runs(
            "adgm-authors-2015-1mc-bf16-two-layers",
            "adgm-authors-2015-1mc-bf16-no-prior",
            "adgm-authors-2015-1mc-prior-q-y",
            "adgm-authors-2015-1mc-bf16-prior-q-z-p-x",
        ),
    ],
    # 1 MC against 10 MC: the SDGM's three seeds each way (mean and range), the paper's ADGM at
    # 10 MC past epoch 100 (the GPU's mean-log run) beside its 1 MC run and M2 (seed 0).
    "docs/figures/mc-samples-seeds.png": [
        "plot",
        "curves",
        *runs(*SDGM_SEEDS, *SDGM_10MC_SEEDS, "m2-1mc-bf16", "adgm-1mc-bf16"),
        "docs/runs/adgm-10mc-bf16-mean-log",
        "--group-seeds",
        "--reference",
    ],
    # adgm-gen's three seeds (precisions pooled) against M2's three, while they train.
    "docs/figures/adgm-gen-seeds-cpu.png": [
        "plot",
        "curves",
        *runs(*M2_BF16, *ADGM_GEN_SEEDS),
        "--group-seeds",
        "--pool-precisions",
    ],
    "docs/figures/sdgm-classifier-blind-cpu.png": [
        "plot",
        "curves",
        *runs(*CLASSIFIER_BLIND),
    ],
    # The blind SDGM's three seeds (fp32, to epoch 100) against the bf16 SDGM's and M2's, each
    # group's mean with its range shaded.
    "docs/figures/sdgm-classifier-blind-seeds-cpu.png": [
        "plot",
        "curves",
        *runs(*M2_BF16, *SDGM_SEEDS, *CLASSIFIER_BLIND_SEEDS),
        "--group-seeds",
    ],
    # The blind SDGM's three seeds trained again in bf16, to epoch 300, against the bf16 SDGM's
    # and M2's, each group's mean with its range shaded.
    "docs/figures/sdgm-classifier-blind-bf16-cpu.png": [
        "plot",
        "curves",
        *runs(*M2_BF16, *SDGM_SEEDS, *CLASSIFIER_BLIND_BF16_SEEDS),
        "--group-seeds",
    ],
    "docs/figures/curves-generative-auxiliary-cpu.png": [
        "plot",
        "curves",
        *runs("m2-1mc", "sdgm-1mc", *SDGM_SEEDS, "adgm-gen-1mc-bf16", "adgm-1mc-bf16"),
        "--group-seeds",
        "--reference",
    ],
}

BLOCK = re.compile(
    r"^<!-- generated: (?P<name>[\w-]+) -->\n(?P<body>.*?)^<!-- end generated: (?P=name) -->$",
    re.MULTILINE | re.DOTALL,
)


class DocsError(Exception):
    """A document or a command that cannot be used; the message is one line."""


def run_adgm(arguments: Sequence[str]) -> str:
    """stdout of `python -m adgm ARGUMENTS` run in the repository root; DocsError on failure."""
    done = subprocess.run(
        [sys.executable, "-m", "adgm", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])
            ),
        },
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise DocsError(f"`adgm {shlex.join(arguments)}` failed: {last}")
    return done.stdout


def block_body(arguments: Sequence[str], output: str) -> str:
    """The table rows of a command's output, then the command itself."""
    rows = [line for line in output.splitlines() if line.startswith("|")]
    if not rows:
        raise DocsError(f"`adgm {shlex.join(arguments)}` printed no table")
    return "\n".join(rows) + f"\n\n(`adgm {shlex.join(arguments)}`)\n"


def regenerate(
    text: str,
    tables: dict[str, list[str]],
    run: Callable[[Sequence[str]], str] = run_adgm,
) -> tuple[str, list[str]]:
    """`text` with every generated block redrawn, and the names of the blocks that changed.

    Every block must name a table of `tables`, and every table must have one block.
    """
    found = [match["name"] for match in BLOCK.finditer(text)]
    unknown = sorted(set(found) - set(tables))
    if unknown:
        raise DocsError(f"the document has generated blocks no command draws: {unknown}")
    missing = sorted(set(tables) - set(found))
    if missing:
        raise DocsError(f"no '<!-- generated: NAME -->' ... end block for {missing}")
    repeated = sorted({name for name in found if found.count(name) > 1})
    if repeated:
        raise DocsError(f"generated blocks that appear twice: {repeated}")
    opened = re.findall(r"^<!-- generated: ([\w-]+) -->$", text, re.MULTILINE)
    if len(opened) != len(found):
        raise DocsError("a '<!-- generated: NAME -->' line has no matching end line")
    changed: list[str] = []

    def redraw(match: re.Match[str]) -> str:
        name = match["name"]
        body = block_body(tables[name], run(tables[name]))
        if body != match["body"]:
            changed.append(name)
        return f"<!-- generated: {name} -->\n{body}<!-- end generated: {name} -->"

    return BLOCK.sub(redraw, text), changed


def write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; 1 if stale")
    parser.add_argument("--figures", action="store_true", help="redraw FIGURES as well")
    args = parser.parse_args(argv)
    try:
        redrawn: dict[Path, tuple[str, str, list[str]]] = {}
        for doc, tables in TABLES.items():
            path = ROOT / doc
            try:
                text = path.read_text()
            except OSError as exc:
                raise DocsError(f"cannot read {doc}: {exc.strerror}") from None
            try:
                new_text, changed = regenerate(text, tables)
            except DocsError as exc:
                raise DocsError(f"{doc}: {exc}") from None
            redrawn[path] = (text, new_text, [f"{doc}: {name}" for name in changed])
        changed = [name for _, _, names in redrawn.values() for name in names]
        if args.check:
            print(f"stale: {', '.join(changed)}" if changed else "every table is up to date")
            return 1 if changed else 0
        for path, (text, new_text, _) in redrawn.items():
            if new_text != text:
                write_atomically(path, new_text)
        print(f"redrawn: {', '.join(changed)}" if changed else "every table was up to date")
        if args.figures:
            for out, arguments in FIGURES.items():
                run_adgm([*arguments, "--out", out])
                print(f"drawn: {out}")
    except DocsError as exc:
        print(f"regenerate_docs: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
