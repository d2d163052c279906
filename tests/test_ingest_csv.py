"""`credit ingest-csv`: a one-table CSV into the features / labels / clients layout; hostile content."""

from __future__ import annotations

import math
import re
from pathlib import Path

import apsw
import pytest
from click.testing import CliRunner

from app.cli.data import ingest_csv_command
from app.data.features import data_fingerprint, load_matrix
from app.data.ingest import IngestError, IngestWarning
from app.data.ingest_csv import ingest_csv

LOANS = Path(__file__).parent / "data" / "loans.csv"


def open_db(db: Path) -> apsw.Connection:
    return apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)


def test_text_target_good_bad(tmp_path):
    db = tmp_path / "c.db"
    summary = ingest_csv(LOANS, db, id_col="loan_id", target_col="status", progress=False)
    assert summary == {"rows": 6, "labelled": 5, "features": 9, "positive": "target 1 = 'bad'"}
    conn = open_db(db)
    # 'Bad' and 'bad' are the same label; the empty target (loan 4) is unlabelled -> split 'test'
    assert dict(conn.execute("SELECT client_id, target FROM labels")) == {1: 0, 2: 1, 3: 0, 5: 1, 6: 0}
    assert dict(conn.execute("SELECT client_id, split FROM clients"))[4] == "test"
    ids, X, y, names = load_matrix(conn, labelled_only=True)
    assert ids.tolist() == [1, 2, 3, 5, 6] and y.tolist() == [0, 1, 0, 1, 0]
    assert names[:5] == ["age", "income", "housing=own", "housing=rent", "housing=free"]
    assert "status" not in " ".join(names) and "loan_id" not in names
    row = dict(zip(names, X[2].tolist(), strict=True))  # loan 3: income missing, housing free
    assert row["age"] == 28 and math.isnan(row["income"])
    assert (row["housing=own"], row["housing=free"]) == (0, 1)
    row5 = dict(zip(names, X[3].tolist(), strict=True))  # loan 5: housing missing -> NaN
    assert math.isnan(row5["housing=own"])
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    assert meta["source"] == "csv:loans.csv"
    assert meta["data_fingerprint"] == data_fingerprint(conn)
    assert meta["positive_label"] == "target 1 = 'bad'"
    assert 'CASE WHEN "housing" IS NULL' in meta["feature_sql"]
    # formula-like text is kept as plain data
    assert conn.execute("SELECT purpose FROM clients WHERE client_id = 2").fetchone() == ("=cmd|' /C calc'!A0",)
    conn.close()


def test_yes_no_needs_positive(tmp_path):
    csv = tmp_path / "yn.csv"
    csv.write_text("id,x,defaulted\n10,1.5,yes\n11,2.5,no\n12,,NO\n")
    with pytest.raises(IngestError, match=r"yn\.csv column defaulted: labels 'no' / 'yes'.*--positive"):
        ingest_csv(csv, tmp_path / "c.db", id_col="id", target_col="defaulted", progress=False)
    assert not (tmp_path / "c.db").exists()
    with pytest.raises(IngestError, match="--positive 'maybe' is not one of the labels"):
        ingest_csv(csv, tmp_path / "c.db", id_col="id", target_col="defaulted", positive="maybe", progress=False)
    ingest_csv(csv, tmp_path / "c.db", id_col="id", target_col="defaulted", positive="Yes", progress=False)
    conn = open_db(tmp_path / "c.db")
    assert dict(conn.execute("SELECT client_id, target FROM labels")) == {10: 1, 11: 0, 12: 0}
    conn.close()


def test_zero_one_target_and_row_number_ids(tmp_path):
    csv = tmp_path / "01.csv"
    csv.write_text("x,cat,y\n1,a,0\n2,b,1\n3,a,\n4,b,1\n")
    ingest_csv(csv, tmp_path / "c.db", id_col=None, target_col="y", progress=False)
    conn = open_db(tmp_path / "c.db")
    assert dict(conn.execute("SELECT client_id, target FROM labels")) == {1: 0, 2: 1, 4: 1}
    assert dict(conn.execute("SELECT client_id, split FROM clients")) == {1: "train", 2: "train", 3: "test", 4: "train"}
    conn.close()


def test_high_cardinality_gets_rank(tmp_path):
    csv = tmp_path / "hc.csv"
    rows = [f"{i + 1},{'c' + str(i % 12)},{i % 2}" for i in range(48)]
    csv.write_text("id,city,y\n" + "\n".join(rows) + "\n")
    ingest_csv(csv, tmp_path / "c.db", id_col="id", target_col="y", max_levels=3, progress=False)
    conn = open_db(tmp_path / "c.db")
    names = [r[0] for r in conn.execute("SELECT name FROM feature_names ORDER BY idx")]
    assert names == ["city=c0", "city=c1", "city=c10", "city#rank"]
    conn.close()


@pytest.mark.parametrize(
    ("content", "kwargs", "match"),
    [
        (b"", {}, r"bad\.csv: the file is empty"),
        (b"id,x,y\n", {}, r"bad\.csv: the file has a header but no data rows"),
        (b"id,x,y\n1,2,0\n", {"target_col": "nope"}, r"bad\.csv: --target column 'nope' not found"),
        (b"id,x,y\n1,2,0\n2,3,1\n1,4,0\n", {}, r"bad\.csv line 4 column id: id 1 already used on line 2"),
        (b"id,x,y\n1,2,0\nabc,3,1\n", {}, r"bad\.csv line 3 column id: the id must be an integer, got 'abc'"),
        (b"id,x,y\n1,2,a\n2,3,b\n3,4,c\n", {}, r"bad\.csv column y: the target must be binary, found 3 values"),
        (b"id,x,y\n1,2,0\n2,3\n", {}, r"bad\.csv line 3: expected 3 columns, got 2"),
        (b"id,x,X,y\n1,2,3,0\n", {}, r"bad\.csv line 1: duplicate column name"),
        (b"id,x,y\n1,caf\xe9,0\n", {}, r"bad\.csv line 2 column x: text is not valid UTF-8"),
        (b"id,\xff,y\n1,2,0\n", {}, r"bad\.csv line 1: the header is not valid UTF-8"),
        (b"id,x,y\n1,2,0\n0,3,1\n", {}, r"bad\.csv line 3 column id: id 0 is outside 1 \.\. 2\*\*53"),
        (b"id,x,y\n-4,2,0\n", {}, r"bad\.csv line 2 column id: id -4 is outside"),
        (b"id,x,y\n1,2,0\n9007199254740993,3,1\n", {}, r"bad\.csv line 3 column id: id 9007199254740993 is outside"),
        (b"id,x,y\n1,2,1\n2,3,1\n3,4,1\n4,5,\n", {}, r"bad\.csv column y: the target is 1 on every labelled row"),
        (b"id,x,y\n1,2,0\n", {}, r"bad\.csv column y: 1 labelled row\(s\); at least 3"),
        (b"id,x,y\n1,2,0\n2,3,1\n", {}, r"bad\.csv column y: 2 labelled row\(s\); at least 3"),
        (b"id,x,y\n1,2,0\n2,inf,1\n3,4,0\n", {}, r"bad\.csv line 3 column x: 'inf' is not a finite number"),
        (b"id,x,y\n1,-Infinity,0\n2,3,1\n3,4,0\n", {}, r"bad\.csv line 2 column x: '-Infinity' is not a finite"),
        (b"id,x,y\n1,2,0\n2,3,1\n3,1e400,0\n", {}, r"bad\.csv line 4 column x: '1e400' is not a finite"),
        (b"id,x,y\n1,2,0\n2,3,1\n3," + b"9" * 400 + b",0\n", {}, r"bad\.csv line 4 column x: '9999.*' is not a finite"),
        (b"id,x,y\n1,2,0\n2,1e39,1\n3,4,0\n", {}, r"bad\.csv line 3 column x: '1e39' is not a finite"),
    ],
)
def test_bad_files_clear_errors_and_no_database(tmp_path, content, kwargs, match):
    csv = tmp_path / "bad.csv"
    csv.write_bytes(content)
    db = tmp_path / "c.db"
    with pytest.raises(IngestError, match=match):
        ingest_csv(csv, db, **{"id_col": "id", "target_col": "y", "progress": False, **kwargs})
    assert not db.exists() and not Path(str(db) + ".tmp").exists()


def test_existing_database_untouched_on_failure(tmp_path):
    db = tmp_path / "c.db"
    ingest_csv(LOANS, db, id_col="loan_id", target_col="status", progress=False)
    before = db.read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"loan_id,status\n1,good\n1,bad\n")
    with pytest.raises(IngestError):
        ingest_csv(bad, db, id_col="loan_id", target_col="status", progress=False)
    assert db.read_bytes() == before


def test_hostile_content_stored_as_plain_data(tmp_path):
    long_text = "A" * 200_000
    csv = tmp_path / "hostile.csv"
    csv.write_text(
        'id,"name""; DROP TABLE x; --",note,y\n'
        f'1,"=HYPERLINK(""http://evil"")",{long_text},0\n'
        "2,@SUM(1+1),'; DROP TABLE labels; --,1\n"
        "3,+cmd|' /C calc'!A0,\"multi, comma\",0\n",
        encoding="utf-8",
    )
    with pytest.warns(IngestWarning, match="column note: 1 level.* longer than 64 characters"):
        ingest_csv(csv, tmp_path / "c.db", id_col="id", target_col="y", progress=False)
    conn = open_db(tmp_path / "c.db")
    cols = [r[1] for r in conn.execute("PRAGMA table_info(clients)")]
    assert cols == ["client_id", "split", 'name"; DROP TABLE x; --', "note"]
    rows = conn.execute('SELECT "name""; DROP TABLE x; --", note FROM clients ORDER BY client_id').fetchall()
    assert rows == [
        ('=HYPERLINK("http://evil")', long_text),
        ("@SUM(1+1)", "'; DROP TABLE labels; --"),
        ("+cmd|' /C calc'!A0", "multi, comma"),
    ]
    assert conn.execute("SELECT count(*) FROM labels").fetchone() == (3,)
    names = [r[0] for r in conn.execute("SELECT name FROM feature_names")]
    assert all(len(n) < 200 for n in names)  # the 200,000-character level is not encoded
    # feature names are safe for LightGBM / model.txt: no quotes, commas, spaces, brackets
    assert all(re.fullmatch(r"[A-Za-z0-9_=#.\-]+", n) for n in names), names
    conn.close()


def test_cli(tmp_path):
    db = tmp_path / "cli.db"
    args = [str(LOANS), "--id", "loan_id", "--target", "status", "--db", str(db), "--no-progress"]
    result = CliRunner().invoke(ingest_csv_command, args)
    assert result.exit_code == 0, result.output
    assert "6 clients (5 labelled, target 1 = 'bad'), 9 features" in result.output
    result = CliRunner().invoke(ingest_csv_command, [*args[:3], "--target", "age", "--db", str(tmp_path / "o.db")])
    assert result.exit_code == 1 and "target must be binary" in result.output
