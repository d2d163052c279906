"""Explanations for a portfolio: the library's batch TreeSHAP (per-leaf tables, app/model/codegen_shap_tables.py)
against LightGBM's `Booster.predict(pred_contrib=True)` and against the library's own copy of LightGBM's
recursion (`credit_shap_batch_recursive`), on the same rows, one thread. Budget (docs/performance.md):
>= 2x pred_contrib on every anchor, max |diff| <= 1e-9.

Also, on each model: the `explanations` SQL table over the same number of clients (a features table of the
model's rows; SQL cost a client, against pred_contrib's a row), the tables' size and their one-time build
(the first SHAP call of a process), and one client at a time (`credit_shap_row`, what one explanation
calls) against the recursion one row at a time (p50 over the rows).

Every figure is the thread's CPU time (time.thread_time_ns: the machine is shared), the engines alternated
round by round, minimum over `--repeats`; ratios are taken in the same run.

Run: python -m benchmarks.shap_batch [--models demo 500x31 1000x63 categorical] [--rows 500] [--repeats 5]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import time
from pathlib import Path

import numpy as np

BUDGET = 2.0
TOL = 1e-9
STATS = ("leaves_on_tables", "leaves_on_the_fly", "table_doubles", "max_table_d", "trees_recursive")


def ensure_tables(model_dir: Path) -> None:
    """Recompile a cached benchmark model whose library predates the SHAP tables (benchmarks/.cache)."""
    from app.scoring.bundle import load_model

    if not hasattr(load_model(model_dir)._lib, "credit_shap_table_stats"):
        from app.model.compile import compile_model

        compile_model(model_dir, progress=False)


def _fn(lib, name: str):
    fn = getattr(lib, name)
    fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p], None
    return fn


def cpu(fn) -> float:
    t0 = time.thread_time_ns()
    fn()
    return (time.thread_time_ns() - t0) / 1e9


def measure(label: str, model_dir: Path, X: np.ndarray, rows: int, repeats: int, db: Path | None) -> dict:
    import lightgbm as lgb

    from app.scoring.bundle import ModelBundle

    ensure_tables(model_dir)
    bundle = ModelBundle.load(model_dir)
    lib = bundle.model._lib
    nf = bundle.n_features
    tables, recursive = _fn(lib, "credit_shap_batch"), _fn(lib, "credit_shap_batch_recursive")
    row_fn = lib.credit_shap_row
    row_fn.argtypes, row_fn.restype = [ctypes.c_void_p, ctypes.c_void_p], None
    R = np.ascontiguousarray(X[np.random.default_rng(0).choice(len(X), rows, replace=False)], dtype=np.float32)
    one = np.empty(nf + 1)
    build_s = cpu(lambda: row_fn(R[0].ctypes.data, one.ctypes.data))  # this process's first SHAP call
    stats = np.zeros(5, dtype=np.int64)
    lib.credit_shap_table_stats.argtypes = [ctypes.c_void_p]
    lib.credit_shap_table_stats(stats.ctypes.data)
    booster = lgb.Booster(model_file=str(model_dir / "model.txt"))
    out_t, out_r = np.empty((rows, nf + 1)), np.empty((rows, nf + 1))
    times: dict[str, list[float]] = {"tables": [], "recursive": [], "pred_contrib": [], "sql": []}
    conn = None
    if db is not None:
        from app.scoring.db import connect

        conn = connect(db, bundle, readonly=True)
        last = conn.execute("SELECT client_id FROM features ORDER BY client_id LIMIT 1 OFFSET ?", (rows - 1,))
        last_id = last.fetchone()[0]
    want = None
    for _ in range(repeats):
        times["tables"].append(cpu(lambda: tables(R.ctypes.data, rows, out_t.ctypes.data)))
        times["recursive"].append(cpu(lambda: recursive(R.ctypes.data, rows, out_r.ctypes.data)))
        t0 = time.thread_time_ns()
        want = booster.predict(R, pred_contrib=True, num_threads=1)
        times["pred_contrib"].append((time.thread_time_ns() - t0) / 1e9)
        if conn is not None:
            sql = "SELECT count(*), sum(shap) FROM explanations WHERE client_id <= ?"
            times["sql"].append(cpu(lambda sql=sql: conn.execute(sql, (last_id,)).fetchone()))
    single_t, single_r = [], []
    for r in R[: min(rows, 200)]:
        single_t.append(cpu(lambda r=r: row_fn(r.ctypes.data, one.ctypes.data)))
        single_r.append(cpu(lambda r=r: recursive(r.ctypes.data, 1, out_r.ctypes.data)))
    recursive(R.ctypes.data, rows, out_r.ctypes.data)
    if conn is not None:
        conn.close()
    us = {k: min(v) / rows * 1e6 for k, v in times.items() if v}
    return {
        "model": label,
        "rows": rows,
        "tables_us_per_row": us["tables"],
        "recursive_us_per_row": us["recursive"],
        "pred_contrib_us_per_row": us["pred_contrib"],
        "sql_us_per_client": us.get("sql"),
        "speedup_vs_pred_contrib": us["pred_contrib"] / us["tables"],
        "sql_speedup_vs_pred_contrib": us["pred_contrib"] / us["sql"] if "sql" in us else None,
        "speedup_vs_recursive": us["recursive"] / us["tables"],
        "one_row_p50_us_tables": float(np.median(single_t)) * 1e6,
        "one_row_p50_us_recursive": float(np.median(single_r)) * 1e6,
        "max_abs_diff": float(np.max(np.abs(out_t - want))),
        "max_abs_diff_recursive": float(np.max(np.abs(out_r - want))),
        "table_build_ms": build_s * 1e3,
        **dict(zip(STATS, stats.tolist(), strict=True)),
        "within_budget": us["pred_contrib"] / us["tables"] >= BUDGET and float(np.max(np.abs(out_t - want))) <= TOL,
    }


def models(names: list[str], quick: bool) -> list[tuple[str, Path, np.ndarray, Path]]:
    from benchmarks.models import anchor_model, project_matrix, project_pipeline
    from benchmarks.portfolio_sql import features_db

    out = []
    for name in names:
        if name == "demo":
            pipe = project_pipeline(3000 if quick else 20000)
            _ids, X = project_matrix(pipe.db)
            out.append(("demo", pipe.model_dir, X, pipe.db))
        else:
            model_dir, X = anchor_model(name, quick=quick)
            X = np.ascontiguousarray(X[: 2000 if quick else len(X)])
            out.append((name, model_dir, X, features_db(name, X)))
    return out


def run(
    quick: bool, names: list[str] | None = None, rows: int | None = None, repeats: int | None = None, each=None
) -> list[dict]:
    """Every model's row (each(row) as soon as it is measured)."""
    from benchmarks.models import ANCHORS

    names = names or ["demo", *ANCHORS]
    repeats = repeats or (1 if quick else 5)
    out = []
    for label, model_dir, X, db in models(names, quick):
        n = rows or (50 if quick else 2000 if label == "demo" else 200 if label == "1000x63" else 500)
        out.append(measure(label, model_dir, X, n, repeats, db))
        if each is not None:
            each(out[-1])
    return out


def _print_row(r: dict) -> None:
    sql = f"{r['sql_us_per_client']:9.1f}" if r["sql_us_per_client"] else f"{'':9s}"
    sqlx = f"{r['sql_speedup_vs_pred_contrib']:6.2f}" if r["sql_speedup_vs_pred_contrib"] else f"{'':6s}"
    print(
        f"{r['model']:12s} {r['rows']:5d} {r['tables_us_per_row']:9.1f} {r['recursive_us_per_row']:9.1f} "
        f"{r['pred_contrib_us_per_row']:12.1f} {sql}  {r['speedup_vs_pred_contrib']:14.2f} {sqlx} "
        f"{r['speedup_vs_recursive']:11.2f}  {r['one_row_p50_us_tables']:14.1f} "
        f"{r['one_row_p50_us_recursive']:14.1f}  "
        f"{r['max_abs_diff']:9.1e}  {r['leaves_on_tables']} / {r['leaves_on_the_fly']}, "
        f"{r['table_doubles'] * 8 / 1e6:.1f} MB, {r['table_build_ms']:.0f} ms",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="*", default=None)
    ap.add_argument("--rows", type=int, default=None, help="rows explained per call [demo 2000, 1000x63 200, else 500]")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print(f"load {os.getloadavg()[0]:.1f} (1 min) at the start; thread CPU time, min of {args.repeats}, µs a row")
    print(
        f"{'model':12s} {'rows':>5s} {'tables':>9s} {'recursion':>9s} {'pred_contrib':>12s} {'SQL':>9s}  "
        f"{'x pred_contrib':>14s} {'SQL x':>6s} {'x recursion':>11s}  {'1 row p50 (tables, recursion)':>29s}  "
        f"{'max|diff|':>9s}  tables (leaves on tables / on the fly, MB, build ms)",
        flush=True,
    )
    run(args.quick, args.models, args.rows, args.repeats, each=_print_row)
    print(f"load {os.getloadavg()[0]:.1f} (1 min) at the end")


if __name__ == "__main__":
    main()
