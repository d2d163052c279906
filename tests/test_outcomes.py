"""Outcomes (app.monitoring.outcomes): CSV import with errors by line and column, idempotent re-imports,
the latest observation wins; simulation from the data's labels; the CLI."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import apsw
import pytest
from click.testing import CliRunner

from app.cli.main import cli
from app.monitoring import outcomes
from app.monitoring.outcomes import Outcome, OutcomeError
from app.store import default_path, open_store


def store(path) -> apsw.Connection:
    return open_store(path)


def rows(conn) -> list[tuple]:
    return conn.execute("SELECT client_id, defaulted, observed_at FROM outcomes ORDER BY client_id").fetchall()


def ts(text: str) -> float:
    return outcomes.parse_date(text)


def test_parse_date_end_of_day_and_time_zones():
    assert ts("2025-03-31") == datetime(2025, 4, 1, tzinfo=UTC).timestamp() - 0.001
    assert ts("2025-03-31T12:00:00") == datetime(2025, 3, 31, 12, tzinfo=UTC).timestamp()
    assert ts("2025-03-31T12:00:00+02:00") == datetime(2025, 3, 31, 10, tzinfo=UTC).timestamp()
    assert ts("2025-03-31T12:00:00Z") == datetime(2025, 3, 31, 12, tzinfo=UTC).timestamp()
    with pytest.raises(ValueError, match="in the future"):
        ts("9999-12-31")


def test_parse_csv_duplicates_latest_date_wins():
    text = "observed_at,client_id,defaulted\n2025-01-01,7,1\n2025-02-01,7,0\n2024-12-01,7,1\n2025-01-01,8,1\n"
    got = {o.client_id: o for o in outcomes.parse_csv(text)}
    assert got[7].defaulted == 0 and got[7].observed_at == ts("2025-02-01")
    assert got[8].defaulted == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("client_id,defaulted\n1,0\n", "line 1: missing column 'observed_at'"),
        ("client_id,defaulted,observed_at,score\n", "line 1 column 4 ('score'): unknown column"),
        ("client_id,defaulted,observed_at\n1,2,2025-01-01\n", "line 2 column 2 (defaulted): defaulted must be 0 or 1"),
        ("client_id,defaulted,observed_at\n1,0,2025-01-01\nx,0,2025-01-01\n", "line 3 column 1 (client_id)"),
        ("client_id,defaulted,observed_at\n0,0,2025-01-01\n", "line 2 column 1 (client_id): client_id must be"),
        ("client_id,defaulted,observed_at\n9007199254740993,0,2025-01-01\n", "line 2 column 1 (client_id)"),
        ("client_id,defaulted,observed_at\n1,0,31/01/2025\n", "line 2 column 3 (observed_at): observed_at must be"),
        ("client_id,defaulted,observed_at\n1,0\n", "line 2: 2 fields, expected 3"),
        ("client_id,defaulted,observed_at\n1,0,2025-01-01\n\n2,1,nope\n", "line 4 column 3 (observed_at)"),
    ],
)
def test_parse_csv_errors_name_line_and_column(text, message):
    with pytest.raises(OutcomeError) as exc:
        outcomes.parse_csv(text, "o.csv")
    assert "o.csv" in str(exc.value) and message in str(exc.value)


def test_every_error_is_listed():
    text = "client_id,defaulted,observed_at\n1,5,2025-01-01\n2,0,bad\nz,1,2025-01-01\n"
    with pytest.raises(OutcomeError) as exc:
        outcomes.parse_csv(text, "o.csv")
    assert len(exc.value.errors) == 3
    assert [e.split(":")[0] for e in exc.value.errors] == [
        "o.csv line 2 column 2 (defaulted)",
        "o.csv line 3 column 3 (observed_at)",
        "o.csv line 4 column 1 (client_id)",
    ]


def test_upsert_idempotent_and_latest_wins(tmp_path):
    conn = store(tmp_path / "s.db")
    first = [Outcome(1, 0, ts("2025-01-01")), Outcome(2, 1, ts("2025-01-01"))]
    assert outcomes.upsert(conn, first, "a") == {"received": 2, "written": 2}
    assert outcomes.upsert(conn, first, "a") == {"received": 2, "written": 0}  # re-import: nothing changes
    assert outcomes.upsert(conn, [Outcome(1, 1, ts("2024-06-01"))], "b")["written"] == 0  # older: ignored
    assert outcomes.upsert(conn, [Outcome(1, 1, ts("2025-06-01"))], "c")["written"] == 1  # newer: wins
    assert rows(conn) == [(1, 1, ts("2025-06-01")), (2, 1, ts("2025-01-01"))]
    assert outcomes.counts(conn) == {"outcomes": 2, "defaults": 2}


def test_import_file_writes_nothing_when_a_line_is_bad(tmp_path):
    conn = store(tmp_path / "s.db")
    f = tmp_path / "o.csv"
    f.write_text("client_id,defaulted,observed_at\n1,0,2025-01-01\n2,9,2025-01-01\n")
    with pytest.raises(OutcomeError, match="nothing imported"):
        outcomes.import_file(conn, f)
    assert rows(conn) == []
    f.write_bytes(b"client_id,defaulted,observed_at\n1,0,2025-01-01\xff\n")
    with pytest.raises(OutcomeError, match="not UTF-8"):
        outcomes.import_file(conn, f)


def test_simulate_uses_the_labels_of_logged_clients(tmp_path):
    conn = store(tmp_path / "s.db")
    conn.execute(
        "CREATE TABLE labels (client_id INTEGER PRIMARY KEY, target INTEGER);"
        "INSERT INTO labels VALUES (1, 1), (2, 0), (3, 1), (4, 0);"
    )
    with conn:
        for cid in (1, 2, 2, 5, None):  # 5 has no label (a test-split client); None is an applicant
            conn.execute(
                "INSERT INTO prediction_log (ts, request_id, client_id, features, probability, decision, model_id,"
                " latency_ms, role, endpoint) VALUES (1.0, ?, ?, x'', 0.5, 'accept', 'm', 1, 'officer', 'e')",
                (str(uuid.uuid4()), cid),
            )
    got = outcomes.simulate(conn, conn, observed_at=100.0)
    assert got == {"logged_clients": 3, "without_label": 1, "received": 2, "written": 2}
    assert rows(conn) == [(1, 1, 100.0), (2, 0, 100.0)]


def test_cli_import_and_simulate(pipeline_copy, tmp_path):
    from app.scoring.db import connect

    env = {"CREDIT_DB": str(pipeline_copy.db), "CREDIT_MODEL_DIR": str(pipeline_copy.model_dir)}
    data = connect(pipeline_copy.db, readonly=True)
    ids = [r[0] for r in data.execute("SELECT client_id FROM labels ORDER BY client_id LIMIT 50")]
    data.close()
    conn = open_store(default_path(pipeline_copy.db))
    with conn:
        for cid in ids:
            conn.execute(
                "INSERT INTO prediction_log (ts, request_id, client_id, features, probability, decision, model_id,"
                " latency_ms, role, endpoint) VALUES (1.0, ?, ?, x'', 0.5, 'accept', 'm', 1, 'officer', 'e')",
                (str(uuid.uuid4()), cid),
            )
    conn.close()
    runner = CliRunner()
    res = runner.invoke(cli, ["outcomes", "simulate"], env=env)
    assert res.exit_code == 0, res.output
    assert "50 outcomes written" in res.output
    bad = tmp_path / "bad.csv"
    bad.write_text("client_id,defaulted,observed_at\n1,yes,2025-01-01\n")
    res = runner.invoke(cli, ["outcomes", "import", str(bad)], env=env)
    assert res.exit_code == 1
    assert "bad.csv line 2 column 2 (defaulted)" in res.output
    good = tmp_path / "good.csv"
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()  # later than the simulated outcome, within one day
    good.write_text(f"client_id,defaulted,observed_at\n{ids[0]},1,{tomorrow}\n")
    res = runner.invoke(cli, ["outcomes", "import", str(good)], env=env)
    assert res.exit_code == 0 and "1 of 1 outcomes written" in res.output
    res = runner.invoke(cli, ["outcomes", "import", str(good)], env=env)
    assert "0 of 1 outcomes written" in res.output
