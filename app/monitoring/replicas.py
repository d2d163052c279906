"""Several API replicas judged together: each replica's log exported to Parquet, merged into one store on Dask.

Each replica serves from its own read-only copy of the serving file and writes its own operational store
(prediction log, logged vectors, outcomes). One view of all of them, for `credit drift`, `credit performance`
and fairness, is a merged operational store built in two steps (docs/distributed.md):

``credit logs export --log-db REPLICA_STORE --replica NAME --out LOGS`` (on each replica's machine, e.g. from
cron) appends the rows written since its last export to ``LOGS/NAME/``:

    log-<first id>-<last id>.parquet       prediction_log rows (every column, ids 15 digits)
    vectors-<first id>-<last id>.parquet   logged_vectors rows (the scored vectors of stored clients)
    outcomes.parquet                       a snapshot of the replica's outcomes (replaced each time)

The high-water mark *is* the files: an export reads rows with id above the largest ``<last id>`` present,
in one read transaction (a consistent snapshot of log and vectors), and writes each file under a temporary
name then renames it, so a crash leaves either a whole file or none (a stale temporary is ignored and
removed later). Two overlapping exports of the same replica write files whose id ranges overlap: harmless.

``credit logs merge --logs LOGS --log-db MERGED [--scheduler ADDRESS | --workers N]`` runs one Dask task per
replica: read its files newer than the merged store's mark, check each file's ids against its name, drop
repeated ids (overlaps), sort. The driver then inserts each replica's rows in one transaction that also
advances the replica's mark (``merged_replicas``): a crash rolls back the whole replica, never half of it.
Rows are inserted with INSERT OR IGNORE on ``request_id`` (unique across processes and replicas) and vectors
on (data_version, client_id), so a row is counted once however often it was exported or merged. Outcomes
take the store's own rule (app.monitoring.outcomes.UPSERT_SQL: the latest observation wins).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.errors import CreditError

REPLICA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
PART_NAME = re.compile(r"(log|vectors)-([0-9]{15})-([0-9]{15})\.parquet")
OUTCOMES_FILE = "outcomes.parquet"
ROWS_PER_FILE = 100_000
STALE_TMP_SECONDS = 3600
MARKS_DDL = (
    "CREATE TABLE IF NOT EXISTS merged_replicas ("
    " replica TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('log', 'vectors')),"
    " max_id INTEGER NOT NULL, rows_added INTEGER NOT NULL, merged_at REAL NOT NULL,"
    " PRIMARY KEY (replica, kind))"
)
_ARROW = {"INTEGER": "int64", "REAL": "float64", "TEXT": "string", "BLOB": "binary"}


class ReplicaLogError(CreditError, RuntimeError):
    """An export or merge of replica logs that cannot proceed (the message names the file)."""


def check_replica_name(name: str) -> str:
    if not REPLICA_NAME.fullmatch(name or ""):
        raise ReplicaLogError(
            f"replica name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-' (it names a folder), e.g. api-1"
        )
    return name


def parts(folder: Path, kind: str) -> list[tuple[int, int, Path]]:
    """(first id, last id, path) of the finished files of `kind` in a replica's folder, by first id."""
    found = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = PART_NAME.fullmatch(p.name)
            if m and m.group(1) == kind:
                found.append((int(m.group(2)), int(m.group(3)), p))
    return sorted(found)


def _mark(folder: Path, kind: str) -> int:
    return max((last for _first, last, _p in parts(folder, kind)), default=0)


def _columns(conn, table: str) -> list[tuple[str, str]]:
    return [(r[1], (r[2] or "BLOB").upper()) for r in conn.execute(f"PRAGMA table_info({table})")]


def _arrow_table(rows: list[tuple], columns: list[tuple[str, str]]):
    import pyarrow as pa

    cols = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    return pa.Table.from_arrays(
        [
            pa.array(list(v), type=pa.type_for_alias(_ARROW.get(t, "binary")))
            for (_n, t), v in zip(columns, cols, strict=True)
        ],
        names=[n for n, _ in columns],
    )


def _write_atomic(table, path: Path, fail_before_rename: Callable[[Path], None] | None = None) -> None:
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        if fail_before_rename is not None:
            fail_before_rename(path)  # tests: a crash between the write and the rename
        os.replace(tmp, path)
    except BaseException:
        if fail_before_rename is None:
            tmp.unlink(missing_ok=True)
        raise


def _remove_stale_tmp(folder: Path) -> None:
    now = time.time()
    for p in folder.glob(".*.tmp"):
        try:
            if now - p.stat().st_mtime > STALE_TMP_SECONDS:
                p.unlink()
        except FileNotFoundError:
            pass


def export_replica_log(
    store_path: Path,
    out_dir: Path,
    replica: str,
    *,
    since_id: int | None = None,
    rows_per_file: int = ROWS_PER_FILE,
    _fail_before_rename: Callable[[Path], None] | None = None,
) -> dict[str, Any]:
    """Append the replica's log rows (and vectors) newer than its exported mark to out_dir/replica/.

    since_id overrides the log mark (re-export from there; the merge drops the overlap)."""
    from app import store

    check_replica_name(replica)
    folder = Path(out_dir) / replica
    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(folder)
    log_mark = _mark(folder, "log") if since_id is None else since_id
    vec_mark = _mark(folder, "vectors") if since_id is None else 0
    try:
        conn = store.open_store(store_path, readonly=True)
    except store.StoreError as exc:
        raise ReplicaLogError(str(exc)) from None
    try:
        conn.execute("BEGIN")  # one snapshot: the vectors of every exported log row are in it
        log_cols = _columns(conn, "prediction_log")
        if not log_cols:
            raise ReplicaLogError(f"{store_path}: no prediction_log table (nothing logged yet?)")
        names = ", ".join(n for n, _ in log_cols)
        log_rows = conn.execute(f"SELECT {names} FROM prediction_log WHERE id > ? ORDER BY id", (log_mark,)).fetchall()
        vec_cols = _columns(conn, "logged_vectors")
        vec_rows = []
        if vec_cols:
            vnames = ", ".join(n for n, _ in vec_cols)
            vec_rows = conn.execute(
                f"SELECT {vnames} FROM logged_vectors WHERE id > ? ORDER BY id", (vec_mark,)
            ).fetchall()
        out_cols = _columns(conn, "outcomes")
        outcomes = conn.execute("SELECT * FROM outcomes ORDER BY client_id").fetchall() if out_cols else []
        conn.execute("COMMIT")
    finally:
        conn.close()
    written = []
    # vectors before the log rows that need them (a crash in between leaves vectors without rows: harmless)
    for kind, rows, cols in (("vectors", vec_rows, vec_cols), ("log", log_rows, log_cols)):
        for start in range(0, len(rows), rows_per_file):
            chunk = rows[start : start + rows_per_file]
            path = folder / f"{kind}-{chunk[0][0]:015d}-{chunk[-1][0]:015d}.parquet"
            _write_atomic(_arrow_table(chunk, cols), path, _fail_before_rename)
            written.append(path.name)
    if out_cols:
        _write_atomic(_arrow_table(outcomes, out_cols), folder / OUTCOMES_FILE)
    return {"replica": replica, "log_rows": len(log_rows), "vectors": len(vec_rows), "files": written}


# --------------------------------------------------------------------------------------------
# merge


def read_replica(folder: str, log_mark: int, vec_mark: int) -> dict[str, Any]:
    """One Dask task: a replica's rows newer than the merged marks, checked, without repeats, sorted by id."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out: dict[str, Any] = {"folder": folder}
    for kind, mark in (("log", log_mark), ("vectors", vec_mark)):
        tables = []
        for first, last, path in parts(Path(folder), kind):
            if last <= mark:
                continue
            try:
                t = pq.read_table(path)
            except (pa.ArrowException, OSError) as exc:
                raise ReplicaLogError(f"{path}: unreadable Parquet ({exc})") from None
            ids = t.column("id")
            if t.num_rows == 0 or pc.min(ids).as_py() != first or pc.max(ids).as_py() != last:
                raise ReplicaLogError(f"{path}: its ids do not match its name (a damaged or foreign file)")
            tables.append(t.filter(pc.greater(ids, mark)))
        if tables:
            t = pa.concat_tables(tables, promote_options="default").sort_by("id")
            ids = t.column("id").to_numpy()
            keep = np.concatenate([[True], ids[1:] != ids[:-1]])  # the same row from overlapping exports: once
            t = t if keep.all() else t.filter(pa.array(keep))
        else:
            t = None
        out[kind] = t
    path = Path(folder) / OUTCOMES_FILE
    out["outcomes"] = pq.read_table(path) if path.is_file() else None
    return out


def merge_replica_logs(
    log_dir: Path,
    merged_store: Path,
    *,
    scheduler: str | None = None,
    workers: int = 2,
    progress: bool = True,
    notify: Callable[[str], None] | None = None,
    _fail_after_replica: str | None = None,
) -> dict[str, Any]:
    """Merge every replica's exported log into the merged operational store (idempotent, crash-safe)."""
    from app import store
    from app.cluster import dask_client, track

    log_dir = Path(log_dir).resolve()
    if not log_dir.is_dir():
        raise ReplicaLogError(f"log folder not found: {log_dir}")
    replicas = sorted(p.name for p in log_dir.iterdir() if p.is_dir() and REPLICA_NAME.fullmatch(p.name))
    if not replicas:
        raise ReplicaLogError(f"{log_dir}: no replica folders (run `credit logs export` on each replica)")
    try:
        conn = store.open_store(merged_store)
    except store.StoreError as exc:
        raise ReplicaLogError(str(exc)) from None
    try:
        conn.execute(MARKS_DDL)
        marks = {(r, k): m for r, k, m in conn.execute("SELECT replica, kind, max_id FROM merged_replicas")}
        with dask_client(scheduler=scheduler, workers=workers, notify=notify) as client:
            futures = {
                client.submit(
                    read_replica,
                    str(log_dir / r),
                    marks.get((r, "log"), 0),
                    marks.get((r, "vectors"), 0),
                    key=f"replica-log-{r}-{uuid.uuid4().hex[:8]}",
                    pure=False,
                ): r
                for r in replicas
            }
            done, failed = track(futures, desc="replica logs", progress=progress)
        if failed:
            listed = "; ".join(f"{r}: {e}" for r, e in failed)
            raise ReplicaLogError(f"{len(failed)} replica(s) could not be read (nothing merged from them): {listed}")
        added = {}
        for replica, result in sorted(done, key=lambda d: d[0]):
            added[replica] = _insert_replica(conn, replica, result)
            if _fail_after_replica == replica:
                raise ReplicaLogError(f"simulated crash after merging {replica}")
        total = conn.execute("SELECT count(*) FROM prediction_log").fetchall()[0][0]
    finally:
        conn.close()
    return {"replicas": replicas, "added": added, "rows": total}


def _insert_replica(conn, replica: str, result: dict[str, Any]) -> dict[str, int]:
    from app.monitoring.outcomes import UPSERT_SQL

    target_log = [n for n, _ in _columns(conn, "prediction_log") if n != "id"]
    target_vec = [n for n, _ in _columns(conn, "logged_vectors") if n != "id"]
    counts = {"log": 0, "vectors": 0, "outcomes": 0}
    conn.execute("BEGIN IMMEDIATE")
    try:
        for kind, table, target in (
            ("vectors", "logged_vectors", target_vec),
            ("log", "prediction_log", target_log),
        ):
            t = result[kind]
            if t is None or t.num_rows == 0:
                continue
            cols = [c for c in target if c in t.column_names]
            before = conn.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            conn.executemany(
                f"INSERT OR IGNORE INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                zip(*(t.column(c).to_pylist() for c in cols), strict=True),
            )
            counts[kind] = conn.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] - before
            conn.execute(
                "INSERT INTO merged_replicas (replica, kind, max_id, rows_added, merged_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (replica, kind) DO UPDATE SET max_id = excluded.max_id, "
                "rows_added = merged_replicas.rows_added + excluded.rows_added, merged_at = excluded.merged_at",
                (replica, kind, int(t.column("id")[-1].as_py()), counts[kind], time.time()),
            )
        o = result["outcomes"]
        if o is not None and o.num_rows:
            cols = ["client_id", "defaulted", "observed_at", "source", "recorded_at"]
            conn.executemany(UPSERT_SQL, zip(*(o.column(c).to_pylist() for c in cols), strict=True))
            counts["outcomes"] = o.num_rows
        conn.execute("COMMIT")
    except BaseException:
        if not conn.get_autocommit():
            conn.execute("ROLLBACK")
        raise
    return counts
