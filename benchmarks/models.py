"""The models benchmarked: the project's own (trained on generated data) and a fixed larger one."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from benchmarks.cache import cached


def project_pipeline(n_clients: int, seed: int = 42, quick: bool = False) -> SimpleNamespace:
    """Generate, ingest, train (the quick search when quick) and compile once per size and version of app/;
    later runs reuse the cache (benchmarks/pipeline.py): raw, db, model_dir, timings."""
    from benchmarks.pipeline import cached_pipeline

    return cached_pipeline(n_clients, seed, quick)


QUICK_PIPELINE = (3000, 7)  # clients, seed: the test session's pipeline (tests/conftest.py), the same folder


def bench_pipeline(quick: bool) -> SimpleNamespace:
    """The pipeline a benchmark part measures: 20,000 clients and the full search; for the quick correctness pass,
    the test session's 3,000 clients and quick search (built once for both; every engine is still checked on
    the project's 416 features, its calibration and its scores table)."""
    if quick:
        return project_pipeline(*QUICK_PIPELINE, quick=True)
    return project_pipeline(20000)


def project_matrix(db: Path) -> tuple[np.ndarray, np.ndarray]:
    from app.data.features import load_matrix
    from app.scoring.db import connect

    conn = connect(db, readonly=True)
    try:
        ids, X, _y, _names = load_matrix(conn, labelled_only=False)
    finally:
        conn.close()
    return ids, X


ANCHORS = ("500x31", "1000x63", "categorical")  # the engine budget's models (issue 20)


def _cached_model(
    name: str, X: np.ndarray, y: np.ndarray, n_trees: int, leaves: int, categorical: list[int] | None = None
) -> Path:
    """Train (seeded, one thread) and compile once per shape and version of app/ (benchmarks/cache.py); later calls
    reuse the folder."""
    params = {"n_trees": n_trees, "leaves": leaves, "shape": list(X.shape), "categorical": categorical or []}
    return cached(name, params, lambda model_dir: _build_model(model_dir, X, y, n_trees, leaves, categorical))


def _build_model(
    model_dir: Path, X: np.ndarray, y: np.ndarray, n_trees: int, leaves: int, categorical: list[int] | None
) -> None:
    import hashlib

    import lightgbm as lgb

    from app.model.compile import compile_model

    params = {
        "objective": "binary",
        "num_leaves": leaves,
        "learning_rate": 0.05,
        "min_data_in_leaf": 5,
        "verbose": -1,
        "seed": 1,
        "deterministic": True,
        "num_threads": 1,
    }
    if categorical:
        params["max_cat_to_onehot"] = 4
    ds = lgb.Dataset(X, y, categorical_feature=categorical or "auto")
    booster = lgb.train(params, ds, num_boost_round=n_trees)
    booster.save_model(str(model_dir / "model.txt"))
    model_id = hashlib.sha256((model_dir / "model.txt").read_bytes()).hexdigest()
    n_features = X.shape[1]
    names = [f"f{i}" for i in range(n_features)]
    manifest = {"model_id": model_id, "features": names, "n_features": n_features, "threshold": 0.5}
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    np.save(model_dir / "reference.npy", X[:2000], allow_pickle=False)
    compile_model(model_dir, progress=False)


def _synthetic(rows: int, n_features: int) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(123)
    X = rng.normal(size=(rows, n_features)).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    logit = np.nansum(X[:, :20] * rng.normal(size=20), axis=1) - 2.5
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y, rng


def large_model(n_trees: int, leaves: int = 63, n_features: int = 200, rows: int = 20_000) -> tuple[Path, np.ndarray]:
    """A fixed LightGBM model of n_trees x leaves on synthetic data with NaNs, compiled like ours."""
    X, y, _rng = _synthetic(rows, n_features)
    return _cached_model(f"large-{n_trees}x{leaves}x{n_features}", X, y, n_trees, leaves), X


CATEGORY_LEVELS = (10, 40, 80, 150, 250)


def categorical_model(
    n_trees: int = 500, leaves: int = 31, n_features: int = 200, rows: int = 20_000
) -> tuple[Path, np.ndarray]:
    """The categorical anchor: n_trees x leaves, the first 5 columns categorical (10-250 levels) and
    carrying most of the signal, so that nearly every tree has a categorical split."""
    X, y, rng = _synthetic(rows, n_features)
    logit = np.zeros(rows)
    for j, levels in enumerate(CATEGORY_LEVELS):
        codes = rng.integers(0, levels, rows)
        effect = rng.normal(0, 1.0, levels)
        logit += effect[codes]
        col = codes.astype(np.float32)
        col[rng.random(rows) < 0.05] = np.nan
        X[:, j] = col
    y = (rng.random(rows) < 1 / (1 + np.exp(-(logit - 2.0 + 0.5 * np.nan_to_num(X[:, 5]))))).astype(int)
    categorical = list(range(len(CATEGORY_LEVELS)))
    return _cached_model(f"categorical-{n_trees}x{leaves}x{n_features}", X, y, n_trees, leaves, categorical), X


def anchor_model(name: str, quick: bool = False) -> tuple[Path, np.ndarray]:
    """One of ANCHORS (quick: the same shapes with fewer trees, for correctness passes)."""
    if name == "500x31":
        return large_model(100 if quick else 500, leaves=31)
    if name == "1000x63":
        return large_model(100 if quick else 1000, leaves=63)
    if name == "categorical":
        return categorical_model(100 if quick else 500)
    raise ValueError(f"unknown anchor model {name!r}; one of {', '.join(ANCHORS)}")
