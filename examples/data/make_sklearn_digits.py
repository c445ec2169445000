#!/usr/bin/env python3
"""Regenerates sklearn-digits.json byte for byte from scikit-learn's bundled digits set.

    /usr/bin/python3 examples/data/make_sklearn_digits.py

Needs Debian's python3-sklearn (1.2.1 made the committed file).
"""

import json
from pathlib import Path

import sklearn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

OUT = Path(__file__).resolve().parent / "sklearn-digits.json"


def main():
    X, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )
    split = lambda xs, ys: {  # noqa: E731
        "X": [[int(v) for v in row] for row in xs],
        "y": [int(v) for v in ys],
    }
    doc = {
        "source": f"sklearn.datasets.load_digits() from Debian python3-sklearn {sklearn.__version__} "
        "(bundled file sklearn/datasets/data/digits.csv.gz)",
        "split": "train_test_split(test_size=0.25, random_state=0, stratify=y)",
        "features": "8x8 pixel counts 0..16, row-major",
        "classes": 10,
        "train": split(x_train, y_train),
        "test": split(x_test, y_test),
    }
    OUT.write_text(json.dumps(doc, separators=(",", ":")))
    print(f"wrote {OUT.name}: {len(y_train)} train, {len(y_test)} test")


if __name__ == "__main__":
    main()
