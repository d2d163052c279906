"""Security: every non-public route refuses missing, wrong and wrong-role keys (routes enumerated from the app's
own OpenAPI schema, so a new route cannot escape); keys never appear in logs, bodies or the schema; keys are
compared in constant time; user-facing SQL is read-only and time-limited; the dashboard refuses to listen on
a public address without a password.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import apsw
import httpx
import pytest
from apiserver import ADMIN, ADMIN_KEY, OFFICER, OFFICER_KEY
from loadgen import db_state

from app.store import default_path

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz")}
ADMIN_PREFIXES = ("/monitoring", "/outcomes", "/reviews", "/overrides")  # admin, or risk (issues 19, 32): never officer
WRONG_KEY = "wrong-key-5a8c1f3e9d7b"  # looks like a key; must never be echoed either
SECRETS = (OFFICER_KEY, ADMIN_KEY, WRONG_KEY)


@pytest.fixture(scope="module")
def cid(known) -> int:
    return known[0]


@pytest.fixture(scope="module")
def schema(api) -> dict:
    r = httpx.get(api.url + "/schema/openapi.json", timeout=30)
    assert r.status_code == 200
    return r.json()


@pytest.fixture(scope="module")
def operations(schema) -> list[tuple[str, str]]:
    methods = ("get", "post", "put", "patch", "delete")
    return sorted((m.upper(), p) for p, item in schema["paths"].items() for m in item if m in methods)


def _url(path: str, cid: int) -> str:
    return path.replace("{client_id}", str(cid))


def _call(api, method: str, path: str, cid: int, headers: dict[str, str]) -> httpx.Response:
    body = {"features": {}} if method == "POST" else None
    return httpx.request(method, api.url + _url(path, cid), headers=headers, json=body, timeout=30)


BAD_AUTH = {
    "missing": {},
    "wrong key": {"Authorization": f"Bearer {WRONG_KEY}"},
    "empty bearer": {"Authorization": 'Bearer ""'},
    "bearer only": {"Authorization": "Bearer"},
    "basic scheme": {"Authorization": f"Basic {OFFICER_KEY}"},
    "key without scheme": {"Authorization": OFFICER_KEY},
    "key prefix": {"Authorization": f"Bearer {OFFICER_KEY[:-1]}"},
    "key plus suffix": {"Authorization": f"Bearer {OFFICER_KEY}x"},
    "key in query only": {},
    "two keys": {"Authorization": f"Bearer {WRONG_KEY} {OFFICER_KEY}"},
}


def test_only_health_endpoints_are_public_in_the_schema(operations, schema):
    assert set(PUBLIC) <= set(operations)
    for method, path in operations:
        op = schema["paths"][path][method.lower()]
        if (method, path) in PUBLIC:
            continue
        assert op.get("security"), f"{method} {path} does not declare its security requirement"
        assert "401" in op.get("responses", {}), f"{method} {path} does not document 401"


@pytest.mark.parametrize("case", sorted(BAD_AUTH))
def test_every_non_public_route_refuses_a_bad_key(api, operations, cid, case):
    for method, path in operations:
        if (method, path) in PUBLIC:
            continue
        url = _url(path, cid) + (f"?key={OFFICER_KEY}" if case == "key in query only" else "")
        r = httpx.request(method, api.url + url, headers=BAD_AUTH[case], json=None, timeout=30)
        assert r.status_code == 401, (case, method, path, r.status_code, r.text[:200])
        body = r.json()
        assert set(body) == {"error", "detail"}
        assert r.headers.get("www-authenticate", "").lower().startswith("bearer")
        for secret in SECRETS:
            assert secret not in r.text


def test_officer_key_is_refused_on_admin_routes_and_accepted_elsewhere(api, operations, cid):
    seen_admin = 0
    for method, path in operations:
        if (method, path) in PUBLIC:
            continue
        r = _call(api, method, path, cid, OFFICER)
        if path.startswith(ADMIN_PREFIXES):
            seen_admin += 1
            assert r.status_code == 403, (method, path, r.status_code)
            assert set(r.json()) == {"error", "detail"}
            assert _call(api, method, path, cid, ADMIN).status_code not in (401, 403), (method, path)
        else:
            assert r.status_code not in (401, 403), (method, path, r.status_code, r.text[:200])
    assert seen_admin >= 2


def test_public_routes_answer_without_a_key(api):
    assert httpx.get(api.url + "/healthz").status_code == 200
    assert httpx.get(api.url + "/readyz").status_code == 200
    assert httpx.get(api.url + "/schema/openapi.json").status_code == 200


def test_keys_never_appear_in_logs_bodies_schema_or_database(api, data, operations, cid, schema):
    bodies: list[str] = [json.dumps(schema)]
    for method, path in operations:
        for headers in (OFFICER, ADMIN, {"Authorization": f"Bearer {WRONG_KEY}"}, {"Authorization": WRONG_KEY}):
            bodies.append(_call(api, method, path, cid, headers).text)
    # error paths too: bad body, unknown route, 405, 404 client
    with api.client(headers=ADMIN) as http:
        bodies.append(http.post("/score", content=b"{", headers={"content-type": "application/json"}).text)
        bodies.append(http.get("/no/such/route").text)
        bodies.append(http.delete("/score").text)
        bodies.append(http.get(f"/clients/{2**53}/score").text)
        bodies.append(http.get("/monitoring/log", params={"limit": 1000}).text)
        bodies.append(http.get("/monitoring/summary").text)
        bodies.append(http.get("/model").text)
    time.sleep(0.3)
    output = api.output()
    assert output, "the server wrote nothing at all (is its output captured?)"
    for secret in SECRETS:
        assert secret not in output, "a key appears in the server's stdout/stderr"
        for text in bodies:
            assert secret not in text
    conn = apsw.Connection(str(default_path(data.db)), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        dump = "\n".join(str(r) for r in conn.execute("SELECT role, endpoint, request_id FROM prediction_log"))
    finally:
        conn.close()
    assert dump
    for secret in SECRETS:
        assert secret not in dump


def test_key_comparison_is_constant_time():
    from app.service import auth

    source = inspect.getsource(auth)
    assert "hmac.compare_digest" in source
    fn = textwrap.dedent(inspect.getsource(auth.KeyRing.role_for))
    tree = ast.parse(fn)
    calls = [ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert "hmac.compare_digest" in calls
    # no early exit on a match and no ==/!=/in comparison involving the presented key or a stored key
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            text = ast.unparse(node)
            assert not any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops) or not any(
                name in text for name in ("key", "candidate", "presented")
            ), f"non-constant-time comparison in role_for: {text}"
        if isinstance(node, ast.For):
            assert not any(isinstance(n, ast.Return | ast.Break) for n in ast.walk(node)), "early exit in key loop"
    # and it works: each key gets its role, near misses get nothing
    ring = auth.KeyRing(auth.parse_keys(f"{OFFICER_KEY}:officer,{ADMIN_KEY}:admin"))
    assert ring.role_for(f"Bearer {OFFICER_KEY}") == "officer"
    assert ring.role_for(f"Bearer {ADMIN_KEY}") == "admin"
    for bad in (None, "", "Bearer", f"Bearer {OFFICER_KEY[:-1]}", f"Bearer {OFFICER_KEY}0", f"Token {ADMIN_KEY}"):
        assert ring.role_for(bad) is None


# ---- user-facing SQL is read-only and time-limited ------------------------------------------------------------


def credit(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "app.cli.main", *args], capture_output=True, text=True, timeout=timeout, env=full_env,
        cwd=ROOT,
    )  # fmt: skip


WRITES = [
    "DELETE FROM features",
    "UPDATE features SET x = zeroblob(4)",
    "INSERT INTO labels VALUES (1, 1)",
    "DROP TABLE features",
    "CREATE TABLE evil (a)",
    "ALTER TABLE features ADD COLUMN evil",
    "PRAGMA journal_mode = DELETE; DELETE FROM features",
    "SELECT 1; DELETE FROM features",
    "CREATE TEMP TABLE t AS SELECT 1; DELETE FROM features",
    "REPLACE INTO features SELECT client_id, x FROM features",
    "SELECT load_extension('/tmp/x')",
    "PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = '' WHERE name = 'features'",
]


@pytest.mark.parametrize("query", WRITES)
def test_credit_sql_is_read_only(data, query):
    before = db_state(data.db)
    res = credit("sql", query, "--db", str(data.db), "--model", str(data.model_dir))
    assert res.returncode != 0, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    assert db_state(data.db) == before


def test_credit_sql_cannot_write_other_files(data, tmp_path):
    target = tmp_path / "exfil.db"
    for query in (f"VACUUM INTO '{target}'", f"ATTACH '{target}' AS x; CREATE TABLE x.t (a)"):
        res = credit("sql", query, "--db", str(data.db), "--model", str(data.model_dir))
        assert not target.exists(), f"`credit sql {query!r}` wrote {target} (exit {res.returncode})"
        assert res.returncode != 0, (query, res.stdout, res.stderr)


RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


@pytest.mark.parametrize("how", ["option", "env"])
def test_credit_sql_time_limit_stops_a_runaway_query(data, how):
    args = ["sql", RUNAWAY, "--db", str(data.db), "--model", str(data.model_dir)]
    env = {}
    if how == "option":
        args += ["--timeout", "1"]
    else:
        env["CREDIT_SQL_TIMEOUT"] = "1"
    t0 = time.monotonic()
    res = credit(*args, env=env, timeout=60)
    elapsed = time.monotonic() - t0
    assert res.returncode != 0, (res.stdout, res.stderr)
    assert "time limit" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert elapsed < 20, elapsed  # 1 s limit + interpreter and model start on a busy machine


# ---- the dashboard on any address needs accounts to log in with -------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "127.0.0.1"])
def test_credit_ui_without_accounts_refuses_to_start(host, tmp_path):
    env = {"CREDIT_UI_USERS": "", "CREDIT_UI_USERS_FILE": str(tmp_path / "no-accounts")}
    try:
        res = credit("ui", "--host", host, "--port", "1", env=env, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`credit ui --host {host}` without accounts started (still running after 60 s)")
    assert res.returncode != 0
    assert "no accounts" in res.stderr and "credit ui-account" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
