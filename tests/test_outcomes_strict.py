"""Outcomes as strict as the API: one id rule (app/ids.py), one date rule (1900 .. now + one day; a date alone in
either ISO form is the end of that day), duplicates counted once, an explicit recorded correction path
(--replace), and a streamed import in bounded memory with short write transactions."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import apsw
import click
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from app import ids
from app.cli.main import cli
from app.cli.options import CLIENT_ID
from app.monitoring import outcomes
from app.monitoring.outcomes import OutcomeError
from app.service.http import ApiError, parse_id
from app.store import open_store, predlog

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC).timestamp()
HEADER = "client_id,defaulted,observed_at\n"


def ts(text: str) -> float:
    return outcomes.parse_date(text, NOW)


# ---- one id rule --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["١٠٠٠١٣", "0100014", "+1", " 1", "1 ", "1.0", "0", "", "9007199254740993", "1e3"])
def test_ids_the_api_refuses_are_refused_everywhere(text):
    with pytest.raises(ValueError):
        ids.parse_client_id(text)
    with pytest.raises(ApiError):
        parse_id(text)
    with pytest.raises(ValueError, match="client_id must be"):
        outcomes.parse_value("client_id", text)
    with pytest.raises(click.BadParameter):
        CLIENT_ID.convert(text, None, None)
    with pytest.raises(OutcomeError, match="line 2 column 1 \\(client_id\\)"):
        outcomes.parse_csv(HEADER + f'"{text}",0,2026-01-01\n', "o.csv", NOW)


@given(st.text(alphabet=st.sampled_from("0123456789١٠+- .e"), max_size=18) | st.integers(0, 2**54).map(str))
def test_the_cli_the_api_and_the_outcomes_accept_exactly_the_same_ids(text):
    def accepted(parse) -> int | None:
        try:
            return parse(text)
        except (ValueError, ApiError, click.BadParameter):
            return None

    rule = accepted(ids.parse_client_id)
    assert accepted(parse_id) == rule
    assert accepted(lambda t: outcomes.parse_value("client_id", t)) == rule
    assert accepted(lambda t: CLIENT_ID.convert(t, None, None)) == rule
    if rule is not None:
        assert str(rule) == text and 1 <= rule <= 2**53


def test_the_data_layer_never_imports_the_service_layer():
    for path in [*(ROOT / "app" / "data").glob("*.py"), *(ROOT / "app" / "monitoring").glob("outcomes.py")]:
        tree = ast.parse(path.read_text())
        names = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [n for n in names if n.startswith("app.service")], path


# ---- one date rule ------------------------------------------------------------------------------------------


def test_a_date_alone_means_the_end_of_that_day_in_either_iso_form():
    end = datetime(2026, 12, 1, tzinfo=UTC).timestamp() - 0.001
    assert ts("20261130") == ts("2026-11-30") == end
    assert ts("2026-11-30T23:59:59.999Z") == end
    assert ts("20261130T120000Z") == ts("2026-11-30T12:00:00+00:00")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2999-12-31", "in the future"),
        ("2999-12-31T23:59:59-14:00", "in the future"),
        ("9999-12-31", "in the future"),
        ("2026-12-09", "in the future"),  # its day starts 36 h after NOW
        ("2026-12-08T12:00:01Z", "in the future"),
        ("0001-01-01", "before 1900"),
        ("1899-12-31T23:59:59Z", "before 1900"),
        ("٢٠٢٦-١١-٣٠", "ISO 8601"),
        (" 2026-11-30", "ISO 8601"),
        ("2026-13-01", "ISO 8601"),
    ],
)
def test_dates_outside_1900_to_one_day_ahead_are_refused(text, reason):
    with pytest.raises(ValueError, match=reason):
        ts(text)
    with pytest.raises(OutcomeError) as exc:
        outcomes.parse_csv(HEADER + f"100002,1,{text}\n", "o.csv", NOW)
    assert "o.csv line 2 column 3 (observed_at): observed_at" in str(exc.value) and reason in str(exc.value)


def test_the_bounds_themselves_are_accepted():
    assert ts("1900-01-01T00:00:00Z") == outcomes.MIN_TS
    assert ts("2026-12-08") > NOW  # tomorrow: its day starts within one day
    assert ts("2026-12-08T12:00:00Z") == NOW + outcomes.FUTURE_TOLERANCE


# ---- duplicates, corrections --------------------------------------------------------------------------------


def import_text(conn, tmp_path, text: str, **kw) -> dict:
    f = tmp_path / "o.csv"
    f.write_text(text)
    return outcomes.import_file(conn, f, now=NOW, **kw)


def test_a_client_given_twice_in_a_file_counts_once(tmp_path):
    conn = open_store(tmp_path / "s.db")
    got = import_text(conn, tmp_path, HEADER + "7,1,2026-01-01\n7,1,2026-01-01\n8,0,20260101\n8,0,2026-01-01\n")
    assert got["received"] == 4 and got["duplicates"] == 2 and got["written"] == 2


def test_both_outcomes_at_the_same_instant_is_an_error_naming_both_lines(tmp_path):
    conn = open_store(tmp_path / "s.db")
    with pytest.raises(OutcomeError) as exc:
        import_text(conn, tmp_path, HEADER + "7,1,2026-01-01\n9,0,2026-01-01\n7,0,20260101\n")
    assert "line 2, line 4: client 7 is given both defaulted 0 and 1" in str(exc.value)
    assert conn.execute("SELECT count(*) FROM outcomes").fetchall() == [(0,)]


def test_an_older_outcome_is_reported_not_dropped_and_replace_corrects_it_with_a_record(tmp_path):
    conn = open_store(tmp_path / "s.db")
    import_text(conn, tmp_path, HEADER + "7,1,2026-06-01\n8,0,2026-06-01\n")
    got = import_text(conn, tmp_path, HEADER + "7,0,2026-01-01\n8,0,2026-06-01\n")
    assert (got["written"], got["older"], got["unchanged"], got["corrected"]) == (0, 1, 1, 0)
    got = import_text(conn, tmp_path, HEADER + "7,0,2026-01-01\n8,0,2026-06-01\n", replace=True)
    assert (got["written"], got["older"], got["unchanged"], got["corrected"]) == (1, 0, 1, 1)
    assert conn.execute("SELECT defaulted, observed_at, source FROM outcomes WHERE client_id = 7").fetchall() == [
        (0, ts("2026-01-01"), "import:o.csv --replace")
    ]
    rec = conn.execute(
        "SELECT client_id, old_defaulted, old_observed_at, old_source, new_defaulted, new_observed_at, source"
        " FROM outcome_corrections"
    ).fetchall()
    assert rec == [(7, 1, ts("2026-06-01"), "import:o.csv", 0, ts("2026-01-01"), "import:o.csv --replace")]


def test_cli_reports_older_outcomes_and_the_replace_flag(tmp_path):
    env = {"CREDIT_DB": str(tmp_path / "credit.db"), "CREDIT_LOG_DB": str(tmp_path / "log.db")}
    apsw.Connection(env["CREDIT_DB"]).close()
    today = datetime.now(UTC).date()
    f = tmp_path / "o.csv"
    runner = CliRunner()
    f.write_text(HEADER + f"7,1,{today.isoformat()}\n")
    assert runner.invoke(cli, ["outcomes", "import", str(f)], env=env).exit_code == 0
    f.write_text(HEADER + f"7,0,{(today - timedelta(days=30)).strftime('%Y%m%d')}\n7,0,{today - timedelta(days=30)}\n")
    res = runner.invoke(cli, ["outcomes", "import", str(f)], env=env)
    assert res.exit_code == 0 and "0 of 2 outcomes written" in res.output and "1 repeated in the file" in res.output
    assert "1 outcomes not written: the store holds a later observation" in res.stderr and "--replace" in res.stderr
    res = runner.invoke(cli, ["outcomes", "import", str(f), "--replace"], env=env)
    assert (
        res.exit_code == 0 and "1 of 2 outcomes written" in res.output and "1 stored outcomes corrected" in res.output
    )
    f.write_text(HEADER + "7,0,2999-12-31\n")
    res = runner.invoke(cli, ["outcomes", "import", str(f)], env=env)
    assert res.exit_code == 1 and "line 2 column 3 (observed_at)" in res.output and "in the future" in res.output


def test_api_counts_a_duplicate_once_and_corrects_only_when_asked(pipeline, tmp_path):
    from apiserver import ADMIN, KEYS, copy_pipeline
    from litestar.testing import TestClient

    from app.config import Settings
    from app.service.api import create_app

    data = copy_pipeline(pipeline, tmp_path)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="seconds")
    earlier = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    app = create_app(Settings(db=str(data.db), model_dir=str(data.model_dir), api_keys=KEYS, keys_file=""))
    with TestClient(app) as client:

        def post(items, **extra):
            return client.post("/outcomes", json={"outcomes": items, **extra}, headers=ADMIN)

        r = post([{"client_id": 100013, "defaulted": 1, "observed_at": later}] * 2)
        assert r.status_code == 200 and (r.json()["written"], r.json()["duplicates"]) == (1, 1), r.text
        r = post([{"client_id": 100013, "defaulted": 0, "observed_at": earlier}])
        assert (r.json()["written"], r.json()["older"]) == (0, 1), r.text
        r = post([{"client_id": 100013, "defaulted": 0, "observed_at": earlier}], replace=True)
        assert (r.json()["written"], r.json()["corrected"]) == (1, 1), r.text
        for when in ("2999-12-31", "2999-12-31T23:59:59-14:00", "0001-01-01"):
            r = post([{"client_id": 100013, "defaulted": 0, "observed_at": when}])
            assert r.status_code == 400 and "outcomes[0]: observed_at" in r.text, r.text
        r = post([{"client_id": 100013, "defaulted": 0, "observed_at": earlier},
                  {"client_id": 100013, "defaulted": 1, "observed_at": earlier}])  # fmt: skip
        assert r.status_code == 400 and "outcomes[0], outcomes[1]: client 100013" in r.text, r.text
    conn = open_store(Settings(db=str(data.db)).log_db_path)
    assert conn.execute("SELECT count(*), min(source) FROM outcome_corrections").fetchall() == [
        (1, "api:admin replace")
    ]


# ---- bounded memory, short transactions ---------------------------------------------------------------------


def write_file(path: Path, n: int) -> None:
    with open(path, "w") as f:
        f.write(HEADER)
        f.writelines(f"{100000 + i},{i % 13 == 0:d},2026-{1 + i % 11:02d}-{1 + i % 28:02d}\n" for i in range(n))


def import_peak_mb(tmp_path: Path, csv_path: Path) -> float:
    """Peak RSS of `credit outcomes import` in its own process (os.wait4's ru_maxrss of that child)."""
    (tmp_path / "credit.db").touch()
    cmd = [str(Path(sys.executable).with_name("credit")), "outcomes", "import", str(csv_path),
           "--db", str(tmp_path / "credit.db"), "--log-db", str(tmp_path / f"{csv_path.stem}.db")]  # fmt: skip
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen
    assert child.returncode == 0
    return usage.ru_maxrss / 1024


def test_import_memory_does_not_grow_with_the_file_and_writers_wait_at_most_one_batch(tmp_path):
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    write_file(small, 5_000)
    write_file(large, 100_000)  # 20x the rows: the old import held about 34 MB more for it
    waits: list[float] = []
    seen: set[int] = set()  # the largest imported id each time the other writer got the lock
    stop = threading.Event()
    open_store(tmp_path / "large.db").close()

    def writer() -> None:  # what the API's log writer does: short BEGIN IMMEDIATE transactions on the store
        conn = open_store(tmp_path / "large.db")
        predlog.prepare(conn)  # the API's log writer's busy handler: retry every 0.5 ms
        try:
            while not stop.is_set():
                t0 = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                waits.append(time.perf_counter() - t0)
                seen.add(conn.execute("SELECT coalesce(max(client_id), 0) FROM outcomes").fetchall()[0][0])
                conn.execute("COMMIT")
                time.sleep(0.005)
        finally:
            conn.close()

    peak_small = import_peak_mb(tmp_path, small)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        peak_large = import_peak_mb(tmp_path, large)
    finally:
        stop.set()
        thread.join()
    assert peak_large - peak_small < 10, (peak_small, peak_large)
    # the writer got the lock in the middle of the import many times (one transaction would show 0 or 100,000)
    partial = {m for m in seen if 100_000 < m < 199_999}
    assert len(partial) >= 20, sorted(seen)[:50]
    assert max(waits) < 5.0, max(waits)  # one batch of 500 rows at most (generous: the machine is shared)
    conn = open_store(tmp_path / "large.db")
    assert conn.execute("SELECT count(*) FROM outcomes").fetchall() == [(100_000,)]
