"""Every error path of the API answers 4xx/5xx with the one shape {"error": str, "detail": ...} (real server)."""

from __future__ import annotations

import json

import apsw
import httpx
import pytest
from apiserver import ADMIN, OFFICER, ApiServer, copy_pipeline

from app.store import default_path

BATCH_MAX = 5
BODY_MAX = 4096


@pytest.fixture(scope="module")
def api(data):
    env = {"CREDIT_BATCH_MAX": str(BATCH_MAX), "CREDIT_BODY_MAX": str(BODY_MAX)}
    with ApiServer(data.db, data.model_dir, env=env) as server:
        yield server


@pytest.fixture(scope="module")
def http(api):
    with api.client(headers=OFFICER) as client:
        yield client


def log_count(db) -> int:
    """Rows in the prediction log the API keeps for the data file `db` (the operational store beside it)."""
    conn = apsw.Connection(str(default_path(db)), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return conn.execute("SELECT count(*) FROM prediction_log").fetchall()[0][0]
    finally:
        conn.close()


def assert_error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error", "detail"} and isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in r.text
    return body


BAD_IDS = ["7.0", "true", "%207", "+7", "0", "-1", "00", "07", "1e3", "0x10", "9007199254740993",
           "99999999999999999999", "7%20", "١٢", "7_0", "null", "1%3B%20DROP%20TABLE%20features",
           "1%20OR%201%3D1", "1'--", "%27"]  # fmt: skip


@pytest.mark.parametrize("raw", BAD_IDS)
def test_path_ids_are_parsed_strictly(http, raw):
    for suffix in ("", "/score", "/features"):
        assert_error(http.get(f"/clients/{raw}{suffix}"), 400)


def test_unknown_but_valid_ids_are_404(http, data):
    before = log_count(data.db)
    for suffix in ("", "/score", "/features"):
        body = assert_error(http.get(f"/clients/{2**53}{suffix}"), 404)
        assert body["detail"] == {"client_id": 2**53}
    assert log_count(data.db) == before


def test_features_table_survives_injection_attempts(http, data, known):
    http.get("/clients/1;DROP TABLE features")
    http.get("/clients", params={"prefix": "1' OR '1'='1"})
    assert http.get(f"/clients/{known[0]}/score").status_code == 200


@pytest.mark.parametrize(
    "body, status, needle",
    [
        (b'{"features": {"%s": NaN}}', 400, "malformed"),
        (b'{"features": {"%s": Infinity}}', 400, "malformed"),
        (b'{"features": {"%s": -Infinity}}', 400, "malformed"),
        (b'{"features": {"%s": 1e999}}', 400, "range"),
        (b'{"features": {"%s": 1e39}}', 400, "range"),
        (b'{"features": {"%s": "1.5"}}', 400, "%s"),
        (b'{"features": {"%s": true}}', 400, "%s"),
        (b'{"features": {"%s": [1]}}', 400, "%s"),
        (b'{"features": {"%s": {"v": 1}}}', 400, "%s"),
        (b'{"features": {"%s": 1}, "extra": 1}', 400, "extra"),
        (b'{"features": {"not_a_feature": 1, "%s": 1}}', 400, "not_a_feature"),
        (b'{"feature": {"%s": 1}}', 400, "feature"),
        (b'{"features": [1, 2]}', 400, "features"),
        (b'{"features": null}', 400, "features"),
        (b"[]", 400, "object"),
        (b"", 400, "body"),
        (b"not json", 400, "malformed"),
        (b'{"features": {"%s": 1}', 400, "malformed"),
    ],
)
def test_post_score_strict_body(http, known, data, body, status, needle):
    name = known[1][0]
    before = log_count(data.db)
    payload = body.replace(b"%s", name.encode())
    err = assert_error(http.post("/score", content=payload), status)
    text = json.dumps(err)
    assert needle.replace("%s", name) in text or needle in err["error"], err
    assert log_count(data.db) == before


def test_post_score_names_unknown_features(http):
    err = assert_error(http.post("/score", json={"features": {"zz_unknown": 1, "aa_unknown": None}}), 400)
    assert err["detail"]["unknown_features"] == ["aa_unknown", "zz_unknown"]


def test_batch_limits_and_shape(http, known, data):
    cid = known[0]
    before = log_count(data.db)
    assert_error(http.post("/score/batch", json={"client_ids": [cid] * (BATCH_MAX + 1)}), 400)
    assert_error(http.post("/score/batch", json={"applicants": [{"features": {}}] * (BATCH_MAX + 1)}), 400)
    assert_error(http.post("/score/batch", json={"client_ids": []}), 400)
    assert_error(http.post("/score/batch", json={}), 400)
    assert_error(http.post("/score/batch", json={"client_ids": [cid], "applicants": [{"features": {}}]}), 400)
    assert_error(http.post("/score/batch", json={"client_ids": None}), 400)
    for bad in ("7", 7.0, True, 0, -3, 2**53 + 1):
        assert_error(http.post("/score/batch", json={"client_ids": [cid, bad]}), 400)
    body = assert_error(http.post("/score/batch", json={"client_ids": [cid, 2**53]}), 404)
    assert body["detail"]["client_ids"] == [2**53]
    assert_error(http.post("/score/batch", json={"applicants": [{"features": {"nope": 1}}]}), 400)
    assert log_count(data.db) == before  # nothing served, nothing logged
    assert http.post("/score/batch", json={"client_ids": [cid] * BATCH_MAX}).status_code == 200
    assert log_count(data.db) == before + BATCH_MAX


def test_litestar_errors_have_the_same_shape(http):
    assert_error(http.get("/no/such/route"), 404)
    assert_error(http.put("/score", json={}), 405)
    assert_error(http.delete("/clients/1"), 405)
    assert_error(http.post("/score", content=b'{"features": {}}' + b" " * BODY_MAX), 413)
    assert_error(http.get("/clients", params={"limit": "0"}), 400)
    assert_error(http.get("/clients", params={"limit": "x"}), 400)
    assert_error(http.get("/monitoring/log", params={"limit": "100000"}, headers=ADMIN), 400)
    assert_error(http.get("/population", params={"features": "nope"}), 400)
    assert_error(http.get("/monitoring/summary", params={"since": "yesterday"}, headers=ADMIN), 400)
    assert_error(http.get("/population", params={"features": ""}), 400)
    assert_error(http.get("/clients", params={"prefix": "1", "limitt": "3"}), 400)  # unknown query parameter


def test_log_write_failure_is_503_and_nothing_is_answered(pipeline, tmp_path, known):
    """When the prediction log cannot be written, the API refuses to answer the score (503)."""
    data = copy_pipeline(pipeline, tmp_path)
    with ApiServer(data.db, data.model_dir) as api, api.client(headers=OFFICER) as http:
        assert http.get(f"/clients/{known[0]}/score").status_code == 200
        conn = apsw.Connection(str(default_path(data.db)))
        conn.execute(
            "CREATE TRIGGER log_full BEFORE INSERT ON prediction_log BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
        conn.close()
        body = assert_error(http.get(f"/clients/{known[0]}/score"), 503)
        assert body["error"] == "prediction log unavailable"
        assert_error(http.post("/score", json={"features": {}}), 503)
        assert_error(http.post("/score/batch", json={"client_ids": [known[0]]}), 503)
        assert http.get(f"/clients/{known[0]}").status_code == 200  # reads still work
    assert log_count(data.db) == 1


def test_broken_model_still_starts_and_readyz_says_why(pipeline, tmp_path, known):
    data = copy_pipeline(pipeline, tmp_path)
    manifest = json.loads((data.model_dir / "manifest.json").read_text())
    lib = data.model_dir / manifest["library"]["file"]
    lib.write_bytes(lib.read_bytes() + b"tampered")
    with ApiServer(data.db, data.model_dir, wait_for="/healthz") as api, api.client(headers=OFFICER) as http:
        assert http.get("/healthz").status_code == 200
        body = assert_error(http.get("/readyz"), 503)
        assert "not ready" in body["error"]
        assert_error(http.get(f"/clients/{known[0]}/score"), 503)
        assert_error(http.post("/score", json={"features": {}}), 503)
        assert "Traceback" not in api.output()
