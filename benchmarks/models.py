"""The models benchmarked: the project's own (trained on generated data) and a fixed larger one."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from benchmarks.common import CACHE


def project_pipeline(n_clients: int, seed: int = 42) -> SimpleNamespace:
    """Generate, ingest, train and compile once per size; later runs reuse the cache."""
    from app.data.ingest import ingest
    from app.data.synthetic import generate
    from app.model.compile import compile_model
    from app.model.train import train

    root = CACHE / f"pipeline-{n_clients}-{seed}"
    raw, db, model_dir = root / "raw", root / "credit.db", root / "model"
    done = root / "done"
    timings = {}
    if not done.exists():
        import time

        root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        generate(raw, n_clients=n_clients, seed=seed, progress=False)
        timings["generate_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ingest(raw, db, progress=False)
        timings["ingest_features_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        train(db, model_dir, seed=seed, progress=False)
        timings["train_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        compile_model(model_dir, progress=False)
        timings["compile_s"] = time.perf_counter() - t0
        done.write_text(json.dumps(timings))
    timings = json.loads(done.read_text())
    return SimpleNamespace(raw=raw, db=db, model_dir=model_dir, timings=timings)


def project_matrix(db: Path) -> tuple[np.ndarray, np.ndarray]:
    from app.data.features import load_matrix
    from app.db import connect

    conn = connect(db, readonly=True)
    try:
        ids, X, _y, _names = load_matrix(conn, labelled_only=False)
    finally:
        conn.close()
    return ids, X


def large_model(n_trees: int, leaves: int = 63, n_features: int = 200, rows: int = 20_000) -> tuple[Path, np.ndarray]:
    """A fixed LightGBM model of n_trees x leaves on synthetic data with NaNs, compiled like ours."""
    import lightgbm as lgb

    from app.model.compile import compile_model

    model_dir = CACHE / f"large-{n_trees}x{leaves}x{n_features}"
    rng = np.random.default_rng(123)
    X = rng.normal(size=(rows, n_features)).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    logit = np.nansum(X[:, :20] * rng.normal(size=20), axis=1) - 2.5
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    if not (model_dir / "done").exists():
        model_dir.mkdir(parents=True, exist_ok=True)
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
        booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=n_trees)
        booster.save_model(str(model_dir / "model.txt"))
        import hashlib

        model_id = hashlib.sha256((model_dir / "model.txt").read_bytes()).hexdigest()
        names = [f"f{i}" for i in range(n_features)]
        manifest = {"model_id": model_id, "features": names, "n_features": n_features, "threshold": 0.5}
        (model_dir / "manifest.json").write_text(json.dumps(manifest))
        np.save(model_dir / "reference.npy", X[:2000], allow_pickle=False)
        compile_model(model_dir, progress=False)
        (model_dir / "done").write_text("ok")
    return model_dir, X
