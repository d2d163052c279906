"""Issue 19 over HTTP: POST /outcomes (risk role), realised performance and fairness of the live decisions,
training-time fairness and the model card; a real `credit serve` on loopback."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from apiserver import ADMIN, ADMIN_KEY, OFFICER, OFFICER_KEY, ApiServer
from sklearn.metrics import roc_auc_score

from app.store import default_path, open_store

RISK_KEY = "risk-test-key-0c2b7d4e8f"
RISK = {"Authorization": f"Bearer {RISK_KEY}"}


@pytest.fixture(scope="module")
def server(data):
    keys = f"{OFFICER_KEY}:officer,{RISK_KEY}:risk,{ADMIN_KEY}:admin"
    with ApiServer(data.db, data.model_dir, keys=keys, env={"CREDIT_MIN_OUTCOMES": "20"}) as api:
        yield api


@pytest.fixture(scope="module")
def scored(server, data) -> list[int]:
    """100 labelled clients scored through the API (so the log holds the decisions served)."""
    import apsw

    conn = apsw.Connection(str(data.db), flags=apsw.SQLITE_OPEN_READONLY)
    ids = [r[0] for r in conn.execute("SELECT client_id FROM labels ORDER BY client_id LIMIT 100")]
    labels = dict(conn.execute("SELECT client_id, target FROM labels"))
    conn.close()
    with server.client(headers=OFFICER) as http:
        r = http.post("/score/batch", json={"client_ids": ids})
        assert r.status_code == 200
    return [(cid, labels[cid]) for cid in ids]


# after every decision of this module, within the one day ahead an outcome may be dated
LATER = (datetime.now(UTC) + timedelta(hours=12)).isoformat(timespec="seconds")


def outcomes_body(pairs, when=LATER):
    return {"outcomes": [{"client_id": c, "defaulted": int(y), "observed_at": when} for c, y in pairs]}


def test_roles_on_outcomes(server, scored):
    body = outcomes_body(scored[:1])
    assert httpx.post(server.url + "/outcomes", json=body, headers=OFFICER).status_code == 403
    assert httpx.post(server.url + "/outcomes", json=body).status_code == 401
    for who in (RISK, ADMIN):
        assert httpx.post(server.url + "/outcomes", json=body, headers=who).status_code == 200
    for path in ("/monitoring/performance", "/monitoring/fairness"):
        assert httpx.get(server.url + path, headers=OFFICER).status_code == 403
    for path in ("/model/card", "/model/fairness"):
        assert httpx.get(server.url + path, headers=OFFICER).status_code == 200


def test_post_outcomes_idempotent_and_reports_never_scored(server, scored):
    body = outcomes_body(scored)
    body["outcomes"].append({"client_id": 9_000_000_001, "defaulted": 1, "observed_at": LATER})
    with server.client(headers=RISK) as http:
        r = http.post("/outcomes", json=body)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["received"] == 101 and got["never_scored"] == 1 and got["never_scored_ids"] == [9_000_000_001]
        again = http.post("/outcomes", json=body).json()
        assert again["written"] == 0 and again["stored"] == got["stored"]


@pytest.mark.parametrize(
    ("item", "needle"),
    [
        ({"client_id": 1, "defaulted": 2, "observed_at": "2025-01-01"}, "defaulted"),
        ({"client_id": 1, "defaulted": 1, "observed_at": "31/01/2025"}, "outcomes[0]: observed_at"),
        ({"client_id": 0, "defaulted": 1, "observed_at": "2025-01-01"}, "outcomes[0]: client_id"),
        ({"client_id": 1, "defaulted": 1, "observed_at": "2025-01-01", "x": 1}, "x"),
        ({"client_id": "1", "defaulted": 1, "observed_at": "2025-01-01"}, "client_id"),
        ({"client_id": 1, "defaulted": True, "observed_at": "2025-01-01"}, "defaulted"),
    ],
)
def test_bad_outcomes_are_400_in_the_error_shape(server, item, needle):
    r = httpx.post(server.url + "/outcomes", json={"outcomes": [item]}, headers=RISK)
    assert r.status_code == 400, r.text
    body = r.json()
    assert set(body) == {"error", "detail"} and needle in json.dumps(body)


def test_performance_over_http_equals_sklearn_on_the_log(server, scored, data):
    httpx.post(server.url + "/outcomes", json=outcomes_body(scored), headers=RISK)
    r = httpx.get(server.url + "/monitoring/performance", params={"period": "all"}, headers=RISK, timeout=60)
    assert r.status_code == 200, r.text
    rep = r.json()
    conn = open_store(default_path(data.db))
    y, p = zip(
        *conn.execute(
            "SELECT o.defaulted, (SELECT probability FROM prediction_log l WHERE l.client_id = o.client_id"
            " ORDER BY ts DESC, id DESC LIMIT 1) FROM outcomes o WHERE o.client_id < 9000000000"
        ),
        strict=True,
    )
    conn.close()
    assert rep["matched"] == len(y) and rep["never_scored"]["count"] == 1
    (model,) = rep["models"]
    assert model["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert model["periods"][0]["period"] == "all"
    bad = httpx.get(server.url + "/monitoring/performance", params={"period": "year"}, headers=RISK)
    assert bad.status_code == 400 and set(bad.json()) == {"error", "detail"}


def test_fairness_over_http(server, scored):
    r = httpx.get(server.url + "/monitoring/fairness", params={"min_group": 1}, headers=RISK, timeout=60)
    assert r.status_code == 200, r.text
    rep = r.json()
    assert set(rep["attributes"]) == {"gender", "age_band", "family_status"}
    assert rep["clients"] >= len(scored)
    assert sum(g["clients"] for g in rep["attributes"]["gender"]["groups"]) == rep["clients"]
    empty = httpx.get(server.url + "/monitoring/fairness", params={"since": 32_000_000_000}, headers=RISK)
    assert empty.status_code == 404 and set(empty.json()) == {"error", "detail"}


def test_model_card_and_training_fairness(server, data):
    manifest = json.loads((data.model_dir / "manifest.json").read_text())
    r = httpx.get(server.url + "/model/card", headers=OFFICER)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/markdown")
    assert manifest["model_id"] in r.text
    f = httpx.get(server.url + "/model/fairness", headers=OFFICER).json()
    assert f["model_id"] == manifest["model_id"] and "out-of-fold" in f["source"]
