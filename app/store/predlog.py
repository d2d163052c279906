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
one wake-up of the loop, so durability costs about one fsync per burst rather than one per request.

Choice: when the log cannot be written (read-only database, disk full, missing table), the write
raises `PredictionLogError` and the API answers 503 {"error": "prediction log unavailable"} instead
of answering without a trace. A score that was served is a score that was logged.

Imports only the standard library, numpy and apsw (this is on the scoring path).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import apsw
import numpy as np

from app import store

BUSY_TIMEOUT_MS = store.BUSY_TIMEOUT_MS  # owned by app.store
BUSY_RETRY_S = 0.0005  # pause between tries of a busy write lock
HIST_BINS = 10  # score histogram: [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0]
# CREDIT_LOG_DURABILITY -> PRAGMA synchronous of the log writers (WAL mode). full: every COMMIT is fsync'd, an
# answered score survives a power cut. normal: the WAL is fsync'd at checkpoints only, an answered score survives
# a crash or kill -9 of the process (the OS has the pages) but the last commits may be lost on a power cut.
DURABILITY = {"full": "FULL", "normal": "NORMAL"}


INSERT_SQL = (
    "INSERT INTO prediction_log (ts, request_id, client_id, features, probability, decision, model_id,"
    " latency_ms, role, endpoint, data_version, challenger_score, challenger_model_id, user_name)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
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
        return (
            self.ts,
            self.request_id,
            self.client_id,
            b"" if self.data_version is not None else self.features,
            self.probability,
            self.decision,
            self.model_id,
            self.latency_ms,
            self.role,
            self.endpoint,
            self.data_version,
            self.challenger_score,
            self.challenger_model_id,
            self.user_name,
        )


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


LOG_COLUMNS = ("id", "ts", "request_id", "client_id", "probability", "decision", "model_id", "latency_ms", "role")


def latest(conn: apsw.Connection, limit: int) -> list[dict]:
    """The `limit` most recent rows, newest first, without the feature vectors."""
    names = LOG_COLUMNS + ("endpoint", "user_name")
    cur = conn.execute(f"SELECT {', '.join(names)} FROM prediction_log ORDER BY id DESC LIMIT ?", (limit,))
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
    """Group commit: one thread owns a write connection; callers hand it rows and wait for their COMMIT.

    From the event loop (`await writer.commit(rows)`, what the API does): submissions made while the loop runs
    the callbacks that are ready now (the other requests it has already read) are gathered into one group, handed
    to the writer thread once (`call_soon`: the group closes as soon as the loop has run what was ready, so a
    request alone is handed over at once, with no linger), and the whole group's futures are resolved with ONE
    `call_soon_threadsafe` after its COMMIT: one thread hand-off and one loop wake-up per group, not per request.
    Groups queued while a commit runs are merged into the next transaction (up to MAX_GROUP rows): the more
    requests in flight, the bigger the group; a request alone pays one commit.
    When the caller passes its server's requests in flight (`in_flight`, app.service.httpguard), a request alone
    is committed on the loop's own thread if the writer is idle (no hand-off, no wake-up), and a group waits up
    to MAX_DEFER loop turns while requests in flight have neither joined it nor been handed over (a commit
    costs 110-175 µs of CPU whatever its size and 6-10 µs a row, benchmarks/bench_predlog.py: the fewer commits
    under load, the better). Under
    load the writer thread keeps the loop free to read the next requests while a commit runs.

    From a plain thread (`writer.submit(rows)` -> concurrent.futures.Future): the same writer, a group of one.

    Each submission is atomic (a batch request's rows are in the same transaction). If a group's commit fails,
    every submission of the group is retried alone so that one bad submission cannot fail the others. A future
    is resolved only after the transaction holding its rows committed (kill -9 safe with either durability).
    """

    MAX_GROUP = 2000  # rows per transaction, at most
    MAX_DEFER = 3  # loop turns a group may wait for requests in flight to join it

    def __init__(self, db_path: str | Path, durability: str = "full"):
        """`db_path` is the operational store (app.store), whose schema is already migrated; `durability` is
        DURABILITY's key (CREDIT_LOG_DURABILITY)."""
        import queue
        import threading

        if durability not in DURABILITY:
            raise ValueError(f"log durability must be one of {sorted(DURABILITY)}, not {durability!r}")
        self.db_path = str(db_path)
        self.durability = durability
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # held while the connection below is in use, by either thread
        self._conn: apsw.Connection | None = None
        self._thread: threading.Thread | None = None
        self._threading = threading
        self._pending: dict[object, list] = {}  # event loop -> [(rows, asyncio future)] not yet handed over
        self._in_flight: dict[object, Collection | None] = {}  # event loop -> its server's requests in hand
        self._waiting = 0  # submissions handed over from a loop and not settled yet
        self.commits = 0  # transactions committed, and the submissions and rows they held (for the benchmarks)
        self.submissions = 0
        self.rows = 0
        self.inline = 0  # of which committed on the caller's thread (alone, writer idle)

    # ---- callers ------------------------------------------------------------------------------------------------

    async def commit(self, rows: list[LogRow], in_flight: Collection | None = None) -> None:
        """Return once `rows` are committed (raise PredictionLogError if they cannot be); event-loop callers.
        `in_flight`: the requests the caller's server has in hand (this one included), when it knows them: alone,
        the rows are committed right here if the writer is idle; with others, the group waits for them (below)."""
        import asyncio

        if in_flight is not None and len(in_flight) <= 1 and self._commit_here(rows):
            return
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            self._pending[loop] = [(rows, fut)]
            self._in_flight[loop] = in_flight
            loop.call_soon(self._hand_over, loop, 0)
        else:
            pending.append((rows, fut))
        await fut

    def submit(self, rows: list[LogRow]):
        """Queue rows from any thread; returns a concurrent.futures.Future resolved after COMMIT (or
        PredictionLogError)."""
        from concurrent.futures import Future

        fut: Future = Future()

        def done(results: list[Exception | None]) -> None:
            if results[0] is None:
                fut.set_result(None)
            else:
                fut.set_exception(results[0])

        self._put(([rows], done))
        return fut

    def stats(self) -> dict[str, float]:
        """Commits so far and the mean submissions (requests) and rows per commit."""
        n = max(self.commits, 1)
        return {
            "commits": self.commits,
            "inline_commits": self.inline,
            "submissions_per_commit": self.submissions / n,
            "rows_per_commit": self.rows / n,
        }

    def close(self, timeout: float = 30.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join(timeout)
        with self._write_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # ---- the loop side ----------------------------------------------------------------------------------------

    def _hand_over(self, loop, deferred: int) -> None:
        """On the loop, after the callbacks that were ready: hand the gathered group to the writer thread, or wait
        a loop turn (at most MAX_DEFER) while requests in flight have neither joined it nor been handed over."""
        group = self._pending.get(loop)
        if not group:
            return
        in_flight = self._in_flight.get(loop)
        if in_flight is not None and deferred < self.MAX_DEFER and len(in_flight) > self._waiting + len(group):
            loop.call_soon(self._hand_over, loop, deferred + 1)
            return
        del self._pending[loop]
        self._in_flight.pop(loop, None)  # no reference kept to a loop (or its requests) once its group is handed
        futures = [f for _rows, f in group]
        self._waiting += len(futures)

        def settle(results: list[Exception | None]) -> None:  # on the loop
            self._waiting -= len(futures)
            _resolve(futures, results)

        def done(results: list[Exception | None]) -> None:  # on the writer thread: one wake-up for the group
            with contextlib.suppress(RuntimeError):  # RuntimeError: the loop was closed, nobody is waiting
                loop.call_soon_threadsafe(settle, results)

        self._put(([rows for rows, _f in group], done))

    def _commit_here(self, rows: list[LogRow]) -> bool:
        """Commit `rows` on this thread if the writer is idle (else False: nothing done); PredictionLogError if
        they cannot be committed."""
        if not self._queue.empty() or not self._write_lock.acquire(blocking=False):
            return False
        try:
            result = self._commit_group([rows])[0]
            self.inline += result is None
        finally:
            self._write_lock.release()
        if result is not None:
            raise result
        return True

    def _put(self, item) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = self._threading.Thread(target=self._run, name="prediction-log", daemon=True)
                self._thread.start()
            self._queue.put(item)

    # ---- the writer thread ------------------------------------------------------------------------------------

    def _open(self) -> apsw.Connection:
        conn = apsw.Connection(self.db_path, flags=apsw.SQLITE_OPEN_READWRITE)
        prepare(conn, self.durability)
        return conn

    def _run(self) -> None:
        import queue

        stop = False
        while not stop:
            item = self._queue.get()
            if item is None:
                break
            batches = [item]
            n = sum(len(rows) for rows in item[0])
            while n < self.MAX_GROUP:  # merge what queued up during the previous commit
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batches.append(nxt)
                n += sum(len(rows) for rows in nxt[0])
            subs = [rows for b in batches for rows in b[0]]
            with self._write_lock:
                results = self._commit_group(subs)
            i = 0
            for b in batches:
                k = len(b[0])
                b[1](results[i : i + k])
                i += k

    def _commit_group(self, subs: list[list[LogRow]]) -> list[Exception | None]:
        """Commit the submissions in one transaction (the caller holds _write_lock); a result per submission."""
        try:
            if self._conn is None:
                self._conn = self._open()
        except apsw.Error as exc:
            return [PredictionLogError(f"{type(exc).__name__}: {exc}")] * len(subs)
        results, failed = self._write_group(self._conn, subs)
        if failed:  # e.g. opened while the file was read-only: the next group opens it afresh
            self._conn.close()
            self._conn = None
        return results

    def _write_group(self, conn: apsw.Connection, subs: list[list[LogRow]]) -> tuple[list[Exception | None], bool]:
        """Commit every submission; (per-submission result: None or the error, whether any failed)."""
        try:
            write(conn, [r for rows in subs for r in rows])
        except PredictionLogError:
            results: list[Exception | None] = []
            for rows in subs:  # isolate the failing submission(s)
                try:
                    write(conn, rows)
                except PredictionLogError as exc:
                    results.append(exc)
                else:
                    self._count(1, len(rows))
                    results.append(None)
            return results, any(r is not None for r in results)
        self._count(len(subs), sum(len(rows) for rows in subs))
        return [None] * len(subs), False

    def _count(self, submissions: int, rows: int) -> None:
        self.commits += 1
        self.submissions += submissions
        self.rows += rows


def _resolve(futures: list, results: list[Exception | None]) -> None:
    """On the event loop: settle a whole group's futures (one call per group)."""
    for fut, res in zip(futures, results, strict=True):
        if fut.done():  # cancelled (the client went away): its rows are committed all the same
            continue
        if res is None:
            fut.set_result(None)
        else:
            fut.set_exception(res)
