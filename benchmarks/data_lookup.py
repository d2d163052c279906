"""A stored client's lookup as the API runs it (`SELECT client_id, score_features(x), NULL, x FROM features WHERE
client_id = ?`), on a data connection opened as before issue 34 (read-only: SQLite locks the file, looks for a
hot journal and re-reads the change counter at every statement) and as the API opens it now (`immutable`,
app.scoring.db.connect), beside `SELECT ?` (a statement that reads no file). Thread CPU time per statement,
the two connections alternated, the minimum over `--repeats`.

Run: python -m benchmarks.data_lookup [--statements 5000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import time

from benchmarks.models import bench_pipeline

LOOKUP = "SELECT client_id, score_features(x), NULL, x FROM features WHERE client_id = ?"


def per_statement(conn, sql: str, ids: list[int], n: int) -> float:
    """Thread CPU µs per execute + fetchall of `sql` over `n` statements cycling through `ids`."""
    t0 = time.thread_time()
    for i in range(n):
        conn.execute(sql, (ids[i % len(ids)],)).fetchall()
    return (time.thread_time() - t0) / n * 1e6


def run(statements: int, repeats: int) -> list[dict]:
    from app.scoring.bundle import ModelBundle
    from app.scoring.db import connect

    pipe = bench_pipeline(quick=True)
    bundle = ModelBundle.load(pipe.model_dir)
    conns = {
        "read-only (before)": connect(pipe.db, bundle, readonly=True),
        "immutable (the API now)": connect(pipe.db, bundle, readonly=True, immutable=True),
    }
    first = next(iter(conns.values()))
    ids = [r[0] for r in first.execute("SELECT client_id FROM features ORDER BY random() LIMIT 500")]
    best: dict[tuple[str, str], float] = {}
    for _ in range(repeats):
        for name, conn in conns.items():
            for sql, label in ((LOOKUP, "stored client's lookup + score"), ("SELECT ?", "SELECT ? (no file read)")):
                us = per_statement(conn, sql, ids, statements)
                best[(name, label)] = min(best.get((name, label), float("inf")), us)
    for conn in conns.values():
        conn.close()
    return [{"connection": c, "statement": s, "cpu_us": round(us, 2)} for (c, s), us in best.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--statements", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rows = run(args.statements, args.repeats)
    for r in rows:
        print(f"{r['connection']:<26} {r['statement']:<32} {r['cpu_us']:8.2f} µs")
    by = {(r["connection"], r["statement"]): r["cpu_us"] for r in rows}
    before = by[("read-only (before)", "stored client's lookup + score")]
    now = by[("immutable (the API now)", "stored client's lookup + score")]
    print(f"lookup: {before / now:.2f}x cheaper immutable ({before - now:.1f} µs less a statement)")


if __name__ == "__main__":
    main()
