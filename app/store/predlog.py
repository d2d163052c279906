"""Prediction log: every score the API serves is written here before the answer is sent.

Table `prediction_log` (sql/store/001_prediction_log.sql) lives in the operational store (app.store, its own
SQLite file, `--log-db`), never in the data database that `credit ingest` replaces. Each write is one
`BEGIN IMMEDIATE ... COMMIT` transaction (a batch request is one transaction for all its rows) on a
connection in WAL mode with a busy timeout, so several worker processes writing at once wait for the
write lock instead of failing with "database is locked". Commits use `synchronous=FULL`: once a
response has been sent, its row survives a crash or a power cut. The API writes through `GroupWriter`
(one thread per process): requests that arrive during a commit share the next one, so durability
costs about one fsync per burst rather than one per request.

Choice: when the log cannot be written (read-only database, disk full, missing table), the write
raises `PredictionLogError` and the API answers 503 {"error": "prediction log unavailable"} instead
of answering without a trace. A score that was served is a score that was logged.

Imports only the standard library, numpy and apsw (this is on the scoring path).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import apsw
import numpy as np

from app import store

BUSY_TIMEOUT_MS = 30_000
BUSY_RETRY_S = 0.0005  # pause between tries of a busy write lock
HIST_BINS = 10  # score histogram: [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0]


INSERT_SQL = (
    "INSERT INTO prediction_log (ts, request_id, client_id, features, probability, decision, model_id,"
    " latency_ms, role, endpoint, challenger_score, challenger_model_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class PredictionLogError(RuntimeError):
    """The prediction log could not be written (the request must fail, not be answered unlogged)."""


@dataclass(frozen=True, slots=True)
class LogRow:
    ts: float
    request_id: str
    client_id: int | None
    features: bytes  # float32 little-endian
    probability: float
    decision: str
    model_id: str
    latency_ms: float
    role: str
    endpoint: str
    challenger_score: float | None = None  # the shadow challenger's score of the same features (sql/store/004)
    challenger_model_id: str | None = None

    def as_tuple(self) -> tuple:
        return (
            self.ts,
            self.request_id,
            self.client_id,
            self.features,
            self.probability,
            self.decision,
            self.model_id,
            self.latency_ms,
            self.role,
            self.endpoint,
            self.challenger_score,
            self.challenger_model_id,
        )


def prepare(conn: apsw.Connection) -> None:
    """Per-connection settings for log writers: retry a busy write lock often (for up to BUSY_TIMEOUT_MS),
    durable commits."""
    conn.set_busy_handler(_retry_every(BUSY_RETRY_S, BUSY_TIMEOUT_MS / 1000))
    conn.execute("PRAGMA synchronous = FULL")


def _retry_every(pause_s: float, limit_s: float):
    """A busy handler that waits `pause_s` between tries. SQLite's own (busy_timeout) backs off to 100 ms
    sleeps, so with two worker processes committing in turn a waiting commit often slept long after the
    lock was free: p99 0.5 s at 32 connections on 2 workers."""
    started = [0.0]

    def handler(tries: int) -> bool:
        now = time.monotonic()
        if tries == 0:
            started[0] = now
        if now - started[0] >= limit_s:
            return False
        time.sleep(pause_s)
        return True

    return handler


def ensure_schema(conn: apsw.Connection) -> None:
    """Bring a store connection's schema up to date (app.store migrations; idempotent, safe from several
    processes) in WAL mode, with the log writers' settings."""
    prepare(conn)
    mode = conn.execute("PRAGMA journal_mode").fetchall()[0][0]
    if str(mode).lower() != "wal":
        conn.execute("PRAGMA journal_mode = WAL").fetchall()
    store.migrate(conn)


def write(conn: apsw.Connection, rows: list[LogRow]) -> None:
    """Write rows in one BEGIN IMMEDIATE transaction; raise PredictionLogError on any failure."""
    if not rows:
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
    except apsw.Error as exc:
        raise PredictionLogError(f"{type(exc).__name__}: {exc}") from exc
    try:
        conn.executemany(INSERT_SQL, [r.as_tuple() for r in rows])
        conn.execute("COMMIT")
    except apsw.Error as exc:
        try:
            if not conn.get_autocommit():
                conn.execute("ROLLBACK")
        except apsw.Error:
            pass
        raise PredictionLogError(f"{type(exc).__name__}: {exc}") from exc


def check_writable(conn: apsw.Connection) -> str | None:
    """None when the log table exists and the write lock can be taken, else the reason."""
    try:
        conn.execute("SELECT 1 FROM prediction_log LIMIT 0").fetchall()
        if conn.readonly("main"):
            return "the database is open read-only"
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    except apsw.Error as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


LOG_COLUMNS = ("id", "ts", "request_id", "client_id", "probability", "decision", "model_id", "latency_ms", "role")


def latest(conn: apsw.Connection, limit: int) -> list[dict]:
    """The `limit` most recent rows, newest first, without the feature vectors."""
    cols = ", ".join(LOG_COLUMNS + ("endpoint",))
    cur = conn.execute(f"SELECT {cols} FROM prediction_log ORDER BY id DESC LIMIT ?", (limit,))
    names = LOG_COLUMNS + ("endpoint",)
    return [dict(zip(names, row, strict=True)) for row in cur]


def summary(conn: apsw.Connection, since: float | None = None, until: float | None = None) -> dict:
    """Request count, latency p50/p99, decisions, per-endpoint counts and a score histogram per hour."""
    until = time.time() if until is None else until
    since = 0.0 if since is None else since
    where = "ts >= ? AND ts <= ?"
    args = (since, until)
    lat = np.array([r[0] for r in conn.execute(f"SELECT latency_ms FROM prediction_log WHERE {where}", args)])
    count = int(lat.size)
    p50 = float(np.percentile(lat, 50)) if count else None
    p99 = float(np.percentile(lat, 99)) if count else None
    decisions = dict(conn.execute(f"SELECT decision, count(*) FROM prediction_log WHERE {where} GROUP BY 1", args))
    endpoints = dict(conn.execute(f"SELECT endpoint, count(*) FROM prediction_log WHERE {where} GROUP BY 1", args))
    hours: dict[int, list[int]] = {}
    for hour, b, n in conn.execute(
        f"SELECT CAST(ts / 3600 AS INTEGER), min(CAST(probability * {HIST_BINS} AS INTEGER), {HIST_BINS - 1}), count(*)"
        f" FROM prediction_log WHERE {where} GROUP BY 1, 2 ORDER BY 1, 2",
        args,
    ):
        hours.setdefault(int(hour), [0] * HIST_BINS)[max(int(b), 0)] += int(n)
    histogram = [
        {
            "hour": time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(h * 3600)),
            "hour_ts": float(h * 3600),
            "count": sum(c),
            "counts": c,
        }
        for h, c in sorted(hours.items())
    ]
    return {
        "since": since,
        "until": until,
        "requests": count,
        "latency_ms": {"p50": p50, "p99": p99},
        "decisions": {str(k): int(v) for k, v in decisions.items()},
        "endpoints": {str(k): int(v) for k, v in endpoints.items()},
        "bin_edges": [i / HIST_BINS for i in range(HIST_BINS + 1)],
        "score_histogram": histogram,
    }


class GroupWriter:
    """Group commit: one thread owns a write connection; callers submit rows and wait for their commit.

    Rows submitted while a commit is in progress are written together in the next transaction, so a
    burst of N concurrent requests costs about one durable commit (fsync) instead of N. Each submission
    is atomic (a batch request's rows are in the same transaction). If a group's commit fails, every
    submission of the group is retried alone so that one bad submission cannot fail the others.
    """

    MAX_GROUP = 2000  # rows per transaction, at most

    def __init__(self, db_path: str | Path):
        """`db_path` is the operational store (app.store), whose schema is already migrated."""
        import queue
        import threading

        self.db_path = str(db_path)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._threading = threading

    def submit(self, rows: list[LogRow]):
        """Queue rows; returns a concurrent.futures.Future resolved after COMMIT (or PredictionLogError)."""
        from concurrent.futures import Future

        fut: Future = Future()
        with self._lock:
            if self._thread is None:
                self._thread = self._threading.Thread(target=self._run, name="prediction-log", daemon=True)
                self._thread.start()
            self._queue.put((rows, fut))
        return fut

    def close(self, timeout: float = 30.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join(timeout)

    def _open(self) -> apsw.Connection:
        conn = apsw.Connection(self.db_path, flags=apsw.SQLITE_OPEN_READWRITE)
        prepare(conn)
        return conn

    def _run(self) -> None:
        import queue

        conn: apsw.Connection | None = None
        stop = False
        while not stop:
            item = self._queue.get()
            if item is None:
                break
            group = [item]
            n = len(item[0])
            while n < self.MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                group.append(nxt)
                n += len(nxt[0])
            try:
                if conn is None:
                    conn = self._open()
            except apsw.Error as exc:
                err = PredictionLogError(f"{type(exc).__name__}: {exc}")
                for _rows, fut in group:
                    fut.set_exception(err)
                continue
            try:
                write(conn, [r for rows, _fut in group for r in rows])
            except PredictionLogError:
                failed = False
                for rows, fut in group:  # isolate the failing submission(s)
                    try:
                        write(conn, rows)
                    except PredictionLogError as exc:
                        failed = True
                        fut.set_exception(exc)
                    else:
                        fut.set_result(None)
                if failed:  # e.g. opened while the file was read-only: the next group opens it afresh
                    conn.close()
                    conn = None
                continue
            for _rows, fut in group:
                fut.set_result(None)
        if conn is not None:
            conn.close()
