"""Prediction log: schema, transactions, failure -> PredictionLogError, concurrent writers (processes, workers)."""

from __future__ import annotations

import dataclasses
import multiprocessing
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import apsw
import httpx
import numpy as np
import pytest
from apiserver import ADMIN, OFFICER, ApiServer, copy_pipeline

from app.monitoring import log_reports
from app.store import default_path, group_writer, predlog
from app.store.group_writer import GroupWriter


def fresh_db(path) -> apsw.Connection:
    conn = apsw.Connection(str(path))
    predlog.ensure_schema(conn)
    return conn


def row(i: int = 0, client_id: int | None = 1, p: float = 0.25, ts: float | None = None) -> predlog.LogRow:
    return predlog.LogRow(
        ts=time.time() if ts is None else ts,
        request_id=str(uuid.uuid4()),
        client_id=client_id,
        features=np.arange(4, dtype="<f4").tobytes(),
        probability=p,
        decision="refuse" if p >= 0.5 else "accept",
        model_id="m" * 64,
        latency_ms=1.0 + i,
        role="officer",
        endpoint="POST /score",
    )


def test_schema_is_idempotent_and_in_wal(tmp_path):
    conn = fresh_db(tmp_path / "a.db")
    predlog.ensure_schema(conn)
    assert conn.execute("PRAGMA journal_mode").fetchall()[0][0] == "wal"
    cols = [r[1] for r in conn.execute("PRAGMA table_info(prediction_log)")]
    assert cols == ["id", "ts", "request_id", "client_id", "features", "probability", "decision", "model_id",
                    "latency_ms", "role", "endpoint", "data_version", "challenger_score",
                    "challenger_model_id", "user_name"]  # fmt: skip
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'prediction_log_ts'").fetchall()[0][0] == 1


def test_write_is_one_transaction(tmp_path):
    conn = fresh_db(tmp_path / "a.db")
    rows = [row(i) for i in range(5)]
    predlog.write(conn, rows)
    assert conn.execute("SELECT count(*) FROM prediction_log").fetchall()[0][0] == 5
    dup = [row(10), rows[0]]  # second row violates UNIQUE(request_id): nothing of this batch is kept
    with pytest.raises(predlog.PredictionLogError):
        predlog.write(conn, dup)
    assert conn.execute("SELECT count(*) FROM prediction_log").fetchall()[0][0] == 5
    assert conn.get_autocommit()  # no transaction left open
    predlog.write(conn, [row(11)])
    assert conn.execute("SELECT count(*) FROM prediction_log").fetchall()[0][0] == 6


def test_write_failure_raises(tmp_path):
    conn = apsw.Connection(str(tmp_path / "none.db"))  # no prediction_log table
    with pytest.raises(predlog.PredictionLogError):
        predlog.write(conn, [row()])
    assert predlog.check_writable(conn) is not None
    conn = fresh_db(tmp_path / "b.db")
    assert predlog.check_writable(conn) is None
    ro = apsw.Connection(str(tmp_path / "b.db"), flags=apsw.SQLITE_OPEN_READONLY)
    with pytest.raises(predlog.PredictionLogError):
        predlog.write(ro, [row()])
    assert predlog.check_writable(ro) is not None


def test_summary_and_latest(tmp_path):
    conn = fresh_db(tmp_path / "a.db")
    base = 1_700_000_000.0 - 1_700_000_000.0 % 3600
    predlog.write(conn, [row(0, p=0.05, ts=base + 1), row(1, p=0.95, ts=base + 2), row(2, p=1.0, ts=base + 3700)])
    s = log_reports.summary(conn, since=base, until=base + 7200)
    assert s["requests"] == 3
    assert s["decisions"] == {"accept": 1, "refuse": 2}
    assert [h["count"] for h in s["score_histogram"]] == [2, 1]
    assert s["score_histogram"][0]["counts"][0] == 1 and s["score_histogram"][0]["counts"][9] == 1
    assert s["score_histogram"][1]["counts"][9] == 1  # p = 1.0 falls in the last bin
    assert s["latency_ms"]["p50"] == pytest.approx(2.0)
    assert log_reports.summary(conn, since=base + 3600, until=base + 7200)["requests"] == 1
    empty = log_reports.summary(conn, since=0, until=1)
    assert empty["requests"] == 0 and empty["latency_ms"] == {"p50": None, "p99": None}
    latest = log_reports.latest(conn, 2)
    assert [r["latency_ms"] for r in latest] == [3.0, 2.0] and "features" not in latest[0]


def _writer(db: str, n: int, batch: int) -> int:
    conn = apsw.Connection(db)
    predlog.prepare(conn)
    for i in range(n):
        predlog.write(conn, [row(i) for _ in range(batch)])
    conn.close()
    return n * batch


@pytest.mark.slow
def test_several_processes_write_at_once(tmp_path):
    db = tmp_path / "a.db"
    fresh_db(db).close()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        written = pool.starmap(_writer, [(str(db), 150, 1 + k % 2) for k in range(4)])
    conn = apsw.Connection(str(db))
    assert conn.execute("SELECT count(*) FROM prediction_log").fetchall()[0][0] == sum(written) == 900


@pytest.mark.slow
def test_two_uvicorn_workers_log_every_answer(pipeline, tmp_path):
    """2 worker processes, 16 client threads, 400 requests: exactly one row per answer, no 'locked' anywhere."""
    data = copy_pipeline(pipeline, tmp_path)
    conn = apsw.Connection(str(data.db), flags=apsw.SQLITE_OPEN_READONLY)
    ids = [r[0] for r in conn.execute("SELECT client_id FROM features LIMIT 40")]
    conn.close()
    with ApiServer(data.db, data.model_dir, workers=2) as api:
        local = threading.local()
        clients: list[httpx.Client] = []

        def one(i: int) -> dict:
            http = getattr(local, "http", None)
            if http is None:  # one keep-alive connection per thread: the kernel spreads them over the workers
                http = local.http = httpx.Client(base_url=api.url, timeout=30)
                clients.append(http)
            if i % 5 == 4:
                r = http.post("/score/batch", json={"client_ids": ids[:3]}, headers=OFFICER)
            else:
                r = http.get(f"/clients/{ids[i % len(ids)]}/score", headers=OFFICER)
            assert r.status_code == 200, r.text
            return r.json()

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(one, range(400)))
        for http in clients:
            http.close()
        with httpx.Client(base_url=api.url) as http:
            summary = http.get("/monitoring/summary", headers=ADMIN).json()
        pids = api.output()
    rc = api.proc.returncode
    request_ids = [a["request_id"] for a in answers if "request_id" in a]
    request_ids += [x["request_id"] for a in answers if "results" in a for x in a["results"]]
    assert len(request_ids) == 320 + 80 * 3
    conn = apsw.Connection(str(default_path(data.db)), flags=apsw.SQLITE_OPEN_READONLY)
    logged = {r[0]: r[1] for r in conn.execute("SELECT request_id, probability FROM prediction_log")}
    conn.close()
    assert len(logged) == len(request_ids) == summary["requests"]
    assert set(logged) == set(request_ids)
    assert "locked" not in pids.lower() and "Traceback" not in pids
    assert rc == 0


def test_group_writer_commits_every_submission_and_isolates_failures(tmp_path):
    db = tmp_path / "a.db"
    fresh_db(db).close()
    writer = GroupWriter(db)
    try:
        with ThreadPoolExecutor(16) as pool:
            futures = list(pool.map(lambda i: writer.submit([row(i) for _ in range(1 + i % 3)]), range(300)))
        for f in futures:
            assert f.result(timeout=30) is None
        good, dup = row(1), row(2)
        bad = writer.submit([dup, dup])  # violates UNIQUE(request_id): this submission alone fails
        ok = writer.submit([good])
        with pytest.raises(predlog.PredictionLogError):
            bad.result(timeout=30)
        assert ok.result(timeout=30) is None
    finally:
        writer.close()
    conn = apsw.Connection(str(db))
    assert (
        conn.execute("SELECT count(*) FROM prediction_log").fetchall()[0][0] == sum(1 + i % 3 for i in range(300)) + 1
    )


def counted_writer(db, monkeypatch) -> tuple[GroupWriter, list[int]]:
    """A writer on a fresh log at `db`, and the list of its loop wake-ups (the futures each one settled)."""
    fresh_db(db).close()
    wake_ups: list[int] = []
    real = group_writer._resolve
    monkeypatch.setattr(group_writer, "_resolve", lambda futs, res: (wake_ups.append(len(futs)), real(futs, res)))
    return GroupWriter(db), wake_ups


def test_loop_commits_are_grouped_with_one_wake_up_per_group(tmp_path, monkeypatch):
    """Requests the loop has in hand share one transaction and one wake-up; one submission fails alone."""
    import asyncio

    db = tmp_path / "a.db"
    writer, wake_ups = counted_writer(db, monkeypatch)
    dup = row(99)

    async def main() -> list:
        await writer.commit([row(0)])  # alone: a group of one, committed at once
        assert (writer.commits, wake_ups) == (1, [1])
        return await asyncio.gather(
            *(writer.commit([row(i) for _ in range(1 + i % 3)]) for i in range(100)),
            writer.commit([dup, dup]),  # violates UNIQUE(request_id): fails alone, the others commit
            return_exceptions=True,
        )

    try:
        results = asyncio.run(main())
    finally:
        writer.close()
    assert results[:100] == [None] * 100
    assert isinstance(results[100], predlog.PredictionLogError)
    assert sum(wake_ups) == 102 and len(wake_ups) <= 3  # the 101 gathered submissions: one group, one wake-up
    conn = apsw.Connection(str(db))
    expected = 1 + sum(1 + i % 3 for i in range(100))
    assert conn.execute("SELECT count(*) FROM prediction_log").fetchall()[0][0] == expected


def test_a_request_alone_commits_on_the_loop_thread_and_fails_the_same_way(tmp_path, monkeypatch):
    """A request alone in flight with the writer idle: committed on the caller's thread (no writer thread, no
    wake-up), durably, with the same errors; a busy writer (something queued) takes the submission as usual."""
    import asyncio

    db = tmp_path / "a.db"
    writer, wake_ups = counted_writer(db, monkeypatch)
    dup = row(5)

    async def main() -> None:
        for i in range(20):
            await writer.commit([row(i)], in_flight={1})
        assert (writer.commits, writer.inline, wake_ups, writer._thread) == (20, 20, [], None)
        with pytest.raises(predlog.PredictionLogError):
            await writer.commit([dup, dup], in_flight={1})
        assert writer.inline == 20
        writer._queue.put(([[row(7)]], lambda results: None))  # the writer has work queued: no commit here
        await writer.commit([row(8)], in_flight={1})

    try:
        asyncio.run(main())
    finally:
        writer.close()
    assert writer.inline == 20 and writer.commits in (21, 22)  # row 7 and row 8: one transaction or two
    conn = apsw.Connection(str(db))
    assert conn.execute("SELECT count(*) FROM prediction_log").fetchall()[0][0] == 22


def test_a_group_waits_a_loop_turn_for_requests_in_flight_but_never_for_ever(tmp_path, monkeypatch):
    """Requests in flight that submit a loop turn later join the same group (one commit, one wake-up); requests in
    flight that never submit hold a group back at most MAX_DEFER loop turns."""
    import asyncio

    db = tmp_path / "a.db"
    writer, wake_ups = counted_writer(db, monkeypatch)

    async def later(i: int, in_flight: set) -> None:
        await asyncio.sleep(0)  # one loop turn after the first five
        await writer.commit([row(i)], in_flight)

    async def main() -> None:
        in_flight = set(range(10))
        await asyncio.gather(
            *(writer.commit([row(i)], in_flight) for i in range(5)), *(later(i, in_flight) for i in range(5, 10))
        )
        assert wake_ups == [10] and writer.commits == 1
        never = set(range(50))  # 48 requests that will never log anything
        await asyncio.wait_for(asyncio.gather(*(writer.commit([row(i)], never) for i in range(2))), 10)
        assert wake_ups == [10, 2] and writer.commits == 2

    try:
        asyncio.run(main())
    finally:
        writer.close()


@pytest.mark.parametrize(("durability", "level"), [("full", 2), ("normal", 1)])
def test_durability_setting_sets_synchronous(tmp_path, durability, level):
    conn = fresh_db(tmp_path / "a.db")
    predlog.prepare(conn, durability)
    assert conn.execute("PRAGMA synchronous").fetchall()[0][0] == level
    with pytest.raises(ValueError, match="durability"):
        GroupWriter(tmp_path / "a.db", "fast")


def test_group_writer_reports_an_unwritable_log(tmp_path):
    writer = GroupWriter(tmp_path / "missing.db")  # no such database: never created by the writer
    try:
        with pytest.raises(predlog.PredictionLogError):
            writer.submit([row()]).result(timeout=30)
    finally:
        writer.close()
    assert not (tmp_path / "missing.db").exists()


def test_busy_write_lock_is_retried_soon_and_given_up_after_the_limit(tmp_path):
    db = tmp_path / "log.db"
    first, second = apsw.Connection(str(db)), apsw.Connection(str(db))
    predlog.ensure_schema(first)
    predlog.prepare(second)
    first.execute("BEGIN IMMEDIATE")  # hold the write lock
    releaser = threading.Timer(0.05, lambda: first.execute("COMMIT"))
    releaser.start()
    t0 = time.monotonic()
    second.execute("BEGIN IMMEDIATE")  # waits for the lock instead of failing with "database is locked"
    waited = time.monotonic() - t0
    second.execute("ROLLBACK")
    releaser.join()
    assert waited > 0.04
    handler = predlog._retry_every(0.001, 0.02)
    assert handler(0) and handler(1)
    time.sleep(0.03)
    assert handler(2) is False  # past the limit: SQLITE_BUSY reaches the caller
    assert handler(0) is True  # a new wait starts a new clock


def test_request_ids_are_unique_ordered_and_new_after_fork():
    import os

    ids = [predlog.new_request_id() for _ in range(1000)]
    assert len(set(ids)) == 1000 and ids == sorted(ids) and all(len(i) == 32 for i in ids)
    assert all(set(i) <= set("0123456789abcdef") for i in ids)  # lower-case hex digits only
    other = predlog.RequestIds()  # another process (or a restart): another prefix
    assert other.prefix != predlog.new_request_id.prefix
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child's ids must not repeat the parent's
        os.write(write, predlog.new_request_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    assert child[:20] != predlog.new_request_id()[:20]


def test_a_stored_clients_vector_is_kept_once_per_data_version(tmp_path):
    """Compact rows: client id + data version in the row, the vector once per (version, client); readers get the
    exact scored vector back for compact and full rows alike (drift's load_window)."""
    from app.monitoring.drift import load_window

    conn = fresh_db(tmp_path / "a.db")
    v1, v2 = np.arange(4, dtype="<f4"), np.arange(4, dtype="<f4") + 10
    full = row(0, client_id=None)  # an applicant: full vector in the row
    rows = [dataclasses.replace(row(i, client_id=7), data_version="d1", features=v1.tobytes()) for i in range(3)]
    rows.append(dataclasses.replace(row(9, client_id=7), data_version="d2", features=v2.tobytes()))
    predlog.write(conn, [full, *rows])
    assert conn.execute("SELECT count(*) FROM logged_vectors").fetchall()[0][0] == 2  # (d1, 7) and (d2, 7)
    sizes = [r[0] for r in conn.execute("SELECT length(features) FROM prediction_log ORDER BY id")]
    assert sizes == [16, 0, 0, 0, 0]
    X, _scores, window = load_window(conn, 4)
    assert window["rows"] == 5
    got = sorted(tuple(x) for x in X.tolist())
    assert got == sorted([tuple(np.frombuffer(full.features, "<f4").tolist())] + [tuple(v1.tolist())] * 3
                         + [tuple(v2.tolist())])  # fmt: skip


def test_data_version_needs_both_fingerprints():
    assert predlog.data_version({}) is None
    assert predlog.data_version({"data_fingerprint": "a"}) is None
    a = predlog.data_version({"data_fingerprint": "a", "schema_fingerprint": "s"})
    assert a == predlog.data_version({"data_fingerprint": "a", "schema_fingerprint": "s", "ingested_at": "x"})
    assert a != predlog.data_version({"data_fingerprint": "b", "schema_fingerprint": "s"})


def test_api_logs_a_stored_client_compactly_and_an_applicant_in_full(pipeline, tmp_path):
    """Through the API: GET score and a batch of ids log client id + data version with the vector kept once;
    an applicant logs its full vector; both read back exactly (the stored row, the posted values)."""
    from app.monitoring.drift import load_window

    data = copy_pipeline(pipeline, tmp_path)
    conn = apsw.Connection(str(data.db), flags=apsw.SQLITE_OPEN_READONLY)
    (cid, x), *_ = conn.execute("SELECT client_id, x FROM features LIMIT 1").fetchall()
    names = [r[0] for r in conn.execute("SELECT name FROM feature_names ORDER BY idx")]
    conn.close()
    with ApiServer(data.db, data.model_dir, env={"CREDIT_LOG_DURABILITY": "normal"}) as api, api.client() as http:
        for _ in range(3):
            assert http.get(f"/clients/{cid}/score", headers=OFFICER).status_code == 200
        assert http.post("/score/batch", json={"client_ids": [cid]}, headers=OFFICER).status_code == 200
        applicant = {names[0]: 1.5}
        assert http.post("/score", json={"features": applicant}, headers=OFFICER).status_code == 200
    store = apsw.Connection(str(default_path(data.db)), flags=apsw.SQLITE_OPEN_READONLY)
    rows = store.execute("SELECT client_id, length(features), data_version FROM prediction_log ORDER BY id").fetchall()
    assert [r[1] for r in rows] == [0, 0, 0, 0, 4 * len(names)]
    assert len({r[2] for r in rows[:4]}) == 1 and rows[0][2] is not None and rows[4][2] is None
    assert store.execute("SELECT count(*) FROM logged_vectors").fetchall()[0][0] == 1
    X, _scores, _window = load_window(store, len(names))  # newest first: the applicant, then the stored client
    assert X[0][0] == 1.5 and np.isnan(X[0][1:]).all()
    for i in range(1, 5):
        assert X[i].tobytes() == x


def test_the_log_benchmark_measures_what_it_says(tmp_path):
    """benchmarks/bench_predlog.py: groups of the size asked for, and every lone commit made on the loop thread."""
    from benchmarks.bench_predlog import run

    rows = run(rows=64, folder=tmp_path)
    groups = {r["name"]: r["rows_per_commit"] for r in rows if "rows_per_commit" in r}
    assert groups["writer thread, groups of 8, durability full"] == 8
    assert groups["writer thread, groups of 32, durability normal"] == 32
    assert [r["inline_share"] for r in rows if "inline_share" in r] == [1.0, 1.0]
    assert all(r["p50_us"] > 0 for r in rows if "p50_us" in r)
