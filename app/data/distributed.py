"""Features on Dask: the same SQL over Parquet partitions of the source tables, one task per partition of clients.

Two steps (docs/distributed.md):

1. ``credit partition DATA_DIR --out SOURCES`` splits the eight Home Credit CSVs by client into
   ``SOURCES/<table>/part-NNNNN.parquet`` (+ ``SOURCES/_sources.json``): partition k of every table holds
   the rows of the same clients (a range of SK_ID_CURR; bureau_balance follows its bureau credit), in the
   CSV's row order. The files are read in blocks with the types and checks of ``credit ingest``. A bank
   whose source tables are already in a data lake writes this layout directly.
2. ``credit features --sources SOURCES --out FEATURES --db FILE`` runs one Dask task per partition. The
   task loads its partition into an in-memory SQLite database with the very tables, types and indexes of
   ``credit ingest`` (``app.data.ingest``), runs the very feature code (``app.data.features.build_features``
   over ``sql/features*.sql``), and writes ``FEATURES/part-NNNNN.parquet`` (client_id, x float32[n]),
   ``FEATURES/_clients/`` and ``FEATURES/_labels/``. The driver then writes the export manifest that
   ``credit score-batch`` reads and the serving SQLite file (features, feature_names, clients, labels,
   meta, with the same fingerprints as ``credit ingest``).

Why one SQLite per partition rather than DuckDB or Dask dataframes: every feature aggregates one
client's rows only, so a partition by client is exact, and the same engine running the same SQL is
equal to the one-machine path bit for bit by construction (tests/test_distributed_features.py checks
every feature of every client). A second engine would need a second copy of each definition (or a
translator) and a proof that SQLite's and the other engine's arithmetic agree (average order, integer
division, text comparisons), which is exactly the drift the issue forbids; SQLite per partition also
keeps the memory of a task bounded by its partition. benchmarks/bench_distributed.py measures it.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from app.data import KAGGLE_FILES
from app.data.ingest import (
    ARROW_TYPES,
    KEYS,
    NON_FINITE,
    IngestError,
    IngestWarning,
    batch_rows,
    check_not_truncated,
    first_non_finite,
    iter_batches,
    load_schema,
    raw_table_ddl,
    read_header,
    table_name,
)

SOURCES_FILE = "_sources.json"
SOURCES_FORMAT = "credit-sources-parquet/1"
DEFAULT_CLIENTS_PER_PARTITION = 20_000
FLUSH_ROWS = 200_000  # rows buffered per partition before they are written as one row group
CLIENTS_DIR = "_clients"
LABELS_DIR = "_labels"


class DistributedError(IngestError):
    """A partitioned build that cannot proceed (the message says why)."""


# --------------------------------------------------------------------------------------------
# 1. Partition the source tables by client


def _csv_paths(data_dir: Path) -> dict[str, Path]:
    if not data_dir.is_dir():
        raise DistributedError(f"data folder not found: {data_dir}")
    by_lower = {p.name.lower(): p for p in data_dir.iterdir() if p.is_file()}
    paths = {name: by_lower.get(name.lower(), data_dir / name) for name in KAGGLE_FILES}
    absent = [name for name, path in paths.items() if not path.is_file()]
    if absent:
        raise DistributedError(f"missing file(s) in {data_dir}: {', '.join(absent)}")
    return paths


def _checked_batches(
    path: Path, file_name: str, columns: list[tuple[str, str]], keys: tuple[str, ...], *, warn_extra: bool = True
):
    """Record batches of `columns` with the checks of `credit ingest` (header, empty keys, non-finite numbers)."""
    check_not_truncated(path, file_name)
    header = read_header(path, file_name)
    missing = [c for c, _ in columns if c not in header]
    if missing:
        raise DistributedError(f"{file_name}: missing column(s) {', '.join(missing)}")
    dup = sorted({c for c in header if header.count(c) > 1 and c in dict(columns)})
    if dup:
        raise DistributedError(f"{file_name}: column(s) appear twice in the header: {', '.join(dup)}")
    extra = [c for c in header if c not in dict(columns)]
    if extra and warn_extra:
        warnings.warn(f"{file_name}: ignoring extra column(s) {', '.join(extra)}", IngestWarning, stacklevel=3)
    rows = 0
    for batch in iter_batches(path, file_name, columns, header):
        for i, (c, _t) in enumerate(columns):
            arr = batch.column(i)
            if c in keys and arr.null_count:
                import pyarrow.compute as pc

                first = pc.index(pc.is_null(arr), True).as_py()
                raise DistributedError(f"{file_name} line {rows + first + 2} column {c}: the key is empty")
            first = first_non_finite(arr)
            if first is not None:
                raise DistributedError(
                    f"{file_name} line {rows + first + 2} column {c}: {arr[first].as_py()!r} {NON_FINITE}"
                )
        yield rows, batch
        rows += batch.num_rows


class _PartWriters:
    """One Parquet file per partition of one table, written in row groups of up to FLUSH_ROWS rows."""

    def __init__(self, folder: Path, schema, n_parts: int) -> None:
        self.folder, self.schema, self.n_parts = folder, schema, n_parts
        folder.mkdir(parents=True, exist_ok=True)
        self.buffers: list[list] = [[] for _ in range(n_parts)]
        self.buffered = np.zeros(n_parts, np.int64)
        self.rows = np.zeros(n_parts, np.int64)
        self.writers: dict[int, Any] = {}

    def add(self, batch, parts: np.ndarray) -> None:
        import pyarrow as pa

        keep = parts >= 0
        order = np.argsort(parts, kind="stable")  # stable: each partition keeps the file's row order
        order = order[keep[order]]
        sorted_parts = parts[order]
        taken = batch.take(pa.array(order))
        starts = np.searchsorted(sorted_parts, np.arange(self.n_parts + 1))
        for k in np.nonzero(np.diff(starts))[0]:
            piece = taken.slice(int(starts[k]), int(starts[k + 1] - starts[k]))
            self.buffers[k].append(piece)
            self.buffered[k] += piece.num_rows
            if self.buffered[k] >= FLUSH_ROWS:
                self._flush(int(k))

    def _flush(self, k: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if k not in self.writers:
            self.writers[k] = pq.ParquetWriter(self.folder / f"part-{k:05d}.parquet", self.schema, compression="snappy")
        if self.buffers[k]:
            table = pa.Table.from_batches(self.buffers[k], schema=self.schema)
            self.writers[k].write_table(table, row_group_size=max(table.num_rows, 1))
            self.rows[k] += table.num_rows
        self.buffers[k], self.buffered[k] = [], 0

    def close(self) -> list[int]:
        for k in range(self.n_parts):
            self._flush(k)  # also creates the (empty) file of a partition with no rows
            self.writers[k].close()
        return [int(r) for r in self.rows]


def partition_sources(
    data_dir: Path,
    out_dir: Path,
    *,
    clients_per_partition: int = DEFAULT_CLIENTS_PER_PARTITION,
    progress: bool = True,
) -> dict[str, Any]:
    """Split the eight Home Credit CSVs of data_dir into per-client Parquet partitions (atomic); the manifest."""
    import pyarrow as pa
    from tqdm import tqdm

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if clients_per_partition < 1:
        raise DistributedError("--clients-per-partition must be >= 1")
    paths = _csv_paths(data_dir)
    schema = load_schema()
    # the partition bounds: every client id of the applications, in ranges of clients_per_partition
    ids = []
    for name in ("application_train.csv", "application_test.csv"):
        for _rows, batch in _checked_batches(
            paths[name], name, [("SK_ID_CURR", "int64")], ("SK_ID_CURR",), warn_extra=False
        ):
            ids.append(batch.column(0).to_numpy())
    clients = np.unique(np.concatenate(ids)) if ids else np.empty(0, np.int64)
    if len(clients) == 0:
        raise DistributedError("application_train.csv: the file has a header but no data rows")
    bounds = clients[clients_per_partition::clients_per_partition]  # first id of partitions 1..n-1
    n_parts = len(bounds) + 1
    counts = np.diff(np.concatenate([[0], np.searchsorted(clients, bounds), [len(clients)]]))

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        tables: dict[str, Any] = {}
        bureau_ids: list[np.ndarray] = []
        bureau_parts: list[np.ndarray] = []
        bureau_lookup: tuple[np.ndarray, np.ndarray] | None = None
        orphans = 0
        total = sum(p.stat().st_size for p in paths.values())
        with tqdm(total=total, unit="B", unit_scale=True, desc="partition", disable=not progress or None) as bar:
            for file_name in KAGGLE_FILES:
                columns = schema[file_name]
                table = table_name(file_name)
                keys = KEYS.get(table, ())
                arrow_schema = pa.schema([(c, ARROW_TYPES[t]) for c, t in columns])
                writers = _PartWriters(tmp / table, arrow_schema, n_parts)
                names = [c for c, _ in columns]
                for rows, batch in _checked_batches(paths[file_name], file_name, columns, keys):
                    if table == "application_train":
                        _check_target(batch, rows)
                    if table == "bureau_balance":
                        if bureau_lookup is None:
                            bureau_lookup = _bureau_lookup(bureau_ids, bureau_parts)
                        parts = _lookup(bureau_lookup, batch.column(names.index("SK_ID_BUREAU")).to_numpy())
                        orphans += int((parts < 0).sum())
                    else:
                        parts = np.searchsorted(
                            bounds, batch.column(names.index("SK_ID_CURR")).to_numpy(), side="right"
                        )
                    if table == "bureau":
                        bureau_ids.append(batch.column(names.index("SK_ID_BUREAU")).to_numpy())
                        bureau_parts.append(parts)
                    writers.add(batch, parts)
                    bar.update(min(8 << 20, bar.total - bar.n))
                tables[table] = {"columns": columns, "rows": writers.close()}
            bar.update(bar.total - bar.n)
        manifest = {
            "format": SOURCES_FORMAT,
            "source": "home-credit",
            "data_dir": str(data_dir.resolve()),
            "clients": int(len(clients)),
            "clients_per_partition": clients_per_partition,
            "partitions": [
                {
                    "index": k,
                    "file": f"part-{k:05d}.parquet",
                    "clients": int(counts[k]),
                    "first_client_id": int(clients[0] if k == 0 else bounds[k - 1]),
                    "rows": {t: info["rows"][k] for t, info in tables.items()},
                }
                for k in range(n_parts)
            ],
            "tables": {t: info["columns"] for t, info in tables.items()},
            "bureau_balance_rows_without_bureau_credit": orphans,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tmp / SOURCES_FILE).write_text(json.dumps(manifest, indent=2))
        _replace_dir(tmp, out_dir, SOURCES_FILE)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _check_target(batch, rows: int) -> None:
    target = batch.column(batch.schema.get_field_index("TARGET")).to_numpy(zero_copy_only=False)
    bad = np.nonzero(~np.isin(target, (0, 1)))[0]
    if len(bad):
        i = int(bad[0])
        value = batch.column(batch.schema.get_field_index("TARGET"))[i].as_py()
        raise DistributedError(
            f"application_train.csv line {rows + i + 2} column TARGET: must be 0 or 1, got {value!r}"
        )


def _bureau_lookup(ids: list[np.ndarray], parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    all_ids = np.concatenate(ids) if ids else np.empty(0, np.int64)
    all_parts = np.concatenate(parts) if parts else np.empty(0, np.int64)
    order = np.argsort(all_ids, kind="stable")
    all_ids, all_parts = all_ids[order], all_parts[order]
    same = all_ids[1:] == all_ids[:-1]
    split = np.nonzero(same & (all_parts[1:] != all_parts[:-1]))[0]
    if len(split):
        raise DistributedError(
            f"bureau.csv column SK_ID_BUREAU: credit {int(all_ids[split[0]])} belongs to clients of two "
            "partitions; a bureau credit id must name one client's credit"
        )
    keep = np.concatenate([[True], ~same])
    return all_ids[keep], all_parts[keep]


def _lookup(lookup: tuple[np.ndarray, np.ndarray], keys: np.ndarray) -> np.ndarray:
    ids, parts = lookup
    if len(ids) == 0:
        return np.full(len(keys), -1, np.int64)
    pos = np.minimum(np.searchsorted(ids, keys), len(ids) - 1)
    return np.where(ids[pos] == keys, parts[pos], -1)


def read_sources_manifest(sources_dir: Path) -> dict[str, Any]:
    from app.features_parquet import read_format_manifest

    return read_format_manifest(
        sources_dir, SOURCES_FILE, SOURCES_FORMAT, made_by="credit partition", error=DistributedError
    )


def _replace_dir(tmp: Path, out: Path, marker: str) -> None:
    """Move the finished tmp folder to out; an existing previous output (holding `marker`) is replaced."""
    if out.exists():
        if any(out.iterdir()) and not (out / marker).is_file():
            raise DistributedError(f"{out} exists and is not a previous output of this command; refusing to replace it")
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


# --------------------------------------------------------------------------------------------
# 2. One task: one partition's features with the one-machine code (runs on a Dask worker)


def partition_database(sources_dir: str, part: dict[str, Any], tables: dict[str, list]):
    """An in-memory SQLite database holding one partition's raw tables exactly as `credit ingest` makes them."""
    import apsw
    import pyarrow.parquet as pq

    from app.data.features import read_sql
    from app.data.ingest import _check_applications, create_indexes

    conn = apsw.Connection(":memory:")
    conn.execute(read_sql("schema.sql"))
    conn.execute("BEGIN")
    for table, columns in tables.items():
        conn.execute(raw_table_ddl(table, [tuple(c) for c in columns]))
        insert = f'INSERT INTO "{table}" VALUES ({", ".join("?" * len(columns))})'
        dtypes = [t for _, t in columns]
        source = pq.ParquetFile(Path(sources_dir) / table / part["file"])
        for batch in source.iter_batches(batch_size=65_536, columns=[c for c, _ in columns]):
            conn.executemany(insert, batch_rows(batch, dtypes))
    conn.execute("COMMIT")
    _check_applications(conn)
    create_indexes(conn, list(tables))
    return conn


def build_partition(sources_dir: str, out_dir: str, part: dict[str, Any], tables: dict[str, list]) -> dict[str, Any]:
    """Features, clients and labels of one partition of clients, written as Parquet (atomic per file)."""
    from app.data.features import build_features, load_matrix

    t0, c0 = time.perf_counter(), time.process_time()
    conn = partition_database(sources_dir, part, tables)
    try:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO labels(client_id, target) SELECT SK_ID_CURR, TARGET FROM application_train")
        names = build_features(conn, progress=False)
        conn.execute("COMMIT")
        ids, X, _y, _names = load_matrix(conn, labelled_only=False)
        clients_ddl = conn.execute("SELECT sql FROM sqlite_schema WHERE name = 'clients'").fetchone()[0]
        clients = _query_table(conn, "SELECT * FROM clients ORDER BY client_id")
        labels = _query_table(conn, "SELECT client_id, target FROM labels ORDER BY client_id")
    finally:
        conn.close()
    from app.features_parquet import features_table as _features_table

    out = Path(out_dir)
    sha = _write_atomic(_features_table(ids, X), out / part["file"])
    _write_atomic(clients, out / CLIENTS_DIR / part["file"])
    _write_atomic(labels, out / LABELS_DIR / part["file"])
    return {
        "index": part["index"],
        "file": part["file"],
        "rows": int(len(ids)),
        "sha256": sha,
        "names": names,
        "clients_ddl": clients_ddl,
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
        "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "pid": os.getpid(),
    }


_ARROW_OF_DECL = {"INTEGER": "int64", "REAL": "float64", "TEXT": "string"}


def _query_table(conn, sql: str):
    """A pyarrow table from a query over one table (types from the declared column types)."""
    import pyarrow as pa

    cur = conn.cursor()
    cur.execute(sql)
    desc = cur.getdescription()
    rows = cur.fetchall()
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in desc]
    arrays = [
        pa.array(list(values), type=pa.type_for_alias(_ARROW_OF_DECL.get((decl or "").upper(), "string")))
        for (_name, decl), values in zip(desc, cols, strict=True)
    ]
    return pa.Table.from_arrays(arrays, names=[d[0] for d in desc])


def _write_atomic(table, path: Path) -> str:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, tmp, row_group_size=max(table.num_rows, 1), compression="snappy")
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return digest


# --------------------------------------------------------------------------------------------
# 3. The driver


def build_features_on_dask(
    sources_dir: Path,
    out_dir: Path,
    db_path: Path,
    *,
    scheduler: str | None = None,
    workers: int = 2,
    log_db: Path | None = None,
    retries: int = 1,
    progress: bool = True,
    notify: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every partition's features on the cluster, then the export manifest and the serving SQLite file.

    Returns a summary: rows, partitions, wall seconds of the cluster part, CPU seconds summed over the
    tasks, the largest worker RSS. Raises DistributedError (failed partitions are named)."""
    from app.cluster import dask_client, track

    sources_dir, out_dir, db_path = Path(sources_dir).resolve(), Path(out_dir).resolve(), Path(db_path)
    sources = read_sources_manifest(sources_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    t_start = time.perf_counter()
    try:
        with dask_client(scheduler=scheduler, workers=workers, notify=notify) as client:
            run = uuid.uuid4().hex[:8]
            t0 = time.perf_counter()
            futures = {
                client.submit(
                    build_partition,
                    str(sources_dir),
                    str(tmp),
                    part,
                    sources["tables"],
                    key=f"features-{part['index']:05d}-{run}",
                    retries=retries,
                    pure=False,
                ): part
                for part in sources["partitions"]
            }
            done, failed = track(futures, desc="features", weight=lambda p: p["clients"], progress=progress)
            seconds = time.perf_counter() - t0
        if failed:
            listed = "; ".join(f"{p['file']}: {type(e).__name__}: {e}" for p, e in failed[:5])
            raise DistributedError(f"{len(failed)} partition(s) failed: {listed}")
        results = sorted((r for _p, r in done), key=lambda r: r["index"])
        names = results[0]["names"]
        other = next((r for r in results if r["names"] != names), None)
        if other is not None:
            raise DistributedError(f"{other['file']}: its feature names differ from {results[0]['file']}'s")
        startup = t0 - t_start
        t_write = time.perf_counter()
        meta = write_serving_file(tmp, results, db_path, log_db=log_db, notify=notify)
        write_seconds = time.perf_counter() - t_write
        manifest = _export_manifest(names, results, db_path, meta)
        (tmp / "_manifest").mkdir(exist_ok=True)
        from app.features_parquet import FEATURES_FILE

        (tmp / FEATURES_FILE).write_text(json.dumps(manifest, indent=2))
        _replace_dir(tmp, out_dir, FEATURES_FILE)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {
        "rows": manifest["rows"],
        "n_features": len(names),
        "partitions": len(results),
        "seconds": seconds,
        "startup_seconds": startup,
        "write_seconds": write_seconds,
        "cpu_seconds": sum(r["cpu_seconds"] for r in results),
        "worker_peak_rss_mb": max(r["worker_peak_rss_mb"] for r in results),
        "workers": len({r["pid"] for r in results}),
        "data_fingerprint": meta["data_fingerprint"],
    }


def write_serving_file(
    parts_dir: Path,
    results: list[dict[str, Any]],
    db_path: Path,
    *,
    log_db: Path | None = None,
    notify: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """The SQLite serving file from the partitions' Parquet (replaced atomically, like `credit ingest`)."""
    import pyarrow.parquet as pq

    from app.data.features import data_fingerprint, home_credit_feature_sql
    from app.data.ingest import building_database, write_meta

    names = results[0]["names"]
    with building_database(Path(db_path), log_db, notify) as conn:
        conn.execute(results[0]["clients_ddl"])
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO feature_names(idx, name) VALUES (?, ?)", enumerate(names))
        for r in results:
            feats = pq.read_table(parts_dir / r["file"])
            ids = feats.column("client_id").to_numpy()
            X = feats.column("x").combine_chunks().flatten().to_numpy().reshape(len(ids), len(names))
            conn.executemany(
                "INSERT INTO features(client_id, x) VALUES (?, ?)",
                zip(ids.tolist(), (row.tobytes() for row in X), strict=True),
            )
            clients = pq.read_table(parts_dir / CLIENTS_DIR / r["file"])
            marks = ", ".join("?" * clients.num_columns)
            conn.executemany(
                f"INSERT INTO clients VALUES ({marks})", zip(*(c.to_pylist() for c in clients.columns), strict=True)
            )
            labels = pq.read_table(parts_dir / LABELS_DIR / r["file"])
            conn.executemany(
                "INSERT INTO labels(client_id, target) VALUES (?, ?)",
                zip(*(c.to_pylist() for c in labels.columns), strict=True),
            )
        write_meta(conn, "home-credit", data_fingerprint(conn), home_credit_feature_sql())
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        conn.execute("COMMIT")
    return meta


def _export_manifest(
    names: list[str], results: list[dict[str, Any]], db_path: Path, meta: dict[str, str]
) -> dict[str, Any]:
    from app.features_parquet import EXPORT_FORMAT

    return {
        "format": EXPORT_FORMAT,
        "features": names,
        "n_features": len(names),
        "rows": sum(r["rows"] for r in results),
        "partitions": [{"file": r["file"], "rows": r["rows"], "sha256": r["sha256"]} for r in results],
        "columns": {"client_id": "int64", "x": f"fixed_size_list<float32>[{len(names)}]"},
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source_db": str(Path(db_path).resolve()),
        "source": meta.get("source"),
        "data_fingerprint": meta.get("data_fingerprint"),
        "schema_fingerprint": meta.get("schema_fingerprint"),
        "built_by": "credit features (Dask, one task per partition of clients)",
    }
