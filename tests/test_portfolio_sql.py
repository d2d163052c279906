"""The portfolio in SQL: the extension's `scores` table (app/scoring/native/score_ext.c) scores main.features
in blocks with the library's batch entry, and equals score(client_id) bit for bit, row for row.

Built with the stand-in model of tests/native_stub/ (its batch entry is its own loop) on a real SQLite file
of more rows than one block (64), so block boundaries, pushed-down ranges and errors inside a block are
exercised; the pipeline test checks the real compiled engine (QuickScorer batch) against score().
"""

from __future__ import annotations

import shutil
import subprocess

import apsw
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from native_stub.build import NAN_TRIGGER, build_stub_model, make_features_db
from needs import needs

from app.scoring.db import connect

pytestmark = needs("gcc", "apt-get install gcc")
SQLITE3 = shutil.which("sqlite3")
N_CLIENTS = 700  # more than ten blocks of 64, the last one partial


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    root = tmp_path_factory.mktemp("portfolio-sql")
    manifest = build_stub_model(root / "model")
    ids, X = make_features_db(root / "credit.db", n_clients=N_CLIENTS, seed=3)
    return type("Stub", (), {"root": root, "model_dir": root / "model", "manifest": manifest, "db": root / "credit.db",
                             "ids": ids, "X": X})  # fmt: skip


@pytest.fixture
def conn(stub):
    c = connect(stub.db, stub.model_dir)
    yield c
    c.close()


def err(conn, sql, params=()):
    with pytest.raises(apsw.Error) as info:
        conn.execute(sql, params).fetchall()
    return str(info.value)


def by_score(conn, where="", params=()):
    return conn.execute(
        f"SELECT client_id, score(client_id), decision(client_id) FROM features {where} ORDER BY client_id", params
    ).fetchall()


def test_scores_equals_score_for_every_client(stub, conn):
    rows = conn.execute("SELECT client_id, probability, decision FROM scores").fetchall()
    assert len(rows) == N_CLIENTS and [r[0] for r in rows] == stub.ids.tolist()  # client_id order
    assert rows == by_score(conn)  # same floats, same decisions
    assert {r[2] for r in rows} == {"accept", "refuse"}
    assert conn.execute("SELECT sum(probability) FROM scores").fetchone()[0] == pytest.approx(
        sum(r[1] for r in rows), rel=1e-12
    )


def test_client_scores_view_and_summary_read_scores(stub, conn):
    plan = " ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN SELECT * FROM client_scores"))
    assert "VIRTUAL TABLE" in plan and "main.features" in plan
    assert conn.execute("SELECT * FROM client_scores ORDER BY client_id").fetchall() == by_score(conn)
    (clients, refused) = conn.execute("SELECT clients, refused FROM portfolio_summary").fetchone()
    assert clients == N_CLIENTS
    assert refused == sum(r[2] == "refuse" for r in by_score(conn))


@pytest.mark.parametrize(
    ("where", "params"),
    [
        ("client_id = 7", ()),
        ("client_id = ?", (7,)),
        ("client_id = '7'", ()),  # the same affinity rules as features itself
        ("client_id = 7.0", ()),
        ("client_id = 7.5", ()),
        ("client_id = NULL", ()),
        ("client_id = 1", ()),  # unknown: no row
        ("client_id > 150000", ()),
        ("client_id >= 150000 AND client_id < 160000", ()),
        ("client_id BETWEEN 120000 AND 121000", ()),
        ("client_id <= 110000", ()),
        ("client_id > 150000.5", ()),
        ("client_id IN (7, 1, 150000)", ()),
        ("client_id < 100 OR client_id > 190000", ()),
    ],
)
def test_constraints_on_client_id(conn, where, params):
    got = conn.execute(f"SELECT client_id, probability, decision FROM scores WHERE {where}", params).fetchall()
    assert sorted(got) == by_score(conn, f"WHERE {where}", params)


def test_point_lookup_is_a_seek(conn):
    plan = " ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN SELECT * FROM scores WHERE client_id = ?", (7,)))
    assert "WHERE client_id = ?1" in plan


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lo=st.integers(90_000, 210_000), width=st.integers(0, 40_000))
def test_ranges_equal_score(conn, lo, width):
    where, params = "WHERE client_id >= ? AND client_id <= ?", (lo, lo + width)
    got = conn.execute(f"SELECT client_id, probability, decision FROM scores {where}", params).fetchall()
    assert got == by_score(conn, where, params)


def test_join_with_clients_and_order(stub, conn):
    rows = conn.execute(
        "SELECT c.client_id, s.probability FROM clients c JOIN scores s USING (client_id) "
        "ORDER BY s.probability DESC LIMIT 10"
    ).fetchall()
    expected = sorted(((r[0], r[1]) for r in by_score(conn)), key=lambda r: -r[1])[:10]
    assert [r[1] for r in rows] == [r[1] for r in expected]
    desc = conn.execute("SELECT client_id FROM scores ORDER BY client_id DESC LIMIT 3").fetchall()
    assert [r[0] for r in desc] == stub.ids[::-1][:3].tolist()


def test_ids_only_and_nested_cursors(stub, conn):
    assert conn.execute("SELECT count(*) FROM scores").fetchone()[0] == N_CLIENTS
    # two cursors on the same table at once (a self-join): each its own scan
    (n,) = conn.execute(
        "SELECT count(*) FROM scores a JOIN scores b ON b.client_id = a.client_id WHERE a.probability = b.probability"
    ).fetchone()
    assert n == N_CLIENTS


def test_bad_rows_fail_the_query_like_score(stub, tmp_path):
    db = tmp_path / "bad.db"
    shutil.copy(stub.db, db)
    c = connect(db, stub.model_dir)
    c.execute("INSERT INTO features VALUES (1, x'0000803f00000040')")
    assert "score(client_id): features.x of client_id 1" in err(c, "SELECT sum(score(client_id)) FROM features")
    msg = err(c, "SELECT sum(probability) FROM scores")
    assert "scores: features.x of client_id 1" in msg and "must be 12 bytes" in msg and "got 8 bytes" in msg
    assert c.execute("SELECT count(*) FROM scores").fetchone()[0] == N_CLIENTS + 1  # ids only: not scored
    c.execute("UPDATE features SET x = 'text' WHERE client_id = 1")
    assert "features.x of client_id 1 is TEXT, not a BLOB" in err(c, "SELECT * FROM scores")
    c.execute("UPDATE features SET x = ? WHERE client_id = 1", (np.array([0, 0, NAN_TRIGGER], "<f4").tobytes(),))
    assert "not a probability" in err(c, "SELECT * FROM scores")
    # the same rows fail as with score(): only a row whose probability is read; strict bounds stay strict
    assert c.execute("SELECT count(*) FROM scores WHERE client_id > 1 AND probability >= 0").fetchone()[0] == N_CLIENTS
    assert "not a probability" in err(c, "SELECT count(*) FROM scores WHERE client_id >= 1 AND probability >= 0")
    assert c.execute("SELECT client_id FROM scores WHERE client_id < 8").fetchall() == [(1,), (7,)]
    c.close()


def test_sees_commits_and_close_frees_everything(stub, tmp_path):
    db = tmp_path / "live.db"
    shutil.copy(stub.db, db)
    reader = connect(db, stub.model_dir)
    writer = connect(db, stub.model_dir)
    assert reader.execute("SELECT count(*) FROM scores").fetchone()[0] == N_CLIENTS
    writer.execute("DELETE FROM features WHERE client_id = 7")
    assert reader.execute("SELECT count(*) FROM scores").fetchone()[0] == N_CLIENTS - 1
    assert writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0  # no read held between queries
    reader.close()  # BusyError if a scan statement were left unfinalized
    writer.close()
    c = connect(db, stub.model_dir)
    cur = c.execute("SELECT * FROM scores")
    next(cur)
    c.close(force=True)


def test_not_from_a_stored_view(stub, tmp_path):
    """Like score(): an untrusted file's own views and triggers cannot read the portfolio's scores."""
    db = tmp_path / "view.db"
    shutil.copy(stub.db, db)
    raw = apsw.Connection(str(db))
    raw.execute("CREATE VIEW stored AS SELECT client_id, probability FROM scores")
    raw.close()
    c = connect(db, stub.model_dir)
    assert "unsafe use of virtual table" in err(c, "SELECT * FROM stored")
    c.execute("CREATE TEMP VIEW mine AS SELECT client_id, probability FROM scores")
    assert c.execute("SELECT count(*) FROM mine").fetchone()[0] == N_CLIENTS
    c.close()


def test_challenger_scores(stub, tmp_path):
    other = tmp_path / "challenger"
    build_stub_model(other, bias=-0.5, threshold=0.5)
    c = connect(stub.db, stub.model_dir, challenger=other)
    got = c.execute("SELECT client_id, probability, decision FROM challenger_scores").fetchall()
    expected = c.execute(
        "SELECT client_id, challenger_score(client_id), challenger_decision(client_id) FROM features ORDER BY 1"
    ).fetchall()
    assert got == expected and got != c.execute("SELECT * FROM scores").fetchall()
    c.close()


@needs("sqlite3", "just system-deps")
def test_shell_reads_scores(stub, conn):
    res = subprocess.run(
        [SQLITE3, str(stub.db), f".load {stub.model_dir / 'score'}", ".mode list",
         "SELECT client_id, printf('%!.17g', probability), decision FROM scores;"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0 and res.stderr == "", res.stderr
    got = [(int(a), float(b), c) for a, b, c in (ln.split("|") for ln in res.stdout.splitlines())]
    assert got == by_score(conn)


def test_pipeline_scores_on_the_batch_engine(pipeline):
    """The real compiled model: `scores` (batch engine) == score() (row path) bit for bit."""
    c = connect(pipeline.db, pipeline.model_dir, readonly=True)
    got = c.execute("SELECT client_id, probability, decision FROM scores").fetchall()
    assert len(got) > 1000 and got == by_score(c)
    c.close()
