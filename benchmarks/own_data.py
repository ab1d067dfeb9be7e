"""The estimators on real data with few labels, against scikit-learn's semi-supervised methods.

For each data set, number of labels per class and label draw, every method is fitted on the same
training rows (y == -1 for the unlabelled ones) and scored on held-out test rows. Prints one line
per fit, then a table of mean and standard deviation of test accuracy and mean fit time, and
appends every fit as a JSON line to --out (the README's table is drawn from that file).

Data sets (none is downloaded):
  digits        sklearn's 8x8 digits (1,797 images; features / 16), 1,297 train, 500 test
  breast-cancer sklearn's breast cancer table (569 rows, 30 features, 2 classes), 400 / 169
  wine          sklearn's wine table (178 rows, 13 features, 3 classes), 118 / 60
  mnist         MNIST from $ADGM_DATA_DIR (pixels / 255), --train-size / --test-size rows
  fashion-mnist Fashion-MNIST from $ADGM_FASHION_DATA_DIR or /usr/share/datasets/fashion-mnist

Methods: the estimators with their defaults (adgm, m2, sdgm, adgm-gen), logistic regression on
the labelled rows alone (logreg), SelfTrainingClassifier(LogisticRegression()) (self-training),
LabelSpreading(kernel="knn") (label-spreading), an RBF support vector machine on the labelled
rows alone (svc: SVC(), gamma "scale") and self-training on it with Platt-scaled probabilities
(self-training-svc: SelfTrainingClassifier(CalibratedClassifierCV(SVC(), ensemble=False))); the
tabular sets are standardised first for every method (a StandardScaler in a Pipeline). Without
--methods: the first three baselines, adgm and m2. --precision bf16 trains the estimators in bf16
(their names in the records get " bf16"); --set NAME=VALUE... sets the estimators' parameters
(their names get the settings: "adgm max_steps=6000"; a comma makes a tuple, "hidden=500,500").

    python benchmarks/own_data.py --datasets digits fashion-mnist --labels-per-class 5 10 \
        --draws 3 --out own_data.jsonl
    python benchmarks/own_data.py --table own_data.jsonl     # the table of a finished run
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from collections import defaultdict
from collections.abc import Callable

import numpy as np
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier
from sklearn.svm import SVC

TABULAR = {"breast-cancer", "wine"}
SKLEARN_SETS = {  # name: (loader, test rows)
    "digits": (load_digits, 500),
    "breast-cancer": (load_breast_cancer, 169),
    "wine": (load_wine, 60),
}
DATASETS = ("digits", "breast-cancer", "wine", "mnist", "fashion-mnist")
BASELINES = ("logreg", "self-training", "label-spreading", "svc", "self-training-svc")
ESTIMATORS = ("adgm", "m2", "sdgm", "adgm-gen")
METHODS = BASELINES + ESTIMATORS
DEFAULT_METHODS = ("logreg", "self-training", "label-spreading", "adgm", "m2")


def load(name: str, train_size: int, test_size: int, seed: int = 0):
    """(x_train (N, D), y_train (N,), x_test (M, D), y_test (M,)) as float32 / int64."""
    if name in SKLEARN_SETS:
        loader, test = SKLEARN_SETS[name]
        x, y = loader(return_X_y=True)
        x = x / 16.0 if name == "digits" else x
        x_tr, x_te, y_tr, y_te = train_test_split(
            x, y, test_size=test, random_state=seed, stratify=y
        )
        return x_tr.astype(np.float32), y_tr, x_te.astype(np.float32), y_te
    from adgm.data import load_fashion_mnist, load_mnist

    loader = load_mnist if name == "mnist" else load_fashion_mnist
    folder = os.environ.get("ADGM_DATA_DIR") if name == "mnist" else None
    train, test = loader(folder, download=False)
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(train))[:train_size]
    test_rows = rng.permutation(len(test))[:test_size]
    return train.images[rows], train.labels[rows], test.images[test_rows], test.labels[test_rows]


def hide_labels(y: np.ndarray, per_class: int, draw: int) -> np.ndarray:
    """y with all but `per_class` labels of each class (a seeded draw) replaced by -1."""
    rng = np.random.default_rng(1000 + draw)
    partial = np.full(len(y), -1, dtype=np.int64)
    for c in np.unique(y):
        keep = rng.choice(np.flatnonzero(y == c), per_class, replace=False)
        partial[keep] = y[keep]
    return partial


def method(
    name: str, tabular: bool, seed: int, precision: str = "fp32", settings: dict | None = None
) -> Callable:
    """A function (x, y_partial) -> fitted classifier; the labelled-only baseline drops -1.
    `settings`: the estimators' parameters beyond random_state and precision."""
    logreg = LogisticRegression(max_iter=2000)
    if name in ("logreg", "svc"):  # the labelled rows alone
        model = logreg if name == "logreg" else SVC()
        model = make_pipeline(StandardScaler(), model) if tabular else model

        def fit(x, y):
            labelled = y != -1
            return clone(model).fit(x[labelled], y[labelled])

        return fit
    if name == "self-training":
        model = SelfTrainingClassifier(logreg)
    elif name == "label-spreading":
        model = LabelSpreading(kernel="knn")
    elif name == "self-training-svc":  # Platt-scaled probabilities pick the confident rows
        model = SelfTrainingClassifier(CalibratedClassifierCV(SVC(), ensemble=False))
    else:
        from adgm import estimator

        classes = {
            "adgm": estimator.ADGMClassifier,
            "m2": estimator.M2Classifier,
            "sdgm": estimator.SDGMClassifier,
            "adgm-gen": estimator.ADGMGenClassifier,
        }
        model = classes[name](random_state=seed, precision=precision, **(settings or {}))
    model = make_pipeline(StandardScaler(), model) if tabular else model
    return lambda x, y: clone(model).fit(x, y)


def run(args) -> None:
    data = {d: load(d, args.train_size, args.test_size) for d in args.datasets}  # all, or fail
    for dataset, (x, y, x_test, y_test) in data.items():
        for per_class in args.labels_per_class:
            for draw in range(args.first_draw, args.first_draw + args.draws):
                partial = hide_labels(y, per_class, draw)
                for name in args.methods:
                    fit = method(name, dataset in TABULAR, draw, args.precision, args.settings)
                    start = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ConvergenceWarning)
                        classifier = fit(x, partial)
                    seconds = time.perf_counter() - start
                    record = {
                        "dataset": dataset,
                        "labels_per_class": per_class,
                        "draw": draw,
                        "method": label(name, args.precision, args.settings),
                        "accuracy": float(classifier.score(x_test, y_test)),
                        "fit_seconds": seconds,
                        "n_train": len(x),
                        "n_test": len(x_test),
                    }
                    print(
                        f"{dataset} {per_class}/class draw {draw} {record['method']}: "
                        f"accuracy {record['accuracy']:.4f}, fit {seconds:.1f} s",
                        flush=True,
                    )
                    if args.out:
                        with open(args.out, "a") as out:
                            out.write(json.dumps(record) + "\n")


def unwritable(path: str) -> str | None:
    """Why fits could not be appended to `path` (a missing folder, no permission), or None."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        return "is a folder"
    if not os.path.isdir(folder):
        return f"no folder {folder}"
    target = path if os.path.exists(path) else folder
    return None if os.access(target, os.W_OK) else f"{target} is not writable"


def label(name: str, precision: str, settings: dict | None = None) -> str:
    """The method's name in the records and the table: for the estimators, their precision when
    bf16 and the parameters set (``adgm bf16 max_steps=6000``)."""
    if name in BASELINES:
        return name
    words = [name, "bf16"] if precision == "bf16" else [name]
    for key, value in (settings or {}).items():
        shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
        words.append(f"{key}={shown}")
    return " ".join(words)


def parse_settings(pairs: list[str]) -> dict:
    """["max_steps=6000", "hidden=500,500", "lr=3e-4"] -> {"max_steps": 6000, "hidden": (500,
    500), "lr": 0.0003}: numbers where they read as numbers, a comma for a tuple."""

    def value(text: str):
        if "," in text:
            return tuple(value(part) for part in text.split(","))
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    settings = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"own_data.py: error: --set takes NAME=VALUE, not {pair!r}")
        settings[key] = value(text)
    return settings


def table(records: list[dict]) -> str:
    """Markdown: one row per (data set, labels per class), one column per method: the baselines
    first, then the estimators, each in METHODS' order (records of one method in the order
    met)."""
    groups: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    methods: list[str] = []
    for r in records:
        groups[(r["dataset"], r["labels_per_class"])][r["method"]].append(r)
        if r["method"] not in methods:
            methods.append(r["method"])
    known = {name: i for i, name in enumerate(METHODS)}
    methods.sort(key=lambda m: known.get(m.split()[0], len(METHODS)))  # stable: else as met
    lines = [
        "| data set | labels | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for (dataset, per_class), by_method in groups.items():
        cells = []
        for name in methods:
            runs = by_method.get(name, [])
            if not runs:
                cells.append("")
                continue
            acc = np.array([r["accuracy"] for r in runs]) * 100
            sec = np.mean([r["fit_seconds"] for r in runs])
            spread = f" ± {acc.std():.1f}" if len(runs) > 1 else " (1 draw)"
            cells.append(f"{acc.mean():.1f}{spread} ({sec:.0f} s)")
        first = next(iter(by_method.values()))[0]
        n_classes = {"breast-cancer": 2, "wine": 3}.get(dataset, 10)
        lines.append(
            f"| {dataset} ({first['n_train']} train) | {per_class * n_classes} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(DEFAULT_METHODS))
    parser.add_argument("--labels-per-class", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--draws", type=int, default=3, help="label draws (and model seeds)")
    parser.add_argument(
        "--first-draw", type=int, default=0, help="number of the first draw (later draws follow)"
    )
    parser.add_argument("--train-size", type=int, default=10_000, help="MNIST-format sets")
    parser.add_argument("--test-size", type=int, default=2_000, help="MNIST-format sets")
    parser.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="the estimators' training precision (their `precision` parameter)",
    )
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="the estimators' parameters, e.g. max_steps=6000 hidden=500,500 alpha=130",
    )
    parser.add_argument("--out", help="append each fit as a JSON line to this file")
    parser.add_argument("--table", metavar="JSONL", help="print the table of a finished run")
    args = parser.parse_args()
    args.settings = parse_settings(args.set)
    if args.settings:  # names checked before any fit (torch loaded only then)
        from adgm.estimator import ADGMClassifier

        unknown = sorted(set(args.settings) - set(ADGMClassifier().get_params()))
        if unknown:
            raise SystemExit(
                f"own_data.py: error: --set: the estimators have no parameter {unknown}"
            )
    if not args.table:
        problem = args.out and unwritable(args.out)  # before the first fit, the file untouched
        if problem:
            raise SystemExit(f"own_data.py: error: --out {args.out}: {problem}")
        from adgm.errors import AdgmError

        try:
            run(args)
        except AdgmError as error:  # a missing or corrupt data set: one line, before any fit
            raise SystemExit(f"own_data.py: error: {error}") from None
    path = args.table or args.out
    if path:
        with open(path) as f:
            print(table([json.loads(line) for line in f if line.strip()]))


if __name__ == "__main__":
    main()
