"""Portfolio SQL against its floor: the extension's `scores` table (blocks of rows through the compiled batch
engine) and the row-at-a-time `sum(score(client_id))`, against a scan of every feature BLOB plus the batch
engine on the same rows already in memory. Budget (docs/performance.md): scores <= 1.2 x (scan + batch).

Models: the demo pipeline's (benchmarks.models.project_pipeline, 20,000 generated clients) and the engine
anchors (500 x 31, 1000 x 63, categorical 500 x 31 on 200 features; their 20,000 synthetic rows written to
a features table once). Every query runs on one apsw connection in this thread and is timed with the
thread's CPU time (time.thread_time_ns: the machine is shared), alternated, minimum of `--repeats`.
Exactness: `scores` against score(client_id) (bit for bit) and against the calibrated LightGBM reference.

Run: python -m benchmarks.portfolio_sql [--repeats 7] [--models demo 500x31 ...] [--quick]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.common import CACHE, calibrated_reference

QUERIES = {
    "scores": "SELECT sum(probability) FROM scores",
    "score_per_row": "SELECT sum(score(client_id)) FROM features",
    "scan": "SELECT max(x) FROM features",  # reads every BLOB (compares their bytes), scores nothing
}
BUDGET = 1.2


def features_db(name: str, X: np.ndarray) -> Path:
    """A features table (client_id 1..n, float32 BLOBs) for an anchor's rows, written once."""
    import apsw

    path = CACHE / f"features-{name}-{len(X)}.db"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    conn = apsw.Connection(str(tmp))
    with conn:
        conn.execute("CREATE TABLE features(client_id INTEGER PRIMARY KEY, x BLOB NOT NULL)")
        conn.executemany(
            "INSERT INTO features VALUES (?, ?)", ((i + 1, X[i].astype("<f4").tobytes()) for i in range(len(X)))
        )
    conn.close()
    os.replace(tmp, path)
    return path


def cpu(fn) -> float:
    t0 = time.thread_time_ns()
    fn()
    return (time.thread_time_ns() - t0) / 1e9


def measure(label: str, db: Path, model_dir: Path, X: np.ndarray, repeats: int) -> dict:
    """X: the features table's rows in client_id order."""
    import lightgbm as lgb

    from app.scoring.bundle import ModelBundle
    from app.scoring.db import connect

    bundle = ModelBundle.load(model_dir)
    conn = connect(db, bundle, readonly=True)
    n = conn.execute("SELECT count(*) FROM features").fetchone()[0]
    assert n == len(X), (n, len(X))
    by_table = np.array([r[0] for r in conn.execute("SELECT probability FROM scores")])
    by_score = np.array([r[0] for r in conn.execute("SELECT score(client_id) FROM features ORDER BY client_id")])
    booster = lgb.Booster(model_file=str(model_dir / "model.txt"))
    reference = calibrated_reference(booster, X, model_dir)
    times: dict[str, list[float]] = {k: [] for k in (*QUERIES, "batch")}
    for _ in range(repeats):
        for key, sql in QUERIES.items():
            times[key].append(cpu(lambda sql=sql: conn.execute(sql).fetchone()))
        times["batch"].append(cpu(lambda: bundle.model.predict(X)))
    conn.close()
    us = {k: min(v) / n * 1e6 for k, v in times.items()}
    floor = us["scan"] + us["batch"]
    return {
        "model": label,
        "rows": n,
        "batch_path": bundle.manifest.library.batch_path,
        "scores_us_per_row": us["scores"],
        "score_per_row_us_per_row": us["score_per_row"],
        "scan_us_per_row": us["scan"],
        "batch_us_per_row": us["batch"],
        "ratio_scores_to_floor": us["scores"] / floor,
        "ratio_score_per_row_to_floor": us["score_per_row"] / floor,
        "within_budget": us["scores"] / floor <= BUDGET,
        "scores_equal_score": bool(np.array_equal(by_table, by_score)),
        "max_abs_diff": float(np.max(np.abs(by_table - reference))),
    }


def models(names: list[str], quick: bool) -> list[tuple[str, Path, Path, np.ndarray]]:
    from benchmarks.models import anchor_model, bench_pipeline, project_matrix

    out = []
    for name in names:
        if name == "demo":
            pipe = bench_pipeline(quick)
            ids, X = project_matrix(pipe.db)
            order = np.argsort(ids)
            out.append(("demo", pipe.db, pipe.model_dir, np.ascontiguousarray(X[order])))
        else:
            model_dir, X = anchor_model(name, quick=quick)
            X = np.ascontiguousarray(X[: 2000 if quick else len(X)])
            out.append((name, features_db(name, X), model_dir, X))
    return out


def run(quick: bool, names: list[str] | None = None, repeats: int | None = None) -> list[dict]:
    from benchmarks.models import ANCHORS

    names = names or ["demo", *ANCHORS]
    repeats = repeats or (2 if quick else 7)
    return [measure(label, db, model_dir, X, repeats) for label, db, model_dir, X in models(names, quick)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--models", nargs="*", default=None)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print(f"load {os.getloadavg()[0]:.1f} (1 min), thread CPU time, min of {args.repeats}")
    print(
        f"{'model':12s} {'scores':>8s} {'score()':>8s} {'scan':>7s} {'batch':>7s}  scores/floor  score()/floor  exact"
    )
    for r in run(args.quick, args.models, args.repeats):
        print(
            f"{r['model']:12s} {r['scores_us_per_row']:8.3f} {r['score_per_row_us_per_row']:8.3f} "
            f"{r['scan_us_per_row']:7.3f} {r['batch_us_per_row']:7.3f}  {r['ratio_scores_to_floor']:12.3f}  "
            f"{r['ratio_score_per_row_to_floor']:13.3f}  {r['scores_equal_score']} {r['max_abs_diff']:.1e}"
        )


if __name__ == "__main__":
    main()
