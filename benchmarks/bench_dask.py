"""Portfolio scoring on Dask: rows/s with 1 and 2 local worker processes vs one process.

python -m benchmarks.bench_dask [--quick] [--rows N] [--rows-per-partition N] [--trees N]

Rows are generated with numpy (resampled rows of the fixed 200-feature model's training matrix,
NaNs included) and written straight to Parquet partitions with app.scoring.batch.PartitionWriter (the
layout `credit export` writes); no ingest. Engines, all on the same rows:
  - one process, CompiledModel.predict over the matrix already in memory (pure compute);
  - one process, read each Parquet partition + predict (the same I/O as a Dask task, no Dask);
  - `credit score-batch` (app.scoring.batch.run_batch) on a LocalCluster with 1 and 2 worker processes,
    one thread each; the time is submit -> last partition written, cluster start-up and model
    shipping reported apart.
It also times the two Parquet layouts a worker could read (one fixed_size_list<float32> column,
which `credit export` writes, vs one float32 column per feature).
Nothing here fails on a time; it fails only if the Dask scores differ from CompiledModel.predict.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine
from benchmarks.models import large_model


def _make_partitions(out: Path, X_src: np.ndarray, names: list[str], rows: int, per_part: int, seed: int = 0):
    from app.scoring.batch import PartitionWriter

    rng = np.random.default_rng(seed)
    writer = PartitionWriter(out, names, source={"source_db": "benchmarks/bench_dask.py (generated)"})
    parts = []
    start = 0
    while start < rows:
        n = min(per_part, rows - start)
        X = np.ascontiguousarray(X_src[rng.integers(0, len(X_src), n)])
        ids = np.arange(start, start + n, dtype=np.int64) + 100_000
        writer.write(ids, X)
        parts.append((ids, X))
        start += n
    writer.finish()
    return parts


def _layout_rows(tmp: Path, ids: np.ndarray, X: np.ndarray, names: list[str], repeat: int) -> list[dict]:
    """Parquet read -> C-contiguous float32 matrix, for the two layouts, one partition."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from app.scoring.batch import _features_table

    a, b = tmp / "list.parquet", tmp / "columns.parquet"
    pq.write_table(_features_table(ids, X), a, row_group_size=len(ids))
    cols = [pa.array(ids)] + [pa.array(X[:, j]) for j in range(X.shape[1])]
    pq.write_table(pa.Table.from_arrays(cols, names=["client_id", *names]), b, row_group_size=len(ids))

    def read_list():
        x = pq.read_table(a).column("x").combine_chunks()
        return x.values.to_numpy().reshape(-1, X.shape[1])

    def read_columns():
        t = pq.read_table(b, columns=names)
        return np.ascontiguousarray(np.column_stack([t.column(n).to_numpy() for n in names]), dtype=np.float32)

    out = []
    for label, fn, path in (
        ("Parquet -> matrix, fixed_size_list<float32> column x (used)", read_list, a),
        ("Parquet -> matrix, one float32 column per feature", read_columns, b),
    ):
        assert np.array_equal(fn().view(np.uint32), X.view(np.uint32))
        best = min(_timed(fn) for _ in range(repeat))
        out.append(
            {
                "name": label,
                "rows": len(ids),
                "seconds": best,
                "rows_per_s": len(ids) / best,
                "file_mb": path.stat().st_size / 1e6,
            }
        )
    return out


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(
    quick: bool = False, rows: int | None = None, per_part: int | None = None, trees: int | None = None
) -> list[dict]:
    import pyarrow.parquet as pq

    from app.scoring.batch import run_batch
    from app.scoring.bundle import load_model

    rows = rows or (10_000 if quick else 1_000_000)
    per_part = per_part or (2_500 if quick else 100_000)
    trees = trees or (100 if quick else 1000)
    model_dir, X_src = large_model(trees)
    model = load_model(model_dir)
    names = model.feature_names
    tmp = Path(tempfile.mkdtemp(prefix="bench-dask-"))
    results: list[dict] = []
    try:
        inp = tmp / "features"
        t0 = time.perf_counter()
        parts = _make_partitions(inp, X_src, names, rows, per_part)
        gen_s = time.perf_counter() - t0
        print(f"generated {rows:,} rows in {len(parts)} partitions in {gen_s:.1f} s", file=sys.stderr)

        expected = np.concatenate([model.predict(X) for _ids, X in parts])
        best = min(_timed(lambda: [model.predict(X) for _ids, X in parts]) for _ in range(1 if rows > 200_000 else 3))
        results.append({"name": "1 process, CompiledModel.predict (matrix in memory)", "rows": rows, "seconds": best})

        def read_and_predict():
            for f in sorted(inp.glob("part-*.parquet")):
                x = pq.read_table(f).column("x").combine_chunks()
                model.predict(np.ascontiguousarray(x.values.to_numpy().reshape(-1, len(names))))

        best = min(_timed(read_and_predict) for _ in range(1 if rows > 200_000 else 3))
        results.append({"name": "1 process, read Parquet + predict (no Dask)", "rows": rows, "seconds": best})

        for workers in (2,) if quick else (1, 2):  # quick: the 1-worker cluster runs the same code
            out = tmp / f"scores-{workers}"
            res = run_batch(inp, out, model_dir, workers=workers, threads_per_worker=1, progress=False)
            if res.failed:
                raise RuntimeError(f"dask run with {workers} workers failed: {res.failed}")
            got = np.concatenate(
                [pq.read_table(f).column("probability").to_numpy() for f in sorted(out.glob("part-*"))]
            )
            results.append(
                {
                    "name": f"Dask LocalCluster, {workers} worker process{'es' if workers > 1 else ''} x 1 thread",
                    "rows": rows,
                    "seconds": res.seconds,
                    "startup_s": res.startup_seconds,
                    "max_abs_diff": float(np.max(np.abs(got - expected))),
                }
            )
        ids, X = parts[0]
        results += _layout_rows(tmp, ids, X, names, repeat=1 if quick else 3)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = results[0]["seconds"]
    for r in results:
        r.setdefault("rows_per_s", r["rows"] / r["seconds"])
        if "startup_s" in r or r is results[0] or r is results[1]:
            r["vs_1_process_in_memory"] = base / r["seconds"]
        r["model"] = f"large-{trees}x63x200"
    return results


def print_table(results: list[dict]) -> None:
    print("| what | rows | s | rows/s | vs 1 process | start-up s | max abs diff |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        ratio = f"{r['vs_1_process_in_memory']:.2f}x" if "vs_1_process_in_memory" in r else ""
        startup = f"{r['startup_s']:.1f}" if "startup_s" in r else ""
        diff = f"{r['max_abs_diff']:.3g}" if "max_abs_diff" in r else ""
        rate = f"{r['rows_per_s']:,.0f}"
        print(f"| {r['name']} | {r['rows']:,} | {r['seconds']:.3f} | {rate} | {ratio} | {startup} | {diff} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 rows, 100-tree model, 2 workers only (CI)")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--rows-per-partition", type=int, default=None)
    parser.add_argument("--trees", type=int, default=None)
    args = parser.parse_args(argv)
    results = run(args.quick, args.rows, args.rows_per_partition, args.trees)
    m = machine()
    print(f"machine: {m['cores']} cores, {m['cpu']}, Python {m['python']}")
    try:
        import os

        print(f"load average before/after: {os.getloadavg()[0]:.2f} (shared machine: figures are noisy)")
    except OSError:
        pass
    print_table(results)
    bad = [r for r in results if r.get("max_abs_diff", 0) > 0]
    for r in bad:
        print(f"FAILED {r['name']}: max |diff| {r['max_abs_diff']:.3g}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
