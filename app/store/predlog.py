"""Prediction log: every score the API serves is written here before the answer is sent.

Table `prediction_log` (sql/store/001_prediction_log.sql) lives in the operational store (app.store, its own
SQLite file, `--log-db`), never in the data database that `credit ingest` replaces. Each write is one
`BEGIN IMMEDIATE ... COMMIT` transaction (a batch request is one transaction for all its rows) on a
connection in WAL mode with a busy timeout, so several worker processes writing at once wait for the
write lock instead of failing with "database is locked". Commits use `synchronous=FULL` by default
(CREDIT_LOG_DURABILITY=full: once a response has been sent, its row survives a crash or a power cut);
`normal` (synchronous=NORMAL) keeps every answered row across a crash or kill -9 of the process, not a power cut.
The API writes through `GroupWriter` (one thread per process): the requests the event loop has in hand are
handed over as one group, groups queued during a commit share the next one, and each group is answered with
one wake-up of the loop, so durability costs about one fsync per burst rather than one per request
(app/store/group_writer.py). Reports on the log (latest rows, summaries) are app/monitoring/log_reports.py's.

Choice: when the log cannot be written (read-only database, disk full, missing table), the write
raises `PredictionLogError` and the API answers 503 {"error": "prediction log unavailable"} instead
of answering without a trace. A score that was served is a score that was logged.

Imports only the standard library and apsw (this is on the scoring path).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, fields

import apsw

from app import store

BUSY_TIMEOUT_MS = store.BUSY_TIMEOUT_MS  # owned by app.store
BUSY_RETRY_S = 0.0005  # pause between tries of a busy write lock
# CREDIT_LOG_DURABILITY -> PRAGMA synchronous of the log writers (WAL mode). full: every COMMIT is fsync'd, an
# answered score survives a power cut. normal: the WAL is fsync'd at checkpoints only, an answered score survives
# a crash or kill -9 of the process (the OS has the pages) but the last commits may be lost on a power cut.
DURABILITY = {"full": "FULL", "normal": "NORMAL"}


VECTOR_SQL = "INSERT OR IGNORE INTO logged_vectors (data_version, client_id, x) VALUES (?, ?, ?)"
# the scored vector of a log row `l` (join logged_vectors v): what drift and audit read (sql/store/003_compact_rows.sql)
VECTOR_JOIN = "LEFT JOIN logged_vectors v ON v.data_version = l.data_version AND v.client_id = l.client_id"
VECTOR_EXPR = "coalesce(v.x, l.features)"


def scored_vectors(conn: apsw.Connection) -> tuple[str, str]:
    """(FROM clause with the log as `l`, SQL expression of each row's scored vector) for readers of the vectors
    (drift, audit): the log joined with logged_vectors, or the log alone in a store not migrated to 003 yet."""
    has = conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'logged_vectors'").fetchall()
    return (f"prediction_log l {VECTOR_JOIN}", VECTOR_EXPR) if has else ("prediction_log l", "l.features")


def data_version(meta: dict[str, str]) -> str | None:
    """The version of a data file's feature vectors: a digest of its data and feature-schema fingerprints (the
    `meta` table written by `credit ingest`), so two imports of the same data share it. None when the file has
    no fingerprints (then scores log their full vector)."""
    import hashlib

    data, schema = meta.get("data_fingerprint"), meta.get("schema_fingerprint")
    if not data or not schema:
        return None
    return hashlib.sha256(f"{data}\0{schema}".encode()).hexdigest()[:16]


class RequestIds:
    """Request ids: 32 hex digits = this process's start in ms (12) + 32 random bits (8) + a counter (12).

    Unique across worker processes and restarts (two processes would need the same start millisecond AND the
    same 32 random bits), ordered by time within a process, and cheap: one counter step and one format per id
    (a uuid4 reads the OS random source each time), and the UNIQUE index on request_id is appended to at one
    place per process instead of at a random place per row."""

    def __init__(self) -> None:
        import itertools
        import secrets

        self.prefix = f"{time.time_ns() // 1_000_000:012x}{secrets.randbits(32):08x}"
        self._next = itertools.count(1).__next__

    def __call__(self) -> str:
        return f"{self.prefix}{self._next():012x}"


new_request_id = RequestIds()  # one per process: a forked child draws a new prefix (below)


def _new_prefix_after_fork() -> None:
    global new_request_id
    new_request_id = RequestIds()


os.register_at_fork(after_in_child=_new_prefix_after_fork)


class PredictionLogError(RuntimeError):
    """The prediction log could not be written (the request must fail, not be answered unlogged)."""


@dataclass(frozen=True, slots=True)
class LogRow:
    """One row of prediction_log (its columns are these fields, in this order: COLUMNS)."""

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
    data_version: str | None = None  # set for a stored client's own vector: kept once in logged_vectors
    challenger_score: float | None = None  # the shadow challenger's score of the same features (sql/store/004)
    challenger_model_id: str | None = None
    user_name: str | None = None  # the dashboard user who asked (sql/store/005), None for other API callers

    def as_tuple(self) -> tuple:
        """The row's values in COLUMNS order; a stored client's vector is kept in logged_vectors, not here."""
        values = tuple(getattr(self, name) for name in COLUMNS)
        if self.data_version is None:
            return values
        return (*values[:_FEATURES], b"", *values[_FEATURES + 1 :])


# the log's columns, in LogRow's field order: the one definition the INSERT and the row tuples follow
COLUMNS = tuple(f.name for f in fields(LogRow))
_FEATURES = COLUMNS.index("features")
INSERT_SQL = f"INSERT INTO prediction_log ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


def prepare(conn: apsw.Connection, durability: str = "full") -> None:
    """Per-connection settings for log writers: retry a busy write lock often (for up to BUSY_TIMEOUT_MS),
    commits as durable as `durability` says (DURABILITY)."""
    conn.set_busy_handler(_retry_every(BUSY_RETRY_S, BUSY_TIMEOUT_MS / 1000))
    conn.execute(f"PRAGMA synchronous = {DURABILITY[durability]}")


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
    store.switch_to_wal(conn)
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
        vectors = [(r.data_version, r.client_id, r.features) for r in rows if r.data_version is not None]
        if vectors:
            conn.executemany(VECTOR_SQL, vectors)
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
