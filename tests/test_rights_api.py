"""The client's rights over HTTP (app/service/routes/rights.py) on a real `credit serve`: the letter of a decision
the API served (HTML, PDF, JSON), reviews and overrides with the key's role deciding who may act, four eyes, the
client's file, the override and review rates, and `credit performance`'s human-decision section."""

from __future__ import annotations

import json

import httpx
import pytest
from apiserver import ADMIN_KEY, OFFICER, OFFICER_KEY, ApiServer, copy_pipeline
from click.testing import CliRunner
from decisions import refused
from needs import needs

from app.cli.main import cli
from app.rights.pdf import page_count
from app.scoring.bundle import ModelBundle

RISK_KEY = "risk-test-key-0a7c2e91d4"
RISK = {"Authorization": f"Bearer {RISK_KEY}"}
KEYS = f"{OFFICER_KEY}:officer,{ADMIN_KEY}:admin,{RISK_KEY}:risk"


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory):
    data = copy_pipeline(pipeline, tmp_path_factory.mktemp("rights-api"))
    with ApiServer(data.db, data.model_dir, keys=KEYS, env={"CREDIT_OVERRIDE_FOUR_EYES": "0.2"}) as api:
        api.data = data
        api.bundle = ModelBundle.load(data.model_dir)
        yield api


def score(server, cid: int) -> dict:
    r = httpx.get(f"{server.url}/clients/{cid}/score", headers=OFFICER, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_letter_of_a_served_decision_in_html_json_and_by_client(server):
    cid = refused(server.bundle, server.data.db, 1)[0]
    s = score(server, cid)
    url = f"{server.url}/decisions/{s['request_id']}/letter"
    r = httpx.get(url, params={"by": "Alice", "lang": "en"}, headers=OFFICER, timeout=120)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Your rights" in r.text and s["request_id"] in r.text and s["model_id"][:12] in r.text
    assert int(r.headers["x-letter-id"]) >= 1
    j = httpx.get(url, params={"by": "Alice", "format": "json"}, headers=OFFICER, timeout=120).json()
    assert j["decision"]["probability"] == s["probability"] and j["decision"]["decision"] == s["decision"] == "refuse"
    assert 1 <= len(j["reasons"]) <= 4 and j["lang"] == "fr"
    latest = httpx.get(
        f"{server.url}/clients/{cid}/letter", params={"by": "Alice", "format": "json"}, headers=OFFICER, timeout=120
    ).json()
    assert latest["decision"]["request_id"] == s["request_id"]


def test_letter_errors_have_the_one_shape(server):
    r = httpx.get(f"{server.url}/decisions/nosuch/letter", params={"by": "A"}, headers=OFFICER, timeout=30)
    assert r.status_code == 404 and r.json()["error"].startswith("no logged decision")
    r = httpx.get(f"{server.url}/decisions/nosuch/letter", headers=OFFICER, timeout=30)  # who asks is required
    assert r.status_code == 400 and "error" in r.json()
    r = httpx.get(f"{server.url}/decisions/nosuch/letter", params={"by": "A"}, timeout=30)
    assert r.status_code == 401


@needs("chromium", "just system-deps")
def test_letter_pdf_over_http_is_one_page(server):
    cid = refused(server.bundle, server.data.db, 1)[0]
    s = score(server, cid)
    r = httpx.get(
        f"{server.url}/decisions/{s['request_id']}/letter",
        params={"by": "Alice", "format": "pdf"},
        headers=OFFICER,
        timeout=180,
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert page_count(r.content) == 1


def test_review_and_override_over_http_roles_and_four_eyes(server):
    ids = refused(server.bundle, server.data.db, 3)
    s = score(server, ids[0])
    base = f"{server.url}/decisions/{s['request_id']}"
    second_url = f"{server.url}/overrides/{s['request_id']}/second"
    body = {"by": "Alice", "decision": "accept", "reason": "guarantee", "comment": "surety"}
    r = httpx.post(f"{base}/override", json=body, headers=OFFICER, timeout=30)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == ("pending" if s["probability"] > 0.2 else "in force")
    if r.json()["status"] == "pending":
        second = {"by": "Alice", "approve": True}
        r = httpx.post(second_url, json=second, headers=OFFICER, timeout=30)
        assert r.status_code == 403  # an officer key may not give the second opinion
        r = httpx.post(second_url, json=second, headers=RISK, timeout=30)
        assert r.status_code == 403 and "must not be the officer" in r.json()["error"]
        r = httpx.post(second_url, json={"by": "Bob", "approve": True}, headers=RISK, timeout=30)
        assert r.status_code == 200 and r.json()["status"] == "in force"
    r = httpx.post(f"{base}/override", json={**body, "reason": "whim"}, headers=OFFICER, timeout=30)
    assert r.status_code in (400, 409)
    r = httpx.post(f"{base}/override", json={**body, "extra": 1}, headers=OFFICER, timeout=30)
    assert r.status_code == 400  # strict bodies
    # review of another decision
    s2 = score(server, ids[1])
    r = httpx.post(
        f"{server.url}/decisions/{s2['request_id']}/reviews",
        json={"by": "Alice", "client_view": "I have a new job"},
        headers=OFFICER,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    decision = {"by": "Bob", "outcome": "overturn", "reason": "new_information", "comment": "contract seen"}
    r = httpx.post(f"{server.url}/reviews/{rid}/decision", json=decision, headers=OFFICER, timeout=30)
    assert r.status_code == 403
    r = httpx.post(f"{server.url}/reviews/{rid}/decision", json=decision, headers=RISK, timeout=30)
    assert r.status_code == 200 and r.json()["decision_after"] == "accept"
    letter = httpx.get(
        f"{server.url}/decisions/{s2['request_id']}/letter",
        params={"by": "Alice", "lang": "en"},
        headers=OFFICER,
        timeout=120,
    )
    assert "Human review" in letter.text and "is accepted" in letter.text
    # the client's file
    doc = httpx.get(
        f"{server.url}/clients/{ids[1]}/rights-export", params={"by": "Alice"}, headers=OFFICER, timeout=60
    ).json()
    assert doc["client_id"] == ids[1] and any(d["reviews"] for d in doc["decisions"])
    assert [e["action"] for e in doc["events"]][-1] == "export"
    # the rates
    r = httpx.get(f"{server.url}/monitoring/human-decisions", headers=OFFICER, timeout=30)
    assert r.status_code == 403
    rates = httpx.get(f"{server.url}/monitoring/human-decisions", headers=RISK, timeout=30).json()
    assert rates["overall"]["overrides"] >= 1 and rates["overall"]["reviews"] >= 1
    assert rates["overall"]["decisions"] >= 3 and rates["by_band"] and rates["by_period"]
    alice = next(o for o in rates["by_officer"] if o["officer"] == "Alice")
    assert alice["overrides"] >= 1 and alice["reviews_recorded"] >= 1


def test_performance_judges_people_beside_the_model(server):
    """Outcomes for the decisions above: `credit performance` prints the human-decision section and its JSON has
    the model's and the people's realised figures on the decisions people changed."""
    data = server.data
    log_db = data.db.with_name("credit-log.db")
    base = ["--db", str(data.db), "--log-db", str(log_db), "--model", str(data.model_dir)]
    out = CliRunner().invoke(cli, ["outcomes", "simulate", *base[:4]])
    assert out.exit_code == 0, out.output
    out = CliRunner().invoke(cli, ["performance", "--json", "--min-outcomes", "1", *base])
    rep = json.loads(out.stdout)
    sec = rep["human_decisions"]
    assert sec["outcomes"] >= 1 and sec["changed_by_people"] >= 0
    # where people changed the decision, exactly one of the two was right about each client
    assert sec["changed"]["model_right"] + sec["changed"]["people_right"] == sec["changed_by_people"]
    assert sec["changed_by_people"] + sec["kept"] == sec["outcomes"]
    text = CliRunner().invoke(cli, ["performance", "--min-outcomes", "1", *base]).output
    assert "human decisions:" in text
