"""What the commands print for people: `credit explain` (--top, French), `credit score` with a bad id."""

from __future__ import annotations

import re

import apsw
import pytest
from click.testing import CliRunner

from app.cli.main import cli


@pytest.fixture(scope="module")
def args(pipeline):
    return ["--db", str(pipeline.db), "--model", str(pipeline.model_dir)]


@pytest.fixture(scope="module")
def client_id(pipeline):
    conn = apsw.Connection(str(pipeline.db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return conn.execute("SELECT min(client_id) FROM features").fetchall()[0][0]
    finally:
        conn.close()


@pytest.mark.parametrize("top", [1, 3, 7])
def test_explain_top_n_shows_n_contributions(args, client_id, top):
    res = CliRunner().invoke(cli, ["explain", str(client_id), "--top", str(top), "--lang", "en", *args])
    assert res.exit_code == 0, res.output
    assert f"top {top}:" in res.output
    rows = [ln for ln in res.output.splitlines() if re.search(r"  [+-]\d+\.\d{4}  \(", ln)]
    assert len(rows) == top
    reasons = [ln for ln in res.output.splitlines() if ln.startswith("  - ")]
    assert len(reasons) <= top


def test_explain_in_french_is_all_french(args, client_id):
    res = CliRunner().invoke(cli, ["explain", str(client_id), "--top", "3", "--lang", "fr", *args])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "les 3 principales" in out and "valeur de base :" in out and "marge :" in out
    for english in ("margin", "base value", "top 3", "threshold", "Main risk reasons", "missing"):
        assert english not in out, english


@pytest.mark.parametrize("bad", ["abc", "0", "-5", "7.0", "1e3", "9007199254740993"])
def test_a_bad_client_id_says_what_a_client_id_is(args, bad):
    for command in ("score", "explain"):
        res = CliRunner().invoke(cli, [command, *args, "--", bad])
        assert res.exit_code == 2, res.output
        assert f"{bad!r} is not a client id: a client id is a whole number from 1 to" in res.output
        assert "e.g. 100002" in res.output
        assert "valid integer" not in res.output


def test_compile_keeps_treelite_notes_out_of_the_console(pipeline_copy):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_")}
    for so in pipeline_copy.model_dir.glob("*.so"):
        so.unlink()
    out = subprocess.run(
        [sys.executable, "-m", "app.cli.main", "compile", "--model", str(pipeline_copy.model_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    console = out.stdout + out.stderr
    for noise in ("Treelite version", "Parallel compilation", "originated from a newer"):
        assert noise not in console, console
    assert "treelite + tl2cgen C" in console and "parity" in console
    log = (pipeline_copy.model_dir / "build" / "tl2cgen.log").read_text()
    assert "Treelite" in log or "Parallel compilation" in log
