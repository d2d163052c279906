"""Prediction log: schema, transactions, failure -> PredictionLogError, concurrent writers (processes, workers)."""

from __future__ import annotations

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

from app.store import default_path, predlog


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
                    "latency_ms", "role", "endpoint", "challenger_score", "challenger_model_id"]  # fmt: skip
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
    s = predlog.summary(conn, since=base, until=base + 7200)
    assert s["requests"] == 3
    assert s["decisions"] == {"accept": 1, "refuse": 2}
    assert [h["count"] for h in s["score_histogram"]] == [2, 1]
    assert s["score_histogram"][0]["counts"][0] == 1 and s["score_histogram"][0]["counts"][9] == 1
    assert s["score_histogram"][1]["counts"][9] == 1  # p = 1.0 falls in the last bin
    assert s["latency_ms"]["p50"] == pytest.approx(2.0)
    assert predlog.summary(conn, since=base + 3600, until=base + 7200)["requests"] == 1
    empty = predlog.summary(conn, since=0, until=1)
    assert empty["requests"] == 0 and empty["latency_ms"] == {"p50": None, "p99": None}
    latest = predlog.latest(conn, 2)
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
    writer = predlog.GroupWriter(db)
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


def test_group_writer_reports_an_unwritable_log(tmp_path):
    writer = predlog.GroupWriter(tmp_path / "missing.db")  # no such database: never created by the writer
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
