"""How hard each draw of the labelled set is on its own, for two supervised baselines.

A run's `--label-seed` draws its labelled images (`adgm.data.batches.split_semi_supervised`,
10 per class for MNIST's 100 labels). Before asking whether a seed's higher test error comes
from its labelled draw or from its training seed, this measures the draws alone: for each label
seed, the test error of a 1-nearest-neighbour classifier and of a logistic regression (L2, C=1)
fitted to that draw's labelled images only, on the grey levels of the test images (the
labelled images are grey levels too). No generative model, no unlabelled images.

    python benchmarks/label_draws.py                      # label seeds 0-9, MNIST, 100 labels
    python benchmarks/label_draws.py --seeds 0 1 2 --n-labels 1000

Prints one row per seed, then each baseline's mean and standard deviation over the seeds and
where in their order the first three seeds given fall (their ranks, 1 = easiest).
"""

from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from adgm.config import DataConfig
from adgm.data.batches import split_semi_supervised
from adgm.data.mnist import load_mnist
from adgm.errors import AdgmError

BASELINES = {
    "1-NN": lambda: KNeighborsClassifier(n_neighbors=1),
    "logistic regression": lambda: LogisticRegression(C=1.0, max_iter=2000),
}


def draw_errors(train, test, n_labels: int, label_seed: int) -> dict[str, float]:
    """Test error (fraction) of each baseline fitted to one draw's labelled images.

    The draw is the one `adgm train --label-seed label_seed --n-labels n_labels` trains with:
    the same split function, grey-level test inputs.
    """
    config = DataConfig(n_labels=n_labels, label_seed=label_seed, test_inputs="grey")
    data = split_semi_supervised(train, test, config, n_classes=10)
    x_labelled, y_labelled = data.x_labelled.numpy(), data.y_labelled.numpy()
    x_test, y_test = data.x_test.numpy(), data.y_test.numpy()
    errors = {}
    for name, make in BASELINES.items():
        model = make().fit(x_labelled, y_labelled)
        errors[name] = float(np.mean(model.predict(x_test) != y_test))
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--n-labels", type=int, default=100)
    parser.add_argument("--data-dir", default=None, help="MNIST files (default $ADGM_DATA_DIR)")
    args = parser.parse_args(argv)
    try:
        train, test = load_mnist(args.data_dir, download=False)
        rows = {seed: draw_errors(train, test, args.n_labels, seed) for seed in args.seeds}
    except AdgmError as error:
        print(f"label_draws: {error}", file=sys.stderr)
        return 2
    names = list(BASELINES)
    print("| label seed | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for seed, errors in rows.items():
        print(f"| {seed} | " + " | ".join(f"{100 * errors[n]:.2f}%" for n in names) + " |")
    for name in names:
        values = [rows[seed][name] for seed in args.seeds]
        order = sorted(args.seeds, key=lambda seed: rows[seed][name])
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        ranks = ", ".join(f"seed {seed}: {order.index(seed) + 1}" for seed in args.seeds[:3])
        print(
            f"{name}: {100 * statistics.mean(values):.2f}% ± {100 * spread:.2f} over "
            f"{len(values)} draws; ranks (1 = easiest) {ranks}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
