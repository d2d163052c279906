"""SQL: `SELECT sum(score(client_id))` per row, the `scores` table (blocks through the batch engine),
`SELECT score(?)` point queries from Python, the C extension from the sqlite3 shell; against Booster.predict
in batch and one row at a time."""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import numpy as np

from benchmarks.common import calibrated_reference, timeit
from benchmarks.models import bench_pipeline, project_matrix


def run(quick: bool) -> list[dict]:
    import lightgbm as lgb

    from app.scoring.db import connect

    pipe = bench_pipeline(quick)
    conn = connect(pipe.db, pipe.model_dir, readonly=True)
    n = conn.execute("SELECT count(*) FROM features").fetchone()[0]
    repeat = 2 if quick else 5
    rows = []

    t = timeit(lambda: conn.execute("SELECT sum(score(client_id)) FROM features").fetchone(), repeat=repeat)
    sql_sum = conn.execute("SELECT sum(score(client_id)) FROM features").fetchone()[0]
    rows.append({"name": "SQL sum(score(client_id)), all in", "rows": n, "us_per_row": t["min"] / n * 1e6})

    ids = [r[0] for r in conn.execute("SELECT client_id FROM features ORDER BY random() LIMIT 1000")]
    per_call = []
    for cid in ids[: 100 if quick else 1000]:
        t0 = time.perf_counter_ns()
        conn.execute("SELECT score(?)", (cid,)).fetchone()
        per_call.append((time.perf_counter_ns() - t0) / 1e3)
    rows.append(
        {
            "name": "SQL SELECT score(?) point query from Python",
            "us_per_query_median": float(np.median(per_call)),
            "us_per_query_p99": float(np.percentile(per_call, 99)),
        }
    )

    booster = lgb.Booster(model_file=str(pipe.model_dir / "model.txt"))
    matrix_ids, X = project_matrix(pipe.db)
    t_batch = timeit(lambda: booster.predict(X, num_threads=1), repeat=repeat)
    expected = calibrated_reference(booster, X, pipe.model_dir)  # score() returns the calibrated PD
    by_sql = dict(conn.execute("SELECT client_id, score(client_id) FROM features"))
    got = np.array([by_sql[int(i)] for i in matrix_ids])
    rows[0]["max_abs_diff"] = float(np.max(np.abs(got - expected)))
    # the portfolio table: blocks through the batch engine, bit for bit score() (docs/performance.md)
    t_table = timeit(lambda: conn.execute("SELECT sum(probability) FROM scores").fetchone(), repeat=repeat)
    by_table = dict(conn.execute("SELECT client_id, probability FROM scores"))
    got_table = np.array([by_table[int(i)] for i in matrix_ids])
    rows.insert(
        1,
        {
            "name": "SQL sum(probability) FROM scores (batch engine), all in",
            "rows": n,
            "us_per_row": t_table["min"] / n * 1e6,
            "max_abs_diff": float(np.max(np.abs(got_table - expected))),
            "equals_score": by_table == by_sql,
        },
    )
    if by_table != by_sql:
        rows[1]["max_abs_diff"] = float("inf")  # a correctness failure of the quick pass
    rows.append(
        {
            "name": "Booster.predict batch, 1 thread (matrix already loaded)",
            "rows": n,
            "us_per_row": t_batch["min"] / n * 1e6,
        }
    )
    singles = X[: 100 if quick else 1000]
    t0 = time.perf_counter()
    for r in singles:
        booster.predict(r.reshape(1, -1), num_threads=1)
    rows.append(
        {"name": "Booster.predict one row at a time", "us_per_row": (time.perf_counter() - t0) / len(singles) * 1e6}
    )

    sqlite3 = shutil.which("sqlite3")
    if sqlite3:
        script = f".load {pipe.model_dir / 'score'}\n.timer on\nSELECT sum(score(client_id)) FROM features;\n"
        out = subprocess.run([sqlite3, str(pipe.db)], input=script, capture_output=True, text=True, check=True).stdout
        real = float(re.search(r"Run Time: real ([\d.]+)", out).group(1))
        shell_sum = float(out.strip().splitlines()[0])
        rows.append(
            {
                "name": "sqlite3 shell + C extension, sum(score(client_id))",
                "rows": n,
                "us_per_row": real / n * 1e6,
                "sum_abs_diff": abs(shell_sum - sql_sum),
            }
        )
    conn.close()
    base = next(r for r in rows if r["name"].startswith("Booster.predict batch"))["us_per_row"]
    for row in rows:
        if "us_per_row" in row:
            row["ratio_vs_booster_batch"] = row["us_per_row"] / base
    return rows
