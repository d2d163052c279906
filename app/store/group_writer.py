"""The prediction log's group-commit writer (`GroupWriter`): how the API's log rows reach the store.

The rows, their SQL and the one-transaction write are app/store/predlog.py's; this module only decides which
rows share a transaction and who waits for it (the class docstring). Imports only the standard library and apsw
(this is on the scoring path).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from pathlib import Path

import apsw

from app.store.predlog import DURABILITY, LogRow, PredictionLogError, prepare, write

__all__ = ["GroupWriter"]


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
