"""The operational store (app.store): its own file, numbered migrations, WAL, and a log that outlives re-imports."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from pathlib import Path

import apsw
import numpy as np
import pytest

from app import store
from app.data.ingest_csv import ingest_csv
from app.store import predlog

LOANS = Path(__file__).parent / "data" / "loans.csv"


def log_row(i: int = 0) -> predlog.LogRow:
    return predlog.LogRow(
        ts=time.time(), request_id=str(uuid.uuid4()), client_id=i, features=np.zeros(3, "<f4").tobytes(),
        probability=0.25, decision="accept", model_id="m", latency_ms=1.0, role="officer", endpoint="test",
    )  # fmt: skip


def count(path: Path) -> int:
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return conn.execute("SELECT count(*) FROM prediction_log").fetchall()[0][0]
    finally:
        conn.close()


def test_default_path_is_beside_the_database():
    assert store.default_path("data/credit.db") == Path("data/credit-log.db")
    assert store.default_path("/x/y/portfolio.sqlite") == Path("/x/y/portfolio-log.sqlite")
    assert store.default_path("plain") == Path("plain-log.db")


def test_settings_log_db_defaults_beside_the_database_and_env_wins():
    from app.config import load_settings

    assert load_settings({"CREDIT_DB": "/d/a.db"}).log_db_path == Path("/d/a-log.db")
    assert load_settings({"CREDIT_DB": "/d/a.db", "CREDIT_LOG_DB": "/l/x.db"}).log_db_path == Path("/l/x.db")
    assert load_settings({"CREDIT_LOG_DB": "/l/x.db"}, log_db="/o.db").log_db_path == Path("/o.db")


def test_open_creates_migrates_in_wal_and_is_idempotent(tmp_path):
    path = tmp_path / "s" / "log.db"
    conn = store.open_store(path)
    latest = store.migrations()[-1][0]
    assert store.schema_version(conn) == latest >= 1
    assert conn.execute("PRAGMA journal_mode").fetchall()[0][0] == "wal"
    predlog.write(conn, [log_row()])
    conn.close()
    conn = store.open_store(path)  # opening again applies nothing and keeps the rows
    assert store.schema_version(conn) == latest
    assert conn.execute("SELECT count(*) FROM prediction_log").fetchall()[0][0] == 1
    conn.close()


def test_migrations_are_applied_in_order_each_in_one_transaction(tmp_path):
    folder = tmp_path / "mig"
    folder.mkdir()
    (folder / "001_a.sql").write_text("CREATE TABLE a (x);")
    (folder / "002_b.sql").write_text("CREATE TABLE b (y REFERENCES a(x)); INSERT INTO a VALUES (2);")
    conn = apsw.Connection(str(tmp_path / "s.db"))
    assert store.migrate(conn, folder) == 2
    assert conn.execute("SELECT x FROM a").fetchall() == [(2,)]
    # a broken third migration leaves the store at version 2 with nothing of it applied
    (folder / "003_c.sql").write_text("CREATE TABLE c (z); INSERT INTO nowhere VALUES (1);")
    with pytest.raises(store.StoreError, match="003_c.sql"):
        store.migrate(conn, folder)
    assert store.schema_version(conn) == 2
    assert conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'c'").fetchall()[0][0] == 0
    (folder / "003_c.sql").write_text("CREATE TABLE c (z);")
    assert store.migrate(conn, folder) == 3


def test_bad_migration_names_and_gaps_are_refused(tmp_path):
    folder = tmp_path / "mig"
    folder.mkdir()
    (folder / "001_a.sql").write_text("SELECT 1;")
    (folder / "003_c.sql").write_text("SELECT 1;")
    with pytest.raises(store.StoreError, match="without gaps"):
        store.migrations(folder)
    (folder / "003_c.sql").unlink()
    (folder / "2-b.sql").write_text("SELECT 1;")
    with pytest.raises(store.StoreError, match="NNN_name.sql"):
        store.migrations(folder)


def test_a_store_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "log.db"
    conn = apsw.Connection(str(path))
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(store.StoreError, match="newer"):
        store.open_store(path)


def _open_many(path: str, start, out) -> None:
    start.wait(30)
    try:
        store.open_store(path).close()
        out.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        out.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_store_at_once_apply_each_migration_once(tmp_path):
    # several rounds: two processes switching a new file to WAL at once made one of them fail in about 1 round
    # of 13 (SQLite answers BUSY there without the busy handler; store.switch_to_wal retries)
    ctx = multiprocessing.get_context("fork")
    for round_ in range(12):
        path = str(tmp_path / f"log{round_}.db")
        start, out = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_open_many, args=(path, start, out)) for _ in range(6)]
        for p in procs:
            p.start()
        time.sleep(0.05)
        start.set()
        results = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(30)
        assert results == ["ok"] * 6, round_
        conn = store.open_store(path)
        assert store.schema_version(conn) == store.migrations()[-1][0]
        conn.close()


def test_read_only_store_is_refused_with_its_name():
    """A store on a read-only file system (root can write a 0444 file, so the mount is what makes it read-only)."""
    import subprocess

    from test_reliability_faults import tmpfs

    with tmpfs("16m") as mnt:
        path = mnt / "log.db"
        store.open_store(path).close()
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        try:
            with pytest.raises(store.StoreError, match="read-only"):
                store.open_store(path)
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)


def _legacy_db(path: Path, n: int) -> list[str]:
    """A data database of the earlier layout: the prediction log inside it."""
    conn = apsw.Connection(str(path))
    conn.execute((store.MIGRATIONS_DIR / "001_prediction_log.sql").read_text())
    rows = [log_row(i) for i in range(n)]
    conn.executemany(  # the columns of that layout (001) only
        f"INSERT INTO prediction_log ({store.LEGACY_COLUMNS}) VALUES ({', '.join('?' * 10)})",
        [r.as_tuple()[:10] for r in rows],
    )
    conn.close()
    return [r.request_id for r in rows]


def test_legacy_log_is_copied_once_and_idempotently(tmp_path):
    data = tmp_path / "credit.db"
    ids = _legacy_db(data, 25)
    conn = store.open_store(store.default_path(data))
    predlog.write(conn, [log_row(99)])  # served by the new version already
    assert store.import_legacy(conn, data) == 25
    assert store.import_legacy(conn, data) == 0  # recorded: not even read again
    conn.execute("DELETE FROM legacy_import")
    assert store.import_legacy(conn, data) == 0  # read again, but nothing is duplicated
    got = {r[0] for r in conn.execute("SELECT request_id FROM prediction_log")}
    assert set(ids) <= got and len(got) == 26
    assert store.import_legacy(conn, tmp_path / "none.db") == 0
    conn.close()


def test_reimport_keeps_every_log_row_including_an_old_in_file_log(tmp_path):
    data = tmp_path / "credit.db"
    ingest_csv(LOANS, data, id_col="loan_id", target_col="status", progress=False)
    conn = store.open_store(store.default_path(data))
    predlog.write(conn, [log_row(i) for i in range(10)])
    conn.close()
    # an old-layout database (log inside) is replaced by the next import: its rows move to the store first
    legacy = _legacy_db(data, 7)
    ingest_csv(LOANS, data, id_col="loan_id", target_col="status", progress=False)
    assert count(store.default_path(data)) == 17
    conn = apsw.Connection(str(data), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        assert conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'prediction_log'").fetchall()[0][0] == 0
        assert conn.execute("PRAGMA journal_mode").fetchall()[0][0] == "delete"  # readers leave no -wal beside it
    finally:
        conn.close()
    conn = apsw.Connection(str(store.default_path(data)))
    logged = {r[0] for r in conn.execute("SELECT request_id FROM prediction_log")}
    assert set(legacy) <= logged
    ingest_csv(LOANS, data, id_col="loan_id", target_col="status", progress=False, log_db=tmp_path / "other.db")
    assert count(store.default_path(data)) == 17  # an explicit --log-db elsewhere: the default one untouched
