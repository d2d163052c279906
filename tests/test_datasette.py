"""Datasette, the analysts' SQLite explorer, with the compiled extension: score() and decision() in the browser
and in its JSON API, read-only. Needs pysqlite3 (this Python's sqlite3 cannot load extensions)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.scoring.db import connect

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def datasette(pipeline, tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("datasette") / "log.txt"
    ext = f"{pipeline.model_dir / 'score.so'}:sqlite3_score_init"
    cmd = [
        str(BIN / "datasette"),
        str(pipeline.db),
        "--load-extension",
        ext,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_")}
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/-/versions.json", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"datasette did not start: {log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield url, pipeline.db.stem
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.integration
def test_datasette_uses_pysqlite3_which_can_load_extensions(datasette):
    url, _ = datasette
    versions = httpx.get(url + "/-/versions.json", timeout=30).json()
    assert "load_extension" in str(versions).lower() or versions["sqlite"]["version"]


@pytest.mark.integration
def test_score_and_decision_in_the_json_api_equal_the_project_scoring(datasette, pipeline):
    url, name = datasette
    sql = "select client_id, score(client_id) as p, decision(client_id) as d from clients order by client_id limit 20"
    r = httpx.get(f"{url}/{name}.json", params={"sql": sql, "_shape": "array"}, timeout=60)
    assert r.status_code == 200, r.text
    rows = r.json()
    conn = connect(pipeline.db, pipeline.model_dir, readonly=True)
    try:
        expected = conn.execute(sql).fetchall()
    finally:
        conn.close()
    assert [(x["client_id"], x["p"], x["d"]) for x in rows] == [tuple(e) for e in expected]
    page = httpx.get(f"{url}/{name}", params={"sql": sql}, timeout=60)
    assert page.status_code == 200 and str(expected[0][0]) in page.text  # the HTML page too


@pytest.mark.integration
@pytest.mark.parametrize(
    "sql",
    ["delete from clients", "update clients set income = 0", "drop table clients", "attach database ':memory:' as x"],
)
def test_datasette_is_read_only(datasette, pipeline, sql):
    url, name = datasette
    r = httpx.get(f"{url}/{name}.json", params={"sql": sql}, timeout=30)
    assert r.status_code >= 400
    conn = connect(pipeline.db, None, readonly=True)
    try:
        assert conn.execute("SELECT count(*) FROM clients").fetchall()[0][0] > 0
    finally:
        conn.close()
