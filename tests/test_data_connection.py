"""The API's data connections are opened `immutable` (app.scoring.db.connect, app.service.state.Service.conn):
SQLite takes no lock on the data file and re-reads no change counter per statement (issue 34: those system
calls were most of a stored client's lookup). The per-request stat of the data file, which already told a
re-import, now tells any change to the file, so nothing stale is ever scored.

Laws: a stored client is scored while another process holds an exclusive lock on the data file (no lock is
taken); a file written in place is noticed and scored from its new content (the stamp, not the lock, is what
keeps the cache honest); a WAL-mode data file is opened as before (not immutable)."""

from __future__ import annotations

import os

import apsw
import numpy as np
import pytest
from apiserver import OFFICER_KEY, served_in_process

from app.scoring.db import _wal_mode, connect

AUTH = {"Authorization": f"Bearer {OFFICER_KEY}"}


@pytest.fixture
def served(pipeline, tmp_path):
    with served_in_process(pipeline, tmp_path) as (data, app, client):
        yield data, app, client


def stored_ids(db, n: int) -> list[int]:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return [r[0] for r in conn.execute("SELECT client_id FROM features ORDER BY client_id LIMIT ?", (n,))]
    finally:
        conn.close()


def test_scoring_takes_no_lock_on_the_data_file(served):
    data, _app, client = served
    ids = stored_ids(data.db, 5)
    first = client.get(f"/clients/{ids[0]}/score", headers=AUTH)
    assert first.status_code == 200, first.text  # the connection is open (and the readiness checks passed)
    writer = apsw.Connection(str(data.db))
    writer.execute("BEGIN EXCLUSIVE")  # a reader that locks would wait, then fail (database is locked: 503)
    try:
        for cid in ids:
            answer = client.get(f"/clients/{cid}/score", headers=AUTH)
            assert answer.status_code == 200, answer.text
            assert answer.json()["client_id"] == cid
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_file_written_in_place_is_noticed_and_scored_from_its_new_content(served, caplog):
    data, app, client = served
    cid = stored_ids(data.db, 1)[0]
    before = client.get(f"/clients/{cid}/score", headers=AUTH)
    assert before.status_code == 200, before.text
    stamp = os.stat(data.db)
    writer = apsw.Connection(str(data.db))
    try:
        (xb,) = writer.execute("SELECT x FROM features WHERE client_id = ?", (cid,)).fetchall()[0]
        x = np.frombuffer(xb, dtype="<f4").copy()
        others = [r[0] for r in writer.execute("SELECT x FROM features WHERE client_id != ? LIMIT 200", (cid,))]
        with writer:  # the client's row gets another client's vector with a different score
            check = connect(data.db, app.service.model, readonly=True)

            def score(blob: bytes) -> float:
                return check.execute("SELECT score_features(?)", (blob,)).fetchall()[0][0]

            p_before = score(xb)
            new = next(o for o in others if score(o) != p_before)
            p_new = score(new)
            check.close()
            writer.execute("UPDATE features SET x = ? WHERE client_id = ?", (new, cid))
    finally:
        writer.close()
    assert not np.array_equal(np.frombuffer(new, dtype="<f4"), x)
    if os.stat(data.db).st_mtime_ns == stamp.st_mtime_ns:  # same clock tick as the copy: make the change visible
        os.utime(data.db, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000))
    with caplog.at_level("WARNING", logger="app.service.api"):
        after = client.get(f"/clients/{cid}/score", headers=AUTH)
    assert after.status_code == 200, after.text
    assert before.json()["probability"] == pytest.approx(p_before, abs=0)
    assert after.json()["probability"] == pytest.approx(p_new, abs=0)
    assert any("written in place" in r.getMessage() for r in caplog.records)


def test_only_a_rollback_journal_file_is_opened_immutable(tmp_path):
    wal, plain = tmp_path / "wal.db", tmp_path / "plain.db"
    for path, mode in ((wal, "wal"), (plain, "delete")):
        conn = apsw.Connection(str(path))
        conn.pragma("journal_mode", mode)
        conn.execute("CREATE TABLE t(a); INSERT INTO t VALUES (1)")
        conn.close()
    assert _wal_mode(wal) and not _wal_mode(plain) and not _wal_mode(tmp_path / "missing.db")
    writer = apsw.Connection(str(wal))
    reader = connect(wal, readonly=True, immutable=True)  # WAL: opened as usual, so it sees committed writes
    try:
        writer.execute("INSERT INTO t VALUES (2)")
        assert reader.execute("SELECT count(*) FROM t").fetchall()[0][0] == 2
    finally:
        reader.close()
        writer.close()
    reader = connect(plain, readonly=True, immutable=True)
    try:
        assert reader.execute("SELECT count(*) FROM t").fetchall()[0][0] == 1
    finally:
        reader.close()
