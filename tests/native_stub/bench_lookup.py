"""Measure score(client_id) in SQL: prepared-statement lookup vs cached sqlite3_blob lookup.

    .venv/bin/python tests/native_stub/bench_lookup.py                      # stand-in model (3 features)
    .venv/bin/python tests/native_stub/bench_lookup.py --model-dir DIR      # a compiled model (DIR/build/model*.c)

Builds app/scoring/native/score_ext.c twice with the model C (default, and -DSCORE_EXT_BLOB_LOOKUP), fills a
features table with random float32 rows (10% NaN), and reports the minimum over --repeat runs, in
microseconds per row, of:
  scan      SELECT sum(length(x)) FROM features              (cost of reading the rows)
  infer     SELECT sum(score_features(x)) FROM features      (read + inference, no lookup)
  seq       SELECT sum(score(client_id)) FROM features       (lookup by id + inference, id order)
  random    SELECT sum(score(id)) FROM temp.shuffled         (same, ids in random order)
  point     SELECT score(?) from Python, one client a call (median of 400 calls, min over runs)
  rowpt     SELECT x FROM features WHERE client_id = ? from Python (median; the same point query without the model)
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import apsw
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SHIM = ROOT / "app" / "scoring" / "native" / "score_ext.c"


def build(model_c: list[Path], out: Path, flags: list[str]) -> Path:
    cmd = [
        "gcc",
        "-shared",
        "-fPIC",
        "-std=gnu11",
        "-O2",
        "-fno-plt",
        *flags,
        "-o",
        str(out),
        *map(str, model_c),
        str(SHIM),
    ]
    subprocess.run([*cmd, "-lm"], check=True)
    return out


def make_db(path: Path, n_rows: int, n_features: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    conn = apsw.Connection(str(path))
    conn.pragma("journal_mode", "wal")  # as app.scoring.db.connect sets it
    with conn:
        conn.execute("CREATE TABLE features(client_id INTEGER PRIMARY KEY, x BLOB NOT NULL)")
        for start in range(0, n_rows, 10_000):
            k = min(10_000, n_rows - start)
            X = rng.normal(size=(k, n_features)).astype("<f4")
            X[rng.random(X.shape) < 0.1] = np.nan
            conn.executemany(
                "INSERT INTO features VALUES (?, ?)", ((100_000 + start + i, X[i].tobytes()) for i in range(k))
            )
    conn.close()


def best(conn: apsw.Connection, sql: str, repeat: int) -> tuple[float, object]:
    times = []
    value = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = conn.execute(sql).fetchone()[0]
        times.append(time.perf_counter() - t0)
    return min(times), value


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.model_dir is None:
            model_c, n_features, label = [HERE / "stub_model.c"], 3, "stub (3 features, 2 trees)"
        else:
            manifest = json.loads((args.model_dir / "manifest.json").read_text())
            model_c = sorted((args.model_dir / "build").glob("model*.c"))  # generated model C (one or more files)
            n_features = int(manifest["n_features"])
            label = f"{args.model_dir} ({n_features} features)"
        libs = {
            "prepared stmt": build(model_c, tmp / "stmt.so", []),
            "blob_reopen": build(model_c, tmp / "blob.so", ["-DSCORE_EXT_BLOB_LOOKUP"]),
        }
        db = tmp / "bench.db"
        make_db(db, args.rows, n_features)
        print(f"model: {label}; rows: {args.rows}; min of {args.repeat} interleaved runs; us per row")
        print(f"{'lookup':14} {'scan':>7} {'infer':>7} {'seq':>7} {'random':>7} {'point':>7} {'rowpt':>7}  sum")
        conns = {}
        for name, so in libs.items():
            conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
            conn.enable_load_extension(True)
            conn.load_extension(str(so), "sqlite3_score_init")
            conn.enable_load_extension(False)
            conn.execute("CREATE TEMP TABLE shuffled(id INTEGER)")
            conns[name] = conn
        ids = [r[0] for r in conns["prepared stmt"].execute("SELECT client_id FROM features")]
        rng = np.random.default_rng(1)
        shuffled = [(int(i),) for i in rng.permutation(ids)]
        points = [int(i) for i in rng.choice(ids, 2000)]
        n = len(ids)
        queries = {
            "scan": "SELECT sum(length(x)) FROM features",
            "infer": "SELECT sum(score_features(x)) FROM features",
            "seq": "SELECT sum(score(client_id)) FROM features",
            "random": "SELECT sum(score(id)) FROM temp.shuffled",
        }
        res = {name: {q: math.inf for q in [*queries, "point", "rowpt"]} for name in conns}
        sums = {}
        for conn in conns.values():
            conn.executemany("INSERT INTO shuffled VALUES (?)", shuffled)
        for _ in range(args.repeat):
            for name, conn in conns.items():
                r = res[name]
                for q, sql in queries.items():
                    t, value = best(conn, sql, 1)
                    r[q] = min(r[q], t / n * 1e6)
                    if q == "seq":
                        sums[name] = value
                point, rowpt = [], []
                for cid in points[:400]:
                    t0 = time.perf_counter()
                    conn.execute("SELECT score(?)", (cid,)).fetchone()
                    t1 = time.perf_counter()
                    conn.execute("SELECT x FROM features WHERE client_id = ?", (cid,)).fetchone()
                    rowpt.append(time.perf_counter() - t1)
                    point.append(t1 - t0)
                r["point"] = min(r["point"], float(np.median(point)) * 1e6)
                r["rowpt"] = min(r["rowpt"], float(np.median(rowpt)) * 1e6)
        for name, conn in conns.items():
            conn.close()
            print(f"{name:14} " + " ".join(f"{v:7.3f}" for v in res[name].values()) + f"  {sums[name]:.6f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
