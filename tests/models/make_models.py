"""Regenerate the small fixed LightGBM models used by tests/test_compile.py.

    .venv/bin/python tests/models/make_models.py

nan_missing.txt    : numerical splits with missing_type NaN (both default directions) and None
tiny_threshold.txt : nan_missing.txt with thresholds edited to 0 and -1e-36 (LightGBM reads
                     |x| <= 1e-35 as 0.0, which only matters for such thresholds)
zero_none.txt      : zero_as_missing -> missing_type Zero (both default directions)
none_only.txt      : no NaN in training -> missing_type None (NaN is read as 0.0)
categorical.txt    : categorical (bitset) splits next to numerical ones, use_missing=false
"""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np

HERE = Path(__file__).resolve().parent
BASE = {"objective": "binary", "verbosity": -1, "num_threads": 1, "deterministic": True, "seed": 1}


def main() -> None:
    rng = np.random.default_rng(0)
    n = 600
    X = rng.normal(size=(n, 5)).astype(np.float32)
    miss = rng.random(n) < 0.3
    X[miss, 0] = np.nan
    X[rng.random(n) < 0.2, 1] = np.nan
    y = ((miss & (X[:, 2] > 0)) | (np.nan_to_num(X[:, 1]) > 1.0) | (X[:, 3] > 1.2)).astype(int)
    b = lgb.train({**BASE, "num_leaves": 8, "min_data_in_leaf": 5}, lgb.Dataset(X, y), num_boost_round=12)
    b.save_model(HERE / "nan_missing.txt")
    lines = (HERE / "nan_missing.txt").read_text().splitlines()
    edited = 0
    lines = [line for line in lines if not line.startswith("tree_sizes=")]  # byte offsets change
    for i, line in enumerate(lines):
        if line.startswith("threshold=") and edited < 2:
            values = line[len("threshold=") :].split()
            values[0] = "0" if edited == 0 else "-1.0000000000000001e-36"
            lines[i] = "threshold=" + " ".join(values)
            edited += 1
    (HERE / "tiny_threshold.txt").write_text("\n".join(lines) + "\n")

    X = rng.normal(size=(n, 4)).astype(np.float32)
    X[rng.random(n) < 0.4, 0] = 0.0
    X[:, 1] = np.round(X[:, 1])
    y = ((X[:, 0] == 0) & (X[:, 2] > 0) | (X[:, 1] >= 1)).astype(int)
    params = {**BASE, "num_leaves": 6, "min_data_in_leaf": 5, "zero_as_missing": True}
    lgb.train(params, lgb.Dataset(X, y), num_boost_round=8).save_model(HERE / "zero_none.txt")
    params = {**BASE, "num_leaves": 6, "min_data_in_leaf": 5}
    lgb.train(params, lgb.Dataset(X, y), num_boost_round=6).save_model(HERE / "none_only.txt")

    X = rng.normal(size=(n, 3)).astype(np.float32)
    X[:, 0] = rng.integers(0, 40, n)
    y = (np.isin(X[:, 0], [1, 3, 5, 33, 34, 35, 36]) ^ (X[:, 1] > 1.0)).astype(int)
    params = {
        **BASE,
        "num_leaves": 8,
        "min_data_in_leaf": 5,
        "min_data_per_group": 5,
        "cat_smooth": 1,
        "max_cat_to_onehot": 4,
        "use_missing": False,
    }
    b = lgb.train(params, lgb.Dataset(X, y, categorical_feature=[0]), num_boost_round=10)
    b.save_model(HERE / "categorical.txt")


if __name__ == "__main__":
    main()
