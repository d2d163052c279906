"""SQL cost per row of a blend champion against the LightGBM champion it extends (issue 16 budget: SQL
scoring cost per row within 10 % for tree champions).

On the benchmark pipeline's 20,000 generated clients (benchmarks.models.project_pipeline), `credit train`
twice with the same seed: `--candidates lightgbm` and the default candidates (where the blend wins: the same
search, so the same LightGBM trees, plus the scorecard's one tree per used feature, all leaves scaled). Both
are compiled and timed with `SELECT sum(score(client_id)) FROM features` on their own connection, alternated,
minimum of `--repeats` passes. The ratio is blend / LightGBM; the max |diff| is each against its model's
calibrated LightGBM reference.

Run: python -m benchmarks.blend_sql [--repeats 7]
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    res = run(ap.parse_args().repeats)
    for name in ("lightgbm", "default"):
        r = res[name]
        print(
            f"{name:9s} champion {r['champion']:9s} {r['trees']:5d} trees  {r['us_per_row']:.3f} µs/row  "
            f"max |diff| {r['max_abs_diff']:.1e}"
        )
    print(f"ratio default / lightgbm: {res['ratio_default_to_lightgbm']:.3f}")


if __name__ == "__main__":
    main()
