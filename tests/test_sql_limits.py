"""`credit sql` is bounded whatever the query: time (fetching and writing included), bytes of output, the size
of one value and SQLite's memory. Each hostile query runs the real CLI in a subprocess whose peak memory is
read from the kernel (the child's VmHWM in /proc, polled until it exits)."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from native_stub.build import build_stub_model, make_features_db
from needs import needs

from app.cli.main import cli
from app.cli.sql_output import DEFAULT_MAX_BYTES, HEAP_MAX, VALUE_MAX, csv_line

pytestmark = needs("gcc", "apt-get install gcc")

PEAK_BUDGET_MB = 1024  # peak RSS of `credit sql`, whatever the query
CREDIT = Path(sys.executable).with_name("credit")
BLOBS_20K = (
    "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r LIMIT 100000)"
    " SELECT i, randomblob(20000) AS b FROM r"
)


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    root = tmp_path_factory.mktemp("sqllimits")
    build_stub_model(root / "model")
    make_features_db(root / "credit.db", n_clients=50, seed=1)
    return root


class Run:
    def __init__(self, code: int, peak_mb: float, out_bytes: int, err: str, wall: float):
        self.code, self.peak_mb, self.out_bytes, self.err, self.wall = code, peak_mb, out_bytes, err, wall

    def stopped_after(self) -> float | None:
        m = re.search(r"query stopped after ([0-9.]+) s", self.err)
        return float(m.group(1)) if m else None


def credit_sql(root: Path, *args: str, stdout: Path | None = None) -> Run:
    """Run `credit sql ARGS` in a child process; its exit code, peak RSS (MB), bytes written and stderr."""
    out_path = stdout or root / "out"
    err_path = root / "err"
    cmd = [str(CREDIT), "sql", "--db", str(root / "credit.db"), "--model", str(root / "model"), *args]
    t0 = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        child = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=root)
        peak_kb = 0
        while child.poll() is None:  # the child's own high-water mark (ru_maxrss would start at the forking
            peak_kb = max(peak_kb, _vm_hwm_kb(child.pid))  # pytest's RSS, which grows over a whole run)
            time.sleep(0.005)
    wall = time.monotonic() - t0
    size = out_path.stat().st_size if out_path.is_file() else 0
    return Run(child.returncode, peak_kb / 1024, size, err_path.read_text(), wall)


def _vm_hwm_kb(pid: int) -> int:
    """VmHWM of a live process (its peak resident set since its exec), 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    m = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(m.group(1)) if m else 0


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_a_300_mb_value_is_refused_in_bounded_memory(stub, fmt):
    run = credit_sql(stub, "--timeout", "2", "--format", fmt, "SELECT zeroblob(300000000)")
    assert run.code == 1, run.err
    assert f"a value is longer than {VALUE_MAX:,} bytes" in run.err and "Traceback" not in run.err
    assert run.out_bytes == 0
    assert run.peak_mb < PEAK_BUDGET_MB, run.peak_mb


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_100000_rows_of_20_kb_blobs_stop_at_the_time_limit_or_the_byte_cap(stub, fmt):
    run = credit_sql(stub, "--timeout", "5", "--format", fmt, BLOBS_20K)
    assert run.code == 1, run.err
    time_limit = "time limit 5 s" in run.err
    byte_cap = f"limit {DEFAULT_MAX_BYTES:,} bytes (--max-bytes" in run.err
    assert time_limit or byte_cap, run.err
    if time_limit:
        assert run.stopped_after() <= 5.0 + 1.0, run.err  # a row's encoding at most past the deadline
    assert run.out_bytes <= DEFAULT_MAX_BYTES
    assert run.peak_mb < PEAK_BUDGET_MB, run.peak_mb


def test_the_byte_cap_is_exact_and_named(stub):
    run = credit_sql(stub, "--timeout", "60", "--format", "csv", "--max-bytes", "3000000", BLOBS_20K)
    assert run.code == 1 and "limit 3,000,000 bytes (--max-bytes, env CREDIT_SQL_MAX_BYTES" in run.err, run.err
    assert 3_000_000 - 40_100 < run.out_bytes <= 3_000_000  # whole rows up to the cap, nothing beyond
    assert run.peak_mb < PEAK_BUDGET_MB


def test_the_time_limit_covers_encoding_and_writing(stub, tmp_path):
    """Rows that SQLite makes in a few VM steps but take long to encode (30 MB blobs as 60 MB of hex each)."""
    many = (
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r LIMIT 1000) SELECT i, zeroblob(30000000) FROM r"
    )
    run = credit_sql(stub, "--timeout", "1", "--max-bytes", str(10**12), "--format", "csv", many,
                     stdout=Path(os.devnull))  # fmt: skip
    assert run.code == 1 and "time limit 1 s" in run.err, run.err
    assert run.stopped_after() <= 1.0 + 1.5, run.err
    assert run.peak_mb < PEAK_BUDGET_MB


def test_sqlite_memory_is_capped_even_when_the_query_asks_for_more(stub):
    query = (
        "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -4000000; "
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r LIMIT 400000) "
        "SELECT count(DISTINCT randomblob(1000)) AS n FROM r"
    )
    run = credit_sql(stub, "--timeout", "120", "--format", "csv", query)
    assert run.code == 1 and f"SQLite needed more than {HEAP_MAX >> 20} MiB of memory" in run.err, run.err
    assert run.peak_mb < PEAK_BUDGET_MB, run.peak_mb


def invoke(stub, *args, env=None):
    return CliRunner().invoke(
        cli, ["sql", *args, "--db", str(stub / "credit.db"), "--model", str(stub / "model")], env=env
    )


@pytest.mark.parametrize("value", ["0", "-1"])
def test_max_bytes_must_be_positive(stub, value):
    res = invoke(stub, "SELECT 1", "--max-bytes", value)
    assert res.exit_code == 2 and "--max-bytes" in res.output and "Traceback" not in res.output, res.output
    res = invoke(stub, "SELECT 1", env={"CREDIT_SQL_MAX_BYTES": value})
    assert res.exit_code == 2 and "CREDIT_SQL_MAX_BYTES" in res.output, res.output


def test_max_bytes_from_the_environment_and_small_results_unchanged(stub):
    res = invoke(stub, "SELECT 1 AS a; SELECT x'ff00' AS b", "--format", "json", env={"CREDIT_SQL_MAX_BYTES": "40"})
    assert res.exit_code == 0 and res.stdout == '[[{"a":1}],[{"b":"ff00"}]]\n', res.output
    res = invoke(stub, "SELECT 1 AS a; SELECT x'ff00' AS b", "--format", "json", env={"CREDIT_SQL_MAX_BYTES": "20"})
    assert res.exit_code == 1 and "limit 20 bytes" in res.output, res.output
    res = invoke(stub, "SELECT 1 AS a WHERE 0", "--format", "json")
    assert res.exit_code == 0 and res.stdout == "[]\n"


def test_the_heap_limit_is_given_back_after_the_command(stub):
    import apsw

    before = apsw.hard_heap_limit(-1)
    assert invoke(stub, "SELECT 1").exit_code == 0
    assert apsw.hard_heap_limit(-1) == before


SQL_VALUES = st.none() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text() | st.binary(max_size=40)


@given(st.lists(SQL_VALUES, min_size=1, max_size=6))
def test_the_fast_csv_line_reads_back_as_the_values(row):
    """csv_line replaces the csv module (too slow on one long field); a CSV reader gets every value back."""
    want = ["" if v is None else v.hex() if isinstance(v, bytes) else repr(v) if isinstance(v, float) else str(v)
            for v in row]  # fmt: skip
    assert list(csv.reader(io.StringIO(csv_line(row), newline=""))) == [want]
