"""The HTTP API against a real server (uvicorn subprocess on loopback) over the session pipeline's data."""

from __future__ import annotations

import math
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import apsw
import httpx
import numpy as np
import pytest
from apiserver import ADMIN, OFFICER, ApiServer

from app.store import default_path, predlog


@pytest.fixture(scope="module")
def http(api):
    with api.client() as client:
        yield client


@pytest.fixture(scope="module")
def ids(data) -> list[int]:
    conn = apsw.Connection(str(data.db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return [r[0] for r in conn.execute("SELECT client_id FROM features ORDER BY client_id LIMIT 50")]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def expected(data, ids) -> dict[int, float]:
    """Probabilities computed in SQL by the database's own score(), for comparison with the API."""
    from app.scoring.db import connect

    conn = connect(data.db, data.model_dir)
    try:
        return {cid: conn.execute("SELECT score(?)", (cid,)).fetchall()[0][0] for cid in ids}
    finally:
        conn.close()


def log_rows(db, where: str = "", args: tuple = ()) -> list[tuple]:
    """Rows of the prediction log the API keeps for the data file `db` (the operational store beside it)."""
    conn = apsw.Connection(str(default_path(db)), flags=apsw.SQLITE_OPEN_READONLY)
    try:  # the scored vector: in the row, or kept once per data version for a stored client (store migration 003)
        return list(
            conn.execute(
                "SELECT l.request_id, l.client_id, l.probability, l.decision, l.model_id, l.role, l.endpoint,"
                f" {predlog.VECTOR_EXPR}, l.latency_ms FROM (SELECT * FROM prediction_log {where}) l"
                f" {predlog.VECTOR_JOIN} ORDER BY l.id",
                args,
            )
        )
    finally:
        conn.close()


def test_healthz_and_readyz(http, data):
    assert http.get("/healthz").json() == {"status": "ok"}
    r = http.get("/readyz")  # without an admin key: status and checks, no model identity
    assert r.status_code == 200
    assert r.json()["model_id"] is None and set(r.json()["checks"].values()) == {"ok"}
    r = http.get("/readyz", headers=ADMIN)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready"
    import json

    manifest = json.loads((data.model_dir / "manifest.json").read_text())
    assert body["model_id"] == manifest["model_id"]
    assert body["n_features"] == len(manifest["features"])
    assert set(body["checks"].values()) == {"ok"}


def test_openapi_schema_and_docs_are_served_without_key(http):
    r = http.get("/schema/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in (
        "/clients",
        "/clients/{client_id}",
        "/clients/{client_id}/score",
        "/clients/{client_id}/features",
        "/score",
        "/score/batch",
        "/model",
        "/healthz",
        "/readyz",
        "/monitoring/summary",
        "/monitoring/log",
        "/monitoring/drift",
        "/population",
        "/clients/{client_id}/explain",
        "/explain",
    ):
        assert path in paths, path
    assert paths["/clients/{client_id}/score"]["get"]["parameters"][0]["schema"]["type"] == "integer"
    assert paths["/score/batch"]["post"]["requestBody"] == {"$ref": "#/components/requestBodies/Batch"}
    assert "maxItems" in str(r.json()["components"]["requestBodies"]["Batch"])
    docs = http.get("/schema/")
    assert docs.status_code == 200 and "<html" in docs.text.lower()


def test_client_score_matches_sql_and_is_logged(http, data, ids, expected):
    cid = ids[0]
    r = http.get(f"/clients/{cid}/score", headers=OFFICER)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["client_id"] == cid
    assert body["probability"] == pytest.approx(expected[cid], abs=1e-12)
    assert body["decision"] == ("refuse" if body["probability"] >= body["threshold"] else "accept")
    assert 0.0 <= body["completeness"] <= 1.0
    rows = log_rows(data.db, "WHERE request_id = ?", (body["request_id"],))
    assert len(rows) == 1
    request_id, client_id, p, d, model_id, role, endpoint, feats, latency = rows[0]
    assert (client_id, p, d, model_id, role) == (
        cid,
        body["probability"],
        body["decision"],
        body["model_id"],
        "officer",
    )
    assert endpoint == "GET /clients/{id}/score"
    assert latency > 0
    x = np.frombuffer(feats, dtype="<f4")
    assert body["completeness"] == pytest.approx(1 - np.isnan(x).mean())


def test_client_fields_features_and_search(http, ids):
    cid = ids[0]
    r = http.get(f"/clients/{cid}", headers=OFFICER)
    assert r.status_code == 200
    assert r.json()["client_id"] == cid and isinstance(r.json()["fields"], dict)
    f = http.get(f"/clients/{cid}/features", headers=OFFICER).json()
    assert f["client_id"] == cid and len(f["features"]) > 0
    prefix = str(cid)[:3]
    found = http.get("/clients", params={"prefix": prefix, "limit": 5}, headers=OFFICER).json()["client_ids"]
    assert 0 < len(found) <= 5 and all(str(i).startswith(prefix) for i in found)
    assert http.get("/clients", params={"prefix": str(cid)}, headers=OFFICER).json()["client_ids"][0] == cid
    assert http.get("/clients", params={"prefix": "0"}, headers=OFFICER).json()["client_ids"] == []


def test_post_score_with_a_clients_features_gives_the_same_probability(http, data, ids):
    cid = ids[1]
    feats = http.get(f"/clients/{cid}/features", headers=OFFICER).json()["features"]
    by_id = http.get(f"/clients/{cid}/score", headers=OFFICER).json()
    r = http.post("/score", json={"features": feats}, headers=OFFICER)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["probability"] == pytest.approx(by_id["probability"], abs=1e-9)
    assert body["missing"] == [n for n, v in feats.items() if v is None]
    assert body["completeness"] == pytest.approx(by_id["completeness"])
    rows = log_rows(data.db, "WHERE request_id = ?", (body["request_id"],))
    assert len(rows) == 1 and rows[0][1] is None and rows[0][6] == "POST /score"


def test_post_score_missing_features_are_reported(http):
    r = http.post("/score", json={"features": {}}, headers=OFFICER)
    assert r.status_code == 200
    body = r.json()
    assert body["completeness"] == 0.0 and len(body["missing"]) > 0
    assert 0.0 <= body["probability"] <= 1.0 and not math.isnan(body["probability"])


def test_batch_of_client_ids_and_applicants(http, data, ids, expected):
    before = len(log_rows(data.db))
    batch = ids[:10] + ids[:2]
    r = http.post("/score/batch", json={"client_ids": batch}, headers=OFFICER)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["client_id"] for x in results] == batch
    for x in results:
        assert x["probability"] == pytest.approx(expected[x["client_id"]], abs=1e-12)
    feats = http.get(f"/clients/{ids[3]}/features", headers=OFFICER).json()["features"]
    r = http.post("/score/batch", json={"applicants": [{"features": feats}, {"features": {}}]}, headers=OFFICER)
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert res[0]["probability"] == pytest.approx(expected[ids[3]], abs=1e-9)
    assert res[1]["completeness"] == 0.0
    assert len(log_rows(data.db)) == before + len(batch) + 2


def test_what_if_without_changes_is_the_stored_score(http, ids, expected):
    cid = ids[3]
    r = http.post(f"/clients/{cid}/what-if", headers=OFFICER, json={"application": {}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["changed_features"] == {}
    assert body["probability"] == pytest.approx(expected[cid], abs=1e-12)


def test_what_if_recomputes_derived_features_and_scores_them(http, data, ids):
    cid = ids[4]
    raw = http.get(f"/clients/{cid}/application", headers=OFFICER).json()["application"]
    credit, income = raw["AMT_CREDIT"], raw["AMT_INCOME_TOTAL"]
    r = http.post(f"/clients/{cid}/what-if", headers=OFFICER, json={"application": {"AMT_CREDIT": 2 * credit}})
    assert r.status_code == 200, r.text
    body = r.json()
    changed = body["changed_features"]
    assert changed["AMT_CREDIT"]["after"] == pytest.approx(2 * credit, rel=1e-6)
    assert changed["CREDIT_INCOME_RATIO"]["after"] == pytest.approx(2 * credit / income, rel=1e-6)
    assert "EXT_SOURCE_MEAN" not in changed  # untouched inputs, unchanged features
    # the same vector through POST /score gives the same probability
    features = http.get(f"/clients/{cid}/features", headers=OFFICER).json()["features"]
    features.update({name: c["after"] for name, c in changed.items()})
    again = http.post("/score", headers=OFFICER, json={"features": features}).json()
    assert body["probability"] == pytest.approx(again["probability"], abs=1e-12)
    logged = log_rows(data.db, "WHERE request_id = ?", (body["request_id"],))
    assert [(row[1], row[2], row[6]) for row in logged] == [(cid, body["probability"], "POST /clients/{id}/what-if")]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"AMT_CREDITT": 1.0}, "unknown application columns"),
        ({"SK_ID_CURR": 5}, "unknown application columns"),
        ({"CNT_CHILDREN": 1.5}, "CNT_CHILDREN must be an integer or null"),
        ({"AMT_CREDIT": "7"}, "AMT_CREDIT must be a finite number or null"),
        ({"AMT_CREDIT": True}, "AMT_CREDIT must be a finite number or null"),
        ({"AMT_CREDIT": 1e300}, "AMT_CREDIT is out of range (|value| <= 1e15)"),
        ({"AMT_CREDIT": 10**400}, "AMT_CREDIT is out of range (|value| <= 1e15)"),
        ({"CNT_CHILDREN": -(10**400)}, "CNT_CHILDREN is out of range (|value| <= 1e15)"),
        ({"AMT_CREDIT": ["7"]}, "AMT_CREDIT must be a finite number or null"),
        ({"NAME_CONTRACT_TYPE": "x" * 201}, "NAME_CONTRACT_TYPE must be text of at most 200 characters or null"),
        ({"NAME_EDUCATION_TYPE": 3}, "NAME_EDUCATION_TYPE must be text of at most 200 characters or null"),
    ],
)
def test_what_if_bad_changes_are_400_naming_the_column(http, data, ids, change, error):
    before = len(log_rows(data.db))
    r = http.post(f"/clients/{ids[0]}/what-if", headers=OFFICER, json={"application": change})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == error
    assert len(log_rows(data.db)) == before


def test_what_if_and_application_unknown_client_and_keys(http):
    assert http.post("/clients/1/what-if", headers=OFFICER, json={"application": {}}).status_code == 404
    assert http.get("/clients/1/application", headers=OFFICER).status_code == 404
    assert http.post("/clients/1/what-if", json={"application": {}}).status_code == 401
    assert http.get("/clients/1/application").status_code == 401
    r = http.post("/clients/1/what-if", headers=OFFICER, json={"application": {}, "extra": 1})
    assert r.status_code == 400


def test_model_manifest_without_reference(http, data):
    import json

    body = http.get("/model", headers=OFFICER).json()
    manifest = json.loads((data.model_dir / "manifest.json").read_text())
    from app import __version__

    assert "reference" not in body
    # typed (app.service.schemas.ModelInfo) yet the same JSON: every key of the manifest but the reference sample
    assert body == {"serving_app_version": __version__} | {k: v for k, v in manifest.items() if k != "reference"}


def test_population_sample(http, data):
    import json

    names = json.loads((data.model_dir / "manifest.json").read_text())["features"][:2]
    r = http.get("/population", params={"features": ",".join(names), "limit": 25}, headers=OFFICER)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["features"] == names and len(body["rows"]) == 25
    for row in body["rows"]:
        assert len(row["values"]) == 2 and row["decision"] in ("accept", "refuse")
    again = http.get("/population", params={"features": ",".join(names), "limit": 25}, headers=OFFICER).json()
    assert again == body  # a fixed sample: the dashboard's charts do not jump between refreshes
    repeated = http.get("/population", params=[("features", n) for n in names] + [("limit", 25)], headers=OFFICER)
    assert repeated.json() == body  # features=A&features=B (what generated clients send) means features=A,B


def test_monitoring_summary_and_log(http, ids):
    for cid in ids[:3]:
        http.get(f"/clients/{cid}/score", headers=OFFICER)
    s = http.get("/monitoring/summary", headers=ADMIN).json()
    assert s["requests"] >= 3
    assert s["latency_ms"]["p50"] <= s["latency_ms"]["p99"]
    assert sum(h["count"] for h in s["score_histogram"]) == s["requests"]
    assert sum(s["decisions"].values()) == s["requests"]
    now = time.time()
    empty = http.get("/monitoring/summary", params={"since": now + 3600, "until": now + 7200}, headers=ADMIN).json()
    assert empty["requests"] == 0 and empty["score_histogram"] == []
    rows = http.get("/monitoring/log", params={"limit": 3}, headers=ADMIN).json()["rows"]
    assert len(rows) == 3 and rows[0]["id"] > rows[1]["id"] > rows[2]["id"]
    assert "features" not in rows[0]
    assert rows[0]["client_id"] == ids[2]


def test_scoring_process_is_light(api, http, ids):
    """The serving process (1 worker) stays under 150 MB RSS and never loads pandas, LightGBM or shap."""
    import psutil

    for cid in ids[:20]:
        assert http.get(f"/clients/{cid}/score", headers=OFFICER).status_code == 200
    http.post("/score", json={"features": {}}, headers=OFFICER)
    proc = psutil.Process(api.proc.pid)
    rss_mb = proc.memory_info().rss / 2**20
    assert rss_mb <= 150, f"API RSS {rss_mb:.0f} MB"
    mapped = " ".join(m.path for m in proc.memory_maps()).lower()
    for heavy in ("pandas", "lightgbm", "shap"):
        assert heavy not in mapped, f"{heavy} is loaded in the API process"


def test_explain_and_drift_answer(http, ids):
    """Explanations and drift are part of the build: 200 with the documented fields."""
    for method, path, kwargs, keys in (
        ("GET", f"/clients/{ids[0]}/explain", {"headers": OFFICER}, {"client_id", "contributions", "reasons"}),
        ("POST", "/explain", {"headers": OFFICER, "json": {"features": {}}}, {"probability", "contributions"}),
        ("GET", "/monitoring/drift", {"headers": ADMIN}, {"features", "window", "dataset_drift", "score_psi"}),
    ):
        r = http.request(method, path, **kwargs)
        assert r.status_code == 200, (path, r.status_code, r.text)
        assert keys <= set(r.json()), (path, sorted(r.json()))


def test_concurrent_burst_log_equals_responses(http, data, ids):
    """200 requests from 16 threads: every answered score has exactly one log row with the same values."""
    conn = apsw.Connection(str(default_path(data.db)), flags=apsw.SQLITE_OPEN_READONLY)
    start_id = conn.execute("SELECT coalesce(max(id), 0) FROM prediction_log").fetchall()[0][0]
    conn.close()

    def one(i: int) -> dict:
        if i % 4 == 3:
            r = http.post("/score", json={"features": {}}, headers=OFFICER)
        else:
            r = http.get(f"/clients/{ids[i % len(ids)]}/score", headers=ADMIN if i % 2 else OFFICER)
        assert r.status_code == 200, r.text
        return r.json()

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(one, range(200)))
    rows = log_rows(data.db, "WHERE id > ?", (start_id,))
    assert len(rows) == 200
    by_id = {r[0]: r for r in rows}
    assert len(by_id) == 200
    for a in answers:
        row = by_id[a["request_id"]]
        assert row[1] == a.get("client_id")
        assert row[2] == a["probability"] and row[3] == a["decision"] and row[4] == a["model_id"]


@pytest.mark.slow
def test_sigterm_lets_in_flight_requests_finish(data, ids):
    """Graceful shutdown: requests running when SIGTERM arrives are answered (and logged); exit code 0."""
    server = ApiServer(data.db, data.model_dir).start()
    results: list[int] = []
    stop = threading.Event()

    def hammer():
        with httpx.Client(base_url=server.url, timeout=30) as c:
            while not stop.is_set():
                try:
                    r = c.get(f"/clients/{ids[0]}/score", headers=OFFICER)
                except httpx.HTTPError:
                    return
                results.append(r.status_code)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    server.proc.send_signal(signal.SIGTERM)
    rc = server.proc.wait(30)
    stop.set()
    for t in threads:
        t.join(30)
    server.stop()
    assert rc == 0, server.output()
    assert results and set(results) == {200}
    assert "Traceback" not in server.output()
