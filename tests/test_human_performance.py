"""`credit performance` judges the human decisions beside the model's where outcomes are known
(app/rights/monitoring.py performance_section): on a store where people overrode and reviewed decisions whose
outcomes are then observed, each figure is the one worked out by hand — who was right, what each cost — and a
pending override or an upheld review leaves the model's decision in force. No model needed: a real store only."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from app import store as stores
from app.cli.main import cli
from app.monitoring.outcomes import Outcome, write
from app.rights import records
from app.rights.monitoring import performance_section
from app.rights.records import Actor
from app.store import predlog

OFFICER = Actor("agent", "officer")
RISK = Actor("risque", "risk")
FN, FP = 10.0, 1.0


def log(store, client_id: int, probability: float, decision: str, ts: float) -> str:
    row = predlog.LogRow(
        ts,
        predlog.new_request_id(),
        client_id,
        b"\0" * 8,
        probability,
        decision,
        "model-under-test",
        1.0,
        "officer",
        "GET /clients/{id}/score",
        user_name="agent",
    )
    predlog.write(store, [row])
    return row.request_id


@pytest.fixture
def acted(tmp_path):
    """Six decisions, what people did about them, and the outcomes observed afterwards."""
    path = tmp_path / "credit-log.db"
    store = stores.open_store(path)
    t0 = time.time() - 1000
    rid = {c: log(store, c, p, d, t0 + c) for c, p, d in [
        (1, 0.50, "refuse"), (2, 0.30, "refuse"), (3, 0.05, "accept"),
        (4, 0.60, "refuse"), (5, 0.02, "accept"), (6, 0.40, "refuse"),
    ]}  # fmt: skip
    # 1: credit granted against the model, with four eyes -> in force; the client then defaults
    records.record_override(store, OFFICER, rid[1], "accept", "guarantee", "surety", 0.2)
    records.second_opinion(store, RISK, rid[1], True, "deed seen")
    # 2: a review overturns the refusal; the client repays
    rv = records.request_review(store, OFFICER, rid[2], "new job")
    records.decide_review(store, RISK, rv["id"], "overturn", "new_information", "contract seen")
    # 3: an officer refuses what the model accepted; the client would have repaid
    records.record_override(store, OFFICER, rid[3], "refuse", "affordability_concern", "debts elsewhere", 0.2)
    # 4: an override granting a high-risk refusal still waits for a second person: the model's refusal stands
    records.record_override(store, OFFICER, rid[4], "accept", "relationship", "old client", 0.2)
    # 6: a review upholds the refusal
    rv = records.request_review(store, OFFICER, rid[6], "unfair")
    records.decide_review(store, RISK, rv["id"], "uphold", "assessment_confirmed", "")
    defaulted = {1: 1, 2: 0, 3: 0, 4: 1, 5: 0, 6: 0}
    write(store, [Outcome(c, y, t0 + 500) for c, y in defaulted.items()], "test")
    yield store, path
    store.close()


def test_people_are_judged_beside_the_model_client_by_client(acted):
    store, _ = acted
    sec = performance_section(store, FN, FP)
    assert (sec["outcomes"], sec["changed_by_people"], sec["kept"]) == (6, 3, 3)  # clients 1, 2, 3 changed
    c = sec["changed"]
    assert (c["model_right"], c["people_right"]) == (2, 1)  # 1 and 3: the model was right; 2: the people
    assert (c["model_cost"], c["people_cost"]) == (FP, FN + FP)  # model: refused repayer 2; people: 1 defaulted, 3
    assert c["granted_then_defaulted"] == 1
    assert sec["model_cost_per_client"] == pytest.approx(2 * FP / 6)  # refused repayers 2 and 6
    assert sec["final_cost_per_client"] == pytest.approx((FN + 2 * FP) / 6)  # 1 defaulted, 3 and 6 refused repayers


def test_credit_performance_prints_and_exports_the_human_section(acted, tmp_path):
    _, path = acted
    args = ["performance", "--min-outcomes", "1", "--log-db", str(path), "--model", str(tmp_path / "no-model")]
    out = CliRunner().invoke(cli, [*args, "--json"])
    assert out.exit_code == 0, out.output
    rep = json.loads(out.stdout)
    sec = rep["human_decisions"]
    fn, fp = rep["costs"]["fn"], rep["costs"]["fp"]
    assert (sec["outcomes"], sec["changed_by_people"]) == (6, 3)
    assert (sec["changed"]["model_cost"], sec["changed"]["people_cost"]) == (fp, fn + fp)
    agent = sec["rates"]["by_officer"][0]
    assert (agent["officer"], agent["decisions"], agent["overrides"], agent["reviews_recorded"]) == ("agent", 6, 3, 2)
    assert agent["pending"] == 1 and agent["override_rate"] == pytest.approx(0.5)
    text = CliRunner().invoke(cli, args).output
    assert "human decisions: 3 of 6 decisions with an outcome changed by people" in text
    assert "model right 2, people right 1" in text and "1 granted, then defaulted" in text
