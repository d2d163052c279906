"""SQL cost per row of a blend champion against its LightGBM part (budget: <= 1.2 x, docs/performance.md).

Default (`parts`): the benchmark pipeline's champion (benchmarks.models.project_pipeline, 20,000 generated
clients) is a blend: its LightGBM trees, then the scorecard's one-feature trees (all leaves scaled). Its
LightGBM part is the same text cut after the LightGBM trees (`Booster.model_to_string(num_iteration=k)`).
Both are compiled with today's code generator and timed in one run on their own connections, alternated,
with the thread's CPU time (the machine is shared), minimum of `--repeats`: `sum(score(client_id))` (the
row path, one call a client) and `sum(probability) FROM scores` (the portfolio table: blocks through the
batch engine). The ratio is blend / LightGBM part; max |diff| is each against its model's calibrated
LightGBM reference.

`--train` (the first measurement's method): `credit train` twice with the same seed, `--candidates lightgbm`
and the default candidates (where the blend wins: the same search, so the same LightGBM trees).

Run: python -m benchmarks.blend_sql [--repeats 7] [--train]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import calibrated_reference
from benchmarks.models import project_matrix, project_pipeline


def run(repeats: int = 7, clients: int = 20_000) -> dict:
    import lightgbm as lgb

    from app.model.compile import compile_model
    from app.model.train import train
    from app.scoring.db import connect

    pipe = project_pipeline(clients)
    ids, X = project_matrix(pipe.db)
    work = Path(tempfile.mkdtemp(prefix="bench-blend-"))
    models = {"lightgbm": ("lightgbm",), "default": None}
    conns, out = {}, {}
    for name, candidates in models.items():
        kw = {"candidates": candidates} if candidates else {}
        manifest = train(pipe.db, work / name, seed=42, progress=False, **kw)
        compile_model(work / name, progress=False)
        conns[name] = connect(pipe.db, work / name, readonly=True)
        booster = lgb.Booster(model_file=str(work / name / "model.txt"))
        by_sql = dict(conns[name].execute("SELECT client_id, score(client_id) FROM features"))
        got = np.array([by_sql[int(i)] for i in ids])
        out[name] = {
            "champion": manifest["champion"]["kind"],
            "trees": booster.num_trees(),
            "max_abs_diff": float(np.max(np.abs(got - calibrated_reference(booster, X, work / name)))),
            "times": [],
        }
    query = "SELECT sum(score(client_id)) FROM features"
    for _ in range(repeats):
        for name, conn in conns.items():
            t0 = time.perf_counter()
            conn.execute(query).fetchone()
            out[name]["times"].append(time.perf_counter() - t0)
    for row in out.values():
        row["us_per_row"] = min(row.pop("times")) / len(ids) * 1e6
    out["ratio_default_to_lightgbm"] = out["default"]["us_per_row"] / out["lightgbm"]["us_per_row"]
    return out


def _time_queries(conns: dict, n: int, repeats: int) -> dict[str, dict[str, float]]:
    queries = {"score()": "SELECT sum(score(client_id)) FROM features", "scores": "SELECT sum(probability) FROM scores"}
    times: dict[str, dict[str, list[float]]] = {name: {q: [] for q in queries} for name in conns}
    for _ in range(repeats):
        for q, sql in queries.items():
            for name, conn in conns.items():
                t0 = time.thread_time_ns()
                conn.execute(sql).fetchone()
                times[name][q].append((time.thread_time_ns() - t0) / 1e9)
    return {name: {q: min(v) / n * 1e6 for q, v in per.items()} for name, per in times.items()}


def run_parts(repeats: int = 7, clients: int = 20_000) -> dict:
    """The pipeline's blend champion against its own LightGBM part, both compiled now."""
    import shutil

    import lightgbm as lgb

    from app.model.compile import compile_model, prepare_model_dir
    from app.scoring.bundle import read_manifest
    from app.scoring.db import connect

    pipe = project_pipeline(clients)
    ids, X = project_matrix(pipe.db)
    params = read_manifest(pipe.model_dir)[0].params
    if params.get("kind") != "blend":
        raise SystemExit(f"the pipeline's champion is {params.get('kind')!r}, not a blend: use --train")
    booster = lgb.Booster(model_file=str(pipe.model_dir / "model.txt"))
    n_lgb = booster.num_trees() - int(params["scorecard"]["used"])
    work = Path(tempfile.mkdtemp(prefix="bench-blend-"))
    shutil.copytree(pipe.model_dir, work / "blend", ignore=shutil.ignore_patterns("*.so", "build"))
    (work / "part.txt").write_text(booster.model_to_string(num_iteration=n_lgb))
    prepare_model_dir(work / "part.txt", work / "lightgbm")
    out, conns = {}, {}
    for name in ("lightgbm", "blend"):
        d = work / name
        compile_model(d, progress=False)
        conns[name] = connect(pipe.db, d, readonly=True)
        b = lgb.Booster(model_file=str(d / "model.txt"))
        by_sql = dict(conns[name].execute("SELECT client_id, probability FROM scores"))
        by_score = dict(conns[name].execute("SELECT client_id, score(client_id) FROM features"))
        got = np.array([by_sql[int(i)] for i in ids])
        out[name] = {
            "trees": b.num_trees(),
            "scores_equal_score": by_sql == by_score,
            "max_abs_diff": float(np.max(np.abs(got - calibrated_reference(b, X, d)))),
            "batch_path": read_manifest(d)[0].library.batch_path,
        }
    per_row = _time_queries(conns, len(ids), repeats)
    for name, conn in conns.items():
        conn.close()
        out[name]["us_per_row"] = per_row[name]
    out["ratio_score"] = per_row["blend"]["score()"] / per_row["lightgbm"]["score()"]
    out["ratio_scores_table"] = per_row["blend"]["scores"] / per_row["lightgbm"]["scores"]
    out["load"] = os.getloadavg()[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--train", action="store_true", help="train a LightGBM champion and a blend (slow)")
    args = ap.parse_args()
    if not args.train:
        res = run_parts(args.repeats)
        print(f"load {res['load']:.1f} (1 min); thread CPU time, min of {args.repeats}; µs a row")
        for name in ("lightgbm", "blend"):
            r = res[name]
            print(
                f"{name:9s} {r['trees']:4d} trees  score() {r['us_per_row']['score()']:.3f}  scores table "
                f"{r['us_per_row']['scores']:.3f}  ({r['batch_path']})  max |diff| {r['max_abs_diff']:.1e}  "
                f"scores == score(): {r['scores_equal_score']}"
            )
        print(
            f"ratio blend / LightGBM part: score() {res['ratio_score']:.3f}, "
            f"scores table {res['ratio_scores_table']:.3f}"
        )
        return
    res = run(args.repeats)
    for name in ("lightgbm", "default"):
        r = res[name]
        print(
            f"{name:9s} champion {r['champion']:9s} {r['trees']:5d} trees  {r['us_per_row']:.3f} µs/row  "
            f"max |diff| {r['max_abs_diff']:.1e}"
        )
    print(f"ratio default / lightgbm: {res['ratio_default_to_lightgbm']:.3f}")


if __name__ == "__main__":
    main()
