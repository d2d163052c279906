"""The SQLite extension app/scoring/native/score_ext.c, built with the stand-in model of tests/native_stub/.

Real SQLite files; apsw (bundled SQLite) and the Debian sqlite3 shell (system SQLite) both load it.
"""

from __future__ import annotations

import shutil
import subprocess

import apsw
import numpy as np
import pytest
from native_stub.build import NAN_TRIGGER, build_stub_model, make_features_db, predict_reference
from needs import needs

from app.scoring.bundle import load_model
from app.scoring.db import DatabaseMissingError, connect
from app.scoring.library import ModelError

pytestmark = needs("gcc", "apt-get install gcc")
SQLITE3 = shutil.which("sqlite3")


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    root = tmp_path_factory.mktemp("ext")
    model_dir = root / "model"
    manifest = build_stub_model(model_dir)
    db = root / "credit.db"
    ids, X = make_features_db(db)
    return type("Stub", (), {"root": root, "model_dir": model_dir, "manifest": manifest, "db": db, "ids": ids, "X": X})


@pytest.fixture
def conn(stub):
    c = connect(stub.db, stub.model_dir)
    yield c
    c.close()


def err(conn, sql, params=()):
    with pytest.raises(apsw.Error) as info:
        conn.execute(sql, params).fetchall()
    return str(info.value)


def test_score_equals_reference_for_every_client(stub, conn):
    rows = conn.execute("SELECT client_id, score(client_id), decision(client_id) FROM features ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == stub.ids.tolist()
    got = np.array([r[1] for r in rows])
    model = load_model(stub.model_dir)
    assert np.array_equal(got, model.predict(stub.X))  # same code, same bits
    assert np.array_equal(got, [predict_reference(x) for x in stub.X])
    thr = stub.manifest["threshold"]
    assert [r[2] for r in rows] == ["refuse" if p >= thr else "accept" for p in got]
    assert {r[2] for r in rows} == {"accept", "refuse"}
    assert np.isnan(stub.X).any()  # NaN inputs were exercised


def test_unknown_and_null(conn):
    assert conn.execute("SELECT score(1), decision(1), score(NULL), decision(NULL)").fetchone() == (None,) * 4
    assert conn.execute("SELECT score(-9223372036854775808), score(9223372036854775807)").fetchone() == (None, None)


@pytest.mark.parametrize(
    ("arg", "kind"), [("'7'", "TEXT"), ("7.0", "REAL"), ("x'07'", "BLOB"), ("CAST(7 AS TEXT)", "TEXT")]
)
@pytest.mark.parametrize("fn", ["score", "decision"])
def test_non_integer_argument_is_an_error(conn, fn, arg, kind):
    assert conn.execute(f"SELECT {fn}(7)").fetchone()[0] is not None  # client 7 exists
    msg = err(conn, f"SELECT {fn}({arg})")
    assert f"{fn}(client_id): client_id must be an INTEGER, got {kind}" in msg


def test_bound_python_values(conn):
    assert conn.execute("SELECT score(?)", (7,)).fetchone()[0] is not None
    assert "got TEXT" in err(conn, "SELECT score(?)", ("7",))
    assert "got REAL" in err(conn, "SELECT score(?)", (7.0,))


def test_score_features(stub, conn):
    x = stub.X[3].astype("<f4").tobytes()
    assert conn.execute("SELECT score_features(?)", (x,)).fetchone()[0] == predict_reference(stub.X[3])
    same = conn.execute(
        "SELECT count(*) FROM features WHERE score_features(x) IS NOT score(client_id)"
    ).fetchone()[0]  # fmt: skip
    assert same == 0
    assert conn.execute("SELECT score_features(NULL)").fetchone()[0] is None
    x_nan = np.full(3, np.nan, dtype=np.float32)
    p = conn.execute("SELECT score_features(?)", (x_nan.tobytes(),)).fetchone()[0]
    assert p == predict_reference(x_nan)


@pytest.mark.parametrize("nbytes", [0, 1, 8, 13, 16])
def test_score_features_wrong_length(conn, nbytes):
    msg = err(conn, "SELECT score_features(?)", (b"\0" * nbytes,))
    assert "must be 12 bytes (3 float32 features)" in msg
    assert f"got {nbytes} bytes" in msg


def test_score_features_wrong_type(conn):
    assert "x must be a BLOB of 3 float32 features (12 bytes), got TEXT" in err(conn, "SELECT score_features('abc')")
    assert "got INTEGER" in err(conn, "SELECT score_features(1)")


def test_corrupted_features_rows(stub, tmp_path):
    db = tmp_path / "bad.db"
    shutil.copy(stub.db, db)
    c = connect(db, stub.model_dir)
    c.execute(
        "INSERT INTO features VALUES (1, x'0000803f00000040'), (2, 'text'), (3, ?)", (b"\0" * 8 + b"\x00\x40\x42\x44",)
    )
    msg = err(c, "SELECT score(1)")
    assert "features.x of client_id 1" in msg and "must be 12 bytes" in msg and "got 8 bytes (2 features)" in msg
    assert "features.x of client_id 2 is TEXT, not a BLOB" in err(c, "SELECT score(2)")
    assert np.float32(NAN_TRIGGER).tobytes() == b"\x00\x40\x42\x44"
    assert "score(client_id): the model returned NaN, not a probability" in err(c, "SELECT score(3)")
    assert "not a probability" in err(c, "SELECT decision(3)")
    assert "not a probability" in err(c, "SELECT score_features(x) FROM features WHERE client_id = 3")
    # a failed call leaves the cached lookup usable
    assert c.execute("SELECT score(7)").fetchone()[0] is not None
    c.close()


def test_model_identity(stub, conn):
    m = stub.manifest
    assert conn.execute("SELECT model_id(), model_threshold()").fetchone() == (m["model_id"], m["threshold"])
    assert conn.execute("SELECT * FROM score_model_info").fetchall() == [(m["model_id"], 3, m["threshold"])]


def test_decision_at_the_threshold_is_refuse(stub, tmp_path):
    x = stub.X[0]
    p = predict_reference(x)
    model_dir = tmp_path / "m"
    build_stub_model(model_dir, threshold=p)
    c = connect(stub.db, model_dir)
    row = c.execute("SELECT score(?1), model_threshold(), decision(?1)", (int(stub.ids[0]),)).fetchone()
    assert row == (p, p, "refuse")
    c.close()


def test_no_features_table(stub, tmp_path):
    db = tmp_path / "empty.db"
    apsw.Connection(str(db)).close()
    c = connect(db, stub.model_dir)
    assert "score(client_id): cannot read main.features: no such table: main.features" in err(c, "SELECT score(1)")
    assert c.execute("SELECT model_id()").fetchone()[0] == stub.manifest["model_id"]
    c.close()


def test_directonly_outside_temp_views(stub, tmp_path):
    db = tmp_path / "v.db"
    shutil.copy(stub.db, db)
    c = connect(db, stub.model_dir)
    c.execute("CREATE VIEW stored AS SELECT score(client_id) AS p FROM features")
    assert "unsafe use of score()" in err(c, "SELECT * FROM stored")
    with pytest.raises(apsw.SQLError):  # not DETERMINISTIC: never part of an index
        c.execute("CREATE INDEX i ON features(score(client_id))")
    c.execute("CREATE TEMP VIEW mine AS SELECT score(client_id) AS p FROM features")
    assert len(c.execute("SELECT * FROM mine").fetchall()) == len(stub.ids)
    # score_features is deterministic: usable in an expression index
    c.execute("CREATE TEMP TABLE t(x BLOB)")
    c.execute("CREATE INDEX temp.ti ON t(score_features(x))")
    c.close()


def test_sees_other_connections_commits_and_never_pins_the_wal(stub, tmp_path):
    """The cached lookup is reset after each call: no read transaction is held between statements, so
    updates committed by other connections are seen and checkpoints are never blocked (a cached
    sqlite3_blob would fail both: it keeps the connection inside one snapshot)."""
    db = tmp_path / "w.db"
    shutil.copy(stub.db, db)
    writer = connect(db)
    reader = connect(db, stub.model_dir)
    x_new = np.array([0.0, 0.0, -5.0], dtype=np.float32)
    before = reader.execute("SELECT score(7)").fetchone()[0]
    writer.execute("UPDATE features SET x = ? WHERE client_id = 7", (x_new.tobytes(),))
    after = reader.execute("SELECT score(7)").fetchone()[0]
    assert after == predict_reference(x_new) != before
    assert writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0  # 0 = not busy
    reader.close()
    writer.close()


def test_close_frees_everything(stub):
    """The cached lookup statement must not keep connections open (sqlite3_close would say BUSY)."""
    base = apsw.memory_used()
    for _ in range(50):
        c = connect(stub.db, stub.model_dir)
        c.execute("SELECT sum(score(client_id)) FROM features").fetchall()
        c.close()  # raises BusyError if a statement were left unfinalized
    assert apsw.memory_used() - base < 64 * 1024


def test_close_with_pending_cursor(stub):
    c = connect(stub.db, stub.model_dir)
    cur = c.execute("SELECT score(client_id) FROM features")
    next(cur)
    c.close(force=True)


def test_hot_swap(stub, tmp_path):
    model_dir = tmp_path / "model"
    old = build_stub_model(model_dir, bias=-1.0)
    a = connect(stub.db, model_dir)
    client = int(stub.ids[5])
    p_old = a.execute("SELECT score(?)", (client,)).fetchone()[0]
    new = build_stub_model(model_dir, bias=0.5)  # new model-<id>.so, score.so and manifest repointed
    assert new["model_id"] != old["model_id"]
    b = connect(stub.db, model_dir)
    assert a.execute("SELECT model_id()").fetchone()[0] == old["model_id"]
    assert b.execute("SELECT model_id()").fetchone()[0] == new["model_id"]
    # not just the id: the code of each connection's own library runs (no RTLD_GLOBAL interposition)
    assert a.execute("SELECT score(?)", (client,)).fetchone()[0] == p_old == predict_reference(stub.X[5], -1.0)
    assert b.execute("SELECT score(?)", (client,)).fetchone()[0] == predict_reference(stub.X[5], 0.5)
    assert load_model(model_dir).so_path.name == new["library"]["file"]
    a.close()
    b.close()


def test_tampered_library_is_refused(stub, tmp_path):
    model_dir = tmp_path / "model"
    manifest = build_stub_model(model_dir)
    so = model_dir / manifest["library"]["file"]
    so.write_bytes(so.read_bytes() + b"\0")
    with pytest.raises(ModelError, match="sha256"):
        connect(stub.db, model_dir)


def test_missing_database_is_not_created(stub, tmp_path):
    for kwargs in ({"readonly": True}, {"model": stub.model_dir}):
        with pytest.raises(DatabaseMissingError, match="does not exist"):
            connect(tmp_path / "nope.db", **kwargs)
    assert not (tmp_path / "nope.db").exists()


def test_pragmas(stub, tmp_path):
    db = tmp_path / "p.db"
    c = connect(db)
    assert c.pragma("journal_mode") == "wal"
    assert c.pragma("foreign_keys") == 1
    assert c.pragma("busy_timeout") == 5000
    assert "no such column" in err(c, 'SELECT "abc"')
    c.close()
    r = connect(stub.db, stub.model_dir, readonly=True)
    assert r.readonly("main")
    assert "readonly" in err(r, "DELETE FROM features").replace(" ", "").lower()
    assert r.execute("SELECT count(*) FROM client_scores").fetchone()[0] == len(stub.ids)
    r.close()


def test_views(stub, conn):
    rows = conn.execute("SELECT client_id, probability, decision FROM client_scores ORDER BY client_id").fetchall()
    direct = conn.execute("SELECT client_id, score(client_id), decision(client_id) FROM features ORDER BY 1").fetchall()
    assert rows == direct
    plan = " ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN SELECT * FROM client_scores WHERE client_id = 7"))
    assert "WHERE client_id = ?1" in plan  # the point lookup is pushed down: one seek, one model call
    s = dict(
        zip(
            [d[0] for d in conn.execute("SELECT * FROM portfolio_summary").description],
            conn.execute("SELECT * FROM portfolio_summary").fetchone(),
            strict=True,
        )
    )
    n_refused = sum(r[2] == "refuse" for r in rows)
    assert s["clients"] == len(rows) and s["refused"] == n_refused and s["accepted"] == len(rows) - n_refused
    assert s["model_id"] == stub.manifest["model_id"]
    bands = conn.execute("SELECT band, clients, share FROM score_bands").fetchall()
    assert sum(b[1] for b in bands) == len(rows)
    assert abs(sum(b[2] for b in bands) - 1.0) < 1e-12


# -- the Debian sqlite3 shell (its own, older SQLite) ------------------------------------------------


def shell(db, *args):
    return subprocess.run([SQLITE3, str(db), *args], capture_output=True, text=True, timeout=60)


@needs("sqlite3", "just system-deps")
def test_shell_loads_score_so_and_matches_apsw(stub, conn):
    res = shell(
        stub.db,
        f".load {stub.model_dir / 'score'}",
        ".mode list",
        "SELECT client_id, printf('%!.17g', score(client_id)), decision(client_id) FROM features ORDER BY 1;",
        "SELECT model_id();",
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""  # in particular no "unable to close due to unfinalized statements"
    lines = res.stdout.splitlines()
    assert lines[-1] == stub.manifest["model_id"]
    got = [(int(a), float(b), c) for a, b, c in (ln.split("|") for ln in lines[:-1])]
    assert (
        got
        == conn.execute("SELECT client_id, score(client_id), decision(client_id) FROM features ORDER BY 1").fetchall()
    )


@needs("sqlite3", "just system-deps")
def test_shell_errors(stub):
    res = shell(stub.db, f".load {stub.model_dir / 'score'}", "SELECT score('7');")
    assert res.returncode != 0
    assert "score(client_id): client_id must be an INTEGER, got TEXT" in res.stderr
    res = shell(
        stub.db, f".load {stub.model_dir / 'score'}", "SELECT score(1) IS NULL, score_features(zeroblob(12)) > 0;"
    )
    assert (res.returncode, res.stdout.strip(), res.stderr) == (0, "1|1", "")


HOT_SWAP_GLOBAL = """
import ctypes, sys
import apsw
old_so, new_so, db = sys.argv[1:4]
ctypes.CDLL(old_so, mode=ctypes.RTLD_GLOBAL)  # old model's credit_* now in the global symbol scope
c = apsw.Connection(db)
c.enable_load_extension(True)
c.load_extension(new_so, "sqlite3_score_init")
print(c.execute("SELECT model_id(), score(7)").fetchone())
"""


def test_hot_swap_with_old_model_in_global_scope(stub, tmp_path):
    """SQLite builds that dlopen extensions RTLD_GLOBAL (or any RTLD_GLOBAL load of an old model) must not make
    the new library's shim call the old model's credit_* (score_ext.c declares them protected)."""
    import sys

    old = build_stub_model(tmp_path / "old", bias=-1.0)
    new = build_stub_model(tmp_path / "new", bias=0.5)
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            HOT_SWAP_GLOBAL,
            str(tmp_path / "old" / old["library"]["file"]),
            str(tmp_path / "new" / new["library"]["file"]),
            str(stub.db),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    k = stub.ids.tolist().index(7)
    assert res.stdout.strip() == repr((new["model_id"], predict_reference(stub.X[k], 0.5)))


@needs("sqlite3", "just system-deps")
def test_pipeline_shell_equals_apsw(pipeline):
    """The real compiled model: the Debian sqlite3 shell and apsw give the same bits for every client."""
    res = shell(
        pipeline.db,
        f".load {pipeline.model_dir / 'score'}",
        "SELECT client_id, printf('%!.17g', score(client_id)) FROM features ORDER BY 1;",
    )
    assert res.returncode == 0 and res.stderr == "", res.stderr
    got = [(int(a), float(b)) for a, b in (ln.split("|") for ln in res.stdout.splitlines())]
    c = connect(pipeline.db, pipeline.model_dir, readonly=True)
    assert got == c.execute("SELECT client_id, score(client_id) FROM features ORDER BY 1").fetchall()
    c.close()
