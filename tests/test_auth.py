"""API keys and roles: parsing, constant-time lookup, 401/403 per endpoint, keys never echoed or logged."""

from __future__ import annotations

import apsw
import pytest
from apiserver import ADMIN, ADMIN_KEY, KEYS, OFFICER, OFFICER_KEY, ApiServer, copy_pipeline

from app.service.auth import KeyConfigError, KeyRing, load_keys, parse_keys
from app.store import default_path


def test_parse_keys_commas_and_lines():
    keys = parse_keys("a1:officer, b2:admin\n# comment\nc3:officer,\n")
    assert keys == [(b"a1", "officer"), (b"b2", "admin"), (b"c3", "officer")]
    assert parse_keys("k:with:colon:admin") == [(b"k:with:colon", "admin")]


@pytest.mark.parametrize("bad", ["nokey", ":admin", "k:root", "k:", "a b:admin"])
def test_parse_keys_rejects_malformed_entries_without_echoing_them(bad):
    with pytest.raises(KeyConfigError) as info:
        parse_keys(f"secret123:officer,{bad}")
    assert "secret123" not in str(info.value)


def test_keys_file_is_used_when_setting_is_empty(tmp_path):
    f = tmp_path / "keys"
    f.write_text("f1:admin\nf2:officer\n")
    assert load_keys("", f) == [(b"f1", "admin"), (b"f2", "officer")]
    assert load_keys("s1:officer", f) == [(b"s1", "officer")]
    assert load_keys("", tmp_path / "missing") == []


def test_keyring_roles():
    ring = KeyRing(parse_keys("o:officer,a:admin"))
    assert ring.role_for("Bearer o") == "officer"
    assert ring.role_for("bearer a") == "admin"
    for bad in (None, "", "Bearer", "Bearer x", "Basic o", "o", "Bearer o2", "Bearer  "):
        assert ring.role_for(bad) is None
    assert ring.allows("admin", "officer") and ring.allows("officer", "officer")
    assert not ring.allows("officer", "admin")


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory):
    data = copy_pipeline(pipeline, tmp_path_factory.mktemp("auth"))
    with ApiServer(data.db, data.model_dir) as api:
        api.cid = apsw.Connection(str(data.db)).execute("SELECT min(client_id) FROM features").fetchall()[0][0]
        yield api


def endpoints(cid: int) -> list[tuple[str, str, dict, str]]:
    """(method, path, request kwargs, role needed)."""
    return [
        ("GET", f"/clients/{cid}", {}, "officer"),
        ("GET", "/clients?prefix=1", {}, "officer"),
        ("GET", f"/clients/{cid}/score", {}, "officer"),
        ("GET", f"/clients/{cid}/features", {}, "officer"),
        ("POST", "/score", {"json": {"features": {}}}, "officer"),
        ("POST", "/score/batch", {"json": {"client_ids": [cid]}}, "officer"),
        ("GET", "/model", {}, "officer"),
        ("GET", "/population?limit=3", {}, "officer"),
        ("GET", "/monitoring/summary", {}, "admin"),
        ("GET", "/monitoring/log", {}, "admin"),
        ("GET", "/monitoring/drift", {}, "admin"),
    ]


def test_roles_per_endpoint(server):
    with server.client() as http:
        for method, path, kwargs, needed in endpoints(server.cid):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": OFFICER_KEY}):
                r = http.request(method, path, headers=headers, **kwargs)
                assert r.status_code == 401, (method, path, r.status_code)
                assert r.json()["error"] and r.headers["www-authenticate"].startswith("Bearer")
            r = http.request(method, path, headers=OFFICER, **kwargs)
            if needed == "admin":
                assert r.status_code == 403, (path, r.text)
            else:
                assert r.status_code == 200, (path, r.text)
            r = http.request(method, path, headers=ADMIN, **kwargs)
            assert r.status_code not in (401, 403), (path, r.text)


def test_open_endpoints(server):
    with server.client() as http:
        for path in ("/healthz", "/readyz", "/schema/openapi.json", "/schema/"):
            assert http.get(path).status_code == 200, path


def test_admin_role_is_logged_not_the_key(server):
    with server.client() as http:
        body = http.get(f"/clients/{server.cid}/score", headers=ADMIN).json()
    conn = apsw.Connection(str(default_path(server.db)), flags=apsw.SQLITE_OPEN_READONLY)
    role = conn.execute("SELECT role FROM prediction_log WHERE request_id = ?", (body["request_id"],)).fetchall()
    dump = "\n".join(str(r) for r in conn.execute("SELECT * FROM prediction_log"))
    conn.close()
    assert role == [("admin",)]
    assert ADMIN_KEY not in dump and OFFICER_KEY not in dump


def test_keys_never_in_responses_or_server_output(server):
    texts = []
    with server.client() as http:
        for headers in (OFFICER, ADMIN, {"Authorization": "Bearer " + OFFICER_KEY + "x"}):
            for method, path, kwargs, _ in endpoints(server.cid):
                r = http.request(method, path, headers=headers, **kwargs)
                texts.append(r.text + str(r.headers))
        texts.append(http.get("/schema/openapi.json").text)
    out = server.output()
    for key in (OFFICER_KEY, ADMIN_KEY):
        assert all(key not in t for t in texts)
        assert key not in out
    assert KEYS not in out


def test_no_keys_configured_means_401_everywhere(pipeline, tmp_path):
    data = copy_pipeline(pipeline, tmp_path)
    with ApiServer(data.db, data.model_dir, keys="") as api, api.client() as http:
        assert http.get("/healthz").status_code == 200
        assert http.get("/model", headers=OFFICER).status_code == 401
        assert "no API keys configured" in api.output()
