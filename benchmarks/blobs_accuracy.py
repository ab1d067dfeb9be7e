"""Semi-supervised accuracy on Gaussian blobs: ADGMClassifier and M2Classifier against logistic
regression trained on the labelled points alone.

Three blobs in 20 dimensions (centres N(0, I), noise std 1.6), 1,000 training points of which 10
are labelled (4, 3, 3), 1,000 test points; for each data seed and model seed it prints the test
accuracy of each. The same problem as tests/test_estimator.py, over more seeds.

    python benchmarks/blobs_accuracy.py --data-seeds 0 1 2 --model-seeds 0 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.linear_model import LogisticRegression

from adgm import ADGMClassifier, M2Classifier


def blobs(seed: int):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 3, size=2000)
    centres = np.random.default_rng(7 + seed).normal(size=(3, 20))
    x = (centres[codes] + 1.6 * rng.normal(size=(2000, 20))).astype(np.float32)
    x_train, y_train, x_test, y_test = x[:1000], codes[:1000], x[1000:], codes[1000:]
    labelled = np.concatenate(
        [
            rng.choice(np.flatnonzero(y_train == c), m, replace=False)
            for c, m in enumerate((4, 3, 3))
        ]
    )
    partial = np.full(1000, -1)
    partial[labelled] = y_train[labelled]
    return x_train, partial, labelled, x_test, y_test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--model-seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    for data_seed in args.data_seeds:
        x, y, labelled, x_test, y_test = blobs(data_seed)
        baseline = LogisticRegression(max_iter=1000).fit(x[labelled], y[labelled])
        for model_seed in args.model_seeds:
            start = time.perf_counter()
            scores = {
                cls.__name__: cls(
                    epochs=args.epochs, lr=1e-3, eval_samples=20, random_state=model_seed
                )
                .fit(x, y)
                .score(x_test, y_test)
                for cls in (ADGMClassifier, M2Classifier)
            }
            print(
                f"data seed {data_seed}, model seed {model_seed}: logistic regression "
                f"{baseline.score(x_test, y_test):.3f}, ADGM {scores['ADGMClassifier']:.3f}, "
                f"M2 {scores['M2Classifier']:.3f} ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
