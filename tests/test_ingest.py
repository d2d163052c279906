"""`credit ingest`: tables and counts on a small generated set; clear errors on bad files and no
half-written (or damaged) database."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import apsw
import pytest
from click.testing import CliRunner

from app.cli.data import ingest_command
from app.data.ingest import IngestError, IngestWarning, ingest, load_schema, table_name

TINY = Path(__file__).parent / "data" / "tiny"


def csv_rows(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f) - 1


@pytest.fixture
def tiny(tmp_path) -> Path:
    d = tmp_path / "raw"
    shutil.copytree(TINY, d)
    return d


@pytest.fixture(scope="module")
def generated_db(raw_data, tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("ingest") / "credit.db"
    ingest(raw_data, db, progress=False)
    return db


def test_generated_set_tables_and_counts(raw_data, generated_db):
    conn = apsw.Connection(str(generated_db), flags=apsw.SQLITE_OPEN_READONLY)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    for file_name in load_schema():
        table = table_name(file_name)
        assert table in tables
        (n,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert n == csv_rows(raw_data / file_name), file_name
    assert {"features", "feature_names", "labels", "clients", "meta"} <= tables
    n_train = csv_rows(raw_data / "application_train.csv")
    n_test = csv_rows(raw_data / "application_test.csv")
    assert conn.execute("SELECT count(*) FROM features").fetchone() == (n_train + n_test,)
    assert conn.execute("SELECT count(*) FROM clients").fetchone() == (n_train + n_test,)
    assert conn.execute("SELECT count(*) FROM labels").fetchone() == (n_train,)
    assert conn.execute("SELECT count(*) FROM clients WHERE split = 'test'").fetchone() == (n_test,)
    (p,) = conn.execute("SELECT count(*) FROM feature_names").fetchone()
    assert p >= 300
    assert conn.execute("SELECT count(*) FROM features WHERE length(x) <> 4 * ?", (p,)).fetchone() == (0,)
    # typed columns and key indexes
    types = {r[1]: r[2] for r in conn.execute("PRAGMA table_info(bureau)")}
    assert (types["SK_ID_CURR"], types["AMT_CREDIT_SUM"], types["CREDIT_ACTIVE"]) == ("INTEGER", "REAL", "TEXT")
    indexed = {
        (r[0], r[1])
        for r in conn.execute(
            "SELECT m.tbl_name, i.name FROM sqlite_schema m, pragma_index_info(m.name) i WHERE m.type = 'index'"
        )
    }
    for table, key in [
        ("bureau", "SK_ID_CURR"),
        ("bureau", "SK_ID_BUREAU"),
        ("bureau_balance", "SK_ID_BUREAU"),
        ("previous_application", "SK_ID_PREV"),
        ("installments_payments", "SK_ID_CURR"),
        ("application_train", "SK_ID_CURR"),
        ("credit_card_balance", "SK_ID_PREV"),
    ]:
        assert (table, key) in indexed
    # placeholders are data: every 365243 of the CSV arrives as that number (neither dropped nor turned into NULL)
    with open(raw_data / "application_train.csv", newline="") as f:
        rows = csv.DictReader(f)
        in_csv = sum(1 for row in rows if row["DAYS_EMPLOYED"] == "365243")
    assert in_csv > 0  # the generator writes the placeholder for some clients
    assert conn.execute("SELECT count(*) FROM application_train WHERE DAYS_EMPLOYED = 365243").fetchone()[0] == in_csv
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # read-only data: no -wal beside it
    conn.close()
    assert not Path(str(generated_db) + ".tmp").exists()


def run_failing(data_dir: Path, db: Path, match: str) -> IngestError:
    with pytest.raises(IngestError, match=match) as info:
        ingest(data_dir, db, progress=False)
    assert not db.exists()
    assert not Path(str(db) + ".tmp").exists()
    return info.value


def test_missing_file(tiny, tmp_path):
    (tiny / "bureau_balance.csv").unlink()
    run_failing(tiny, tmp_path / "c.db", r"missing file\(s\) .*bureau_balance\.csv")


def test_missing_column(tiny, tmp_path):
    path = tiny / "bureau.csv"
    text = path.read_text().replace("AMT_CREDIT_SUM_DEBT", "SOMETHING_ELSE")
    path.write_text(text)
    run_failing(tiny, tmp_path / "c.db", r"^bureau\.csv: missing column\(s\) AMT_CREDIT_SUM_DEBT$")


def test_unparseable_value_names_file_line_column(tiny, tmp_path):
    path = tiny / "bureau.csv"
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace(",3000.0,", ",abc,")
    path.write_text("".join(lines))
    err = run_failing(tiny, tmp_path / "c.db", "cannot parse")
    assert err.message == "bureau.csv line 3 column AMT_CREDIT_SUM: cannot parse 'abc' as a number"


@pytest.mark.parametrize("text", ["inf", "-Infinity", "1e400", "9" * 400, "1e39", "NaN"])
def test_non_finite_number_names_file_line_column(tiny, tmp_path, text):
    path = tiny / "bureau.csv"
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace(",3000.0,", f",{text},")
    path.write_text("".join(lines))
    if text == "NaN":  # a missing value, as everywhere else
        ingest(tiny, tmp_path / "c.db", progress=False)
        return
    err = run_failing(tiny, tmp_path / "c.db", "not a finite number")
    assert err.message.startswith("bureau.csv line 3 column AMT_CREDIT_SUM: "), err.message


def test_bad_integer(tiny, tmp_path):
    path = tiny / "installments_payments.csv"
    path.write_text(path.read_text().replace("100001,1.0,2,", "100001,1.0,2.5,"))
    err = run_failing(tiny, tmp_path / "c.db", "cannot parse")
    assert (
        err.message == "installments_payments.csv line 3 column NUM_INSTALMENT_NUMBER: cannot parse '2.5' as an integer"
    )


def test_truncated_file(tiny, tmp_path):
    path = tiny / "previous_application.csv"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # cut in the middle of the last row
    run_failing(tiny, tmp_path / "c.db", r"previous_application\.csv.*(truncated)")


def test_short_row_in_the_middle(tiny, tmp_path):
    path = tiny / "POS_CASH_balance.csv"
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(2, "9001,100001,-5\n")
    path.write_text("".join(lines))
    err = run_failing(tiny, tmp_path / "c.db", "truncated or malformed")
    assert err.message.startswith("POS_CASH_balance.csv line 3: expected 8 columns, got 3")


@pytest.mark.parametrize("content", [b"", b"\n"])
def test_empty_file(tiny, tmp_path, content):
    (tiny / "credit_card_balance.csv").write_bytes(content)
    run_failing(tiny, tmp_path / "c.db", r"credit_card_balance\.csv: the file is empty")


def test_header_only_application_train(tiny, tmp_path):
    path = tiny / "application_train.csv"
    path.write_text(path.read_text().splitlines(keepends=True)[0])
    run_failing(tiny, tmp_path / "c.db", r"application_train\.csv: the file has a header but no data rows")


def test_non_utf8(tiny, tmp_path):
    path = tiny / "bureau.csv"
    path.write_bytes(path.read_bytes().replace(b"Consumer credit", b"Consumer cr\xe9dit"))
    run_failing(tiny, tmp_path / "c.db", r"^bureau\.csv line 2 column CREDIT_TYPE: text is not valid UTF-8")


def test_empty_key(tiny, tmp_path):
    path = tiny / "bureau_balance.csv"
    path.write_text(path.read_text().replace("5002,-11,0", ",-11,0"))
    run_failing(tiny, tmp_path / "c.db", r"^bureau_balance\.csv line 7 column SK_ID_BUREAU: the key is empty$")


def test_duplicate_client_and_bad_target(tiny, tmp_path):
    path = tiny / "application_train.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join([*lines, lines[1]]))
    run_failing(tiny, tmp_path / "c.db", r"application_train\.csv column SK_ID_CURR: client 100001 appears more")
    path.write_text("".join(lines).replace("100002,1,", "100002,2,"))
    run_failing(tiny, tmp_path / "c.db", r"application_train\.csv line 3 column TARGET: must be 0 or 1, got 2")


def test_extra_column_ignored_with_warning(tiny, tmp_path):
    path = tiny / "bureau_balance.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(f"{line},{'NOTE' if i == 0 else 'x'}" for i, line in enumerate(lines)) + "\n")
    with pytest.warns(IngestWarning, match=r"bureau_balance\.csv: ignoring extra column\(s\) NOTE"):
        ingest(tiny, tmp_path / "c.db", progress=False)
    conn = apsw.Connection(str(tmp_path / "c.db"))
    assert [r[1] for r in conn.execute("PRAGMA table_info(bureau_balance)")] == [
        "SK_ID_BUREAU",
        "MONTHS_BALANCE",
        "STATUS",
    ]
    conn.close()


def test_failed_ingest_keeps_existing_database(tiny, tmp_path):
    db = tmp_path / "c.db"
    ingest(tiny, db, progress=False)
    before = db.read_bytes()
    (tiny / "bureau.csv").write_text("SK_ID_CURR\n1\n")
    with pytest.raises(IngestError, match="bureau.csv: missing column"):
        ingest(tiny, db, progress=False)
    assert db.read_bytes() == before
    assert not Path(str(db) + ".tmp").exists()
    conn = apsw.Connection(str(db))
    assert conn.execute("SELECT count(*) FROM features").fetchone() == (4,)
    conn.close()


def test_cli(tiny, tmp_path):
    db = tmp_path / "cli.db"
    result = CliRunner().invoke(ingest_command, [str(tiny), "--db", str(db), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "4 clients" in result.output
    (tiny / "bureau.csv").unlink()
    result = CliRunner().invoke(ingest_command, [str(tiny), "--db", str(tmp_path / "other.db"), "--no-progress"])
    assert result.exit_code == 1
    assert "missing file(s)" in result.output and "bureau.csv" in result.output
    assert not (tmp_path / "other.db").exists()


def test_bom_crlf_and_file_name_case_are_accepted(tiny, tmp_path):
    path = tiny / "bureau.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    (tiny / "POS_CASH_balance.csv").rename(tiny / "pos_cash_balance.csv")
    ingest(tiny, tmp_path / "c.db", progress=False)
    conn = apsw.Connection(str(tmp_path / "c.db"))
    assert conn.execute("SELECT count(*), sum(AMT_CREDIT_SUM) FROM bureau").fetchone() == (2, 4000.0)
    assert conn.execute("SELECT count(*) FROM pos_cash_balance").fetchone() == (2,)
    conn.close()
