"""Human review and overrides (app/rights/records.py, `credit review`, `credit override`): roles, the closed
lists of reasons, four eyes, both decisions kept, the letter after review, the audit trail and the client's file."""

from __future__ import annotations

import json

import apsw
import pytest
from cli_accounts import as_env
from click.testing import CliRunner
from decisions import refused, serve, vectors
from hypothesis import given, settings
from hypothesis import strategies as st

from app import store as stores
from app.cli.main import cli
from app.rights import records
from app.rights.export import export_client
from app.rights.records import Actor, RightsError
from app.rights.service import issue
from app.scoring.bundle import ModelBundle

OFFICER = Actor("Alice Martin", "officer")
OFFICER2 = Actor("Chloé Petit", "officer")
RISK = Actor("Bob Durand", "risk")
RISK_ALICE = Actor("alice martin ", "risk")  # the same person, another role: not a second pair of eyes
FOUR_EYES = 0.2


@pytest.fixture(scope="module")
def model(pipeline):
    return ModelBundle.load(pipeline.model_dir)


@pytest.fixture
def env(pipeline_copy, model):
    env = pipeline_copy
    env.log_db = env.root / "credit-log.db"
    env.bundle = model
    env.store = stores.open_store(env.log_db)
    yield env
    env.store.close()


def decided(env, p: float, cid: int | None = None) -> str:
    cid = cid if cid is not None else refused(env.bundle, env.db, 1)[0]
    return serve(env.log_db, env.bundle, env.db, cid, probability=p)


# ---- overrides and four eyes ---------------------------------------------------------------------------------------


def test_four_eyes_an_override_granting_a_high_risk_refusal_waits_for_a_risk_person(env):
    rid = decided(env, 0.45)  # refused, above CREDIT_OVERRIDE_FOUR_EYES
    ov = records.record_override(env.store, OFFICER, rid, "accept", "guarantee", "parents stand surety", FOUR_EYES)
    assert (ov["status"], ov["needs_second"], ov["model_decision"], ov["decision"]) == (
        "pending",
        1,
        "refuse",
        "accept",
    )
    row = records.decision(env.store, rid)
    assert records.decision_in_force(env.store, row) == "refuse"  # pending: the model's decision stands
    with pytest.raises(RightsError, match="risk role") as e:
        records.second_opinion(env.store, OFFICER2, rid, True, "")  # another officer is not enough
    assert e.value.status == 403
    with pytest.raises(RightsError, match="must not be the officer"):
        records.second_opinion(env.store, RISK_ALICE, rid, True, "")  # the same person with a risk key
    ov = records.second_opinion(env.store, RISK, rid, True, "checked the surety deed")
    assert (ov["status"], ov["second_by"], ov["second_role"]) == ("in force", "Bob Durand", "risk")
    assert records.decision_in_force(env.store, row) == "accept"
    assert records.decision(env.store, rid)["decision"] == "refuse"  # the automated decision is kept as it was
    with pytest.raises(RightsError, match="not waiting"):
        records.second_opinion(env.store, RISK, rid, True, "")


def test_a_rejected_override_leaves_the_model_decision(env):
    rid = decided(env, 0.9)
    records.record_override(env.store, OFFICER, rid, "accept", "relationship", "client for 20 years", FOUR_EYES)
    with pytest.raises(RightsError, match="comment is required"):
        records.second_opinion(env.store, RISK, rid, False, "  ")
    ov = records.second_opinion(env.store, RISK, rid, False, "affordability not shown")
    assert ov["status"] == "rejected"
    assert records.decision_in_force(env.store, records.decision(env.store, rid)) == "refuse"


@settings(max_examples=40, deadline=None)
@given(p=st.floats(0.0, 1.0), new=st.sampled_from(["accept", "refuse"]), limit=st.floats(0.0, 1.0))
def test_four_eyes_rule(pipeline, tmp_path_factory, p, new, limit):
    """An override needs a second person exactly when it grants credit and the logged probability is above the
    configured limit; otherwise it is in force at once."""
    model = ModelBundle.load(pipeline.model_dir)
    root = tmp_path_factory.mktemp("eyes")
    log_db = root / "log.db"
    cid = 100002
    rid = serve(log_db, model, pipeline.db, cid, probability=p)
    logged = "refuse" if model.refuses(p) else "accept"
    store = stores.open_store(log_db)
    try:
        if new == logged:
            with pytest.raises(RightsError, match="nothing to override"):
                records.record_override(store, OFFICER, rid, new, "other", "x", limit)
            return
        ov = records.record_override(store, OFFICER, rid, new, "other", "why", limit)
        assert ov["status"] == ("pending" if new == "accept" and p > limit else "in force")
    finally:
        store.close()


def test_overrides_are_made_when_the_decision_is_made(env):
    cid = refused(env.bundle, env.db, 1)[0]
    old = decided(env, 0.3, cid)
    decided(env, 0.3, cid)
    with pytest.raises(RightsError, match="later decision") as e:
        records.record_override(env.store, OFFICER, old, "accept", "other", "late", FOUR_EYES)
    assert e.value.status == 409


def test_override_needs_a_reason_from_the_list_and_words(env):
    rid = decided(env, 0.1)
    with pytest.raises(RightsError, match="reason must be one of"):
        records.record_override(env.store, OFFICER, rid, "accept", "because", "text", FOUR_EYES)
    with pytest.raises(RightsError, match="is required"):
        records.record_override(env.store, OFFICER, rid, "accept", "guarantee", "   ", FOUR_EYES)
    ov = records.record_override(env.store, OFFICER, rid, "accept", "guarantee", "surety", FOUR_EYES)
    assert ov["status"] == "in force"  # 0.1 <= 0.2: no second person needed
    with pytest.raises(RightsError, match="already overridden"):
        records.record_override(env.store, OFFICER, rid, "accept", "guarantee", "again", FOUR_EYES)


# ---- human review ------------------------------------------------------------------------------------------------


def test_review_officer_records_risk_decides_both_decisions_kept(env):
    rid = decided(env, 0.5)
    with pytest.raises(RightsError, match="point of view is required"):
        records.request_review(env.store, OFFICER, rid, "")
    rv = records.request_review(env.store, OFFICER, rid, "My income rose in March; payslips attached.")
    assert (rv["decision_before"], rv["requested_by"], rv["decided_at"]) == ("refuse", "Alice Martin", None)
    with pytest.raises(RightsError, match="already has a review waiting"):
        records.request_review(env.store, OFFICER, rid, "again")
    with pytest.raises(RightsError, match="risk role") as e:
        records.decide_review(env.store, OFFICER, rv["id"], "overturn", "new_information", "")
    assert e.value.status == 403
    with pytest.raises(RightsError, match="reason must be one of"):
        records.decide_review(env.store, RISK, rv["id"], "overturn", "liked them", "")
    with pytest.raises(RightsError, match="comment is required"):
        records.decide_review(env.store, RISK, rv["id"], "overturn", "other", "")
    done = records.decide_review(env.store, RISK, rv["id"], "overturn", "new_information", "payslips verified")
    assert (done["outcome"], done["decision_before"], done["decision_after"]) == ("overturn", "refuse", "accept")
    row = records.decision(env.store, rid)
    assert row["decision"] == "refuse" and records.decision_in_force(env.store, row) == "accept"
    with pytest.raises(RightsError, match="already decided"):
        records.decide_review(env.store, RISK, rv["id"], "uphold", "policy", "")
    with pytest.raises(RightsError, match="under human review"):
        records.record_override(env.store, OFFICER, rid, "accept", "other", "x", FOUR_EYES)


@pytest.mark.parametrize(
    "lang,words",
    [
        ("fr", ["Réexamen humain", "modifié", "Décision automatisée initiale : refusé"]),
        ("en", ["Human review", "changed", "Initial automated decision: refused"]),
    ],
)
def test_the_letter_after_review_says_so(env, lang, words):
    rid = decided(env, 0.5)
    rv = records.request_review(env.store, OFFICER, rid, "I disagree")
    pending = issue(
        env.store,
        rid,
        actor=OFFICER,
        channel="cli",
        lang=lang,
        fmt="html",
        serving=env.model_dir,
        data_db=env.db,
        levers=("credit_amount",),
    )
    assert ("en cours" if lang == "fr" else "in progress") in pending.html
    records.decide_review(env.store, RISK, rv["id"], "overturn", "circumstances", "temporary illness")
    got = issue(
        env.store,
        rid,
        actor=OFFICER,
        channel="cli",
        lang=lang,
        fmt="html",
        serving=env.model_dir,
        data_db=env.db,
        levers=("credit_amount",),
    )
    assert got.facts["decision_in_force"] == "accept" and got.facts["decision"]["decision"] == "refuse"
    for w in words:
        assert w in got.html
    assert "data-decision=accept" in got.html


# ---- audit and the client's file -------------------------------------------------------------------------------------


def test_export_holds_every_decision_act_and_letter_of_the_client(env):
    cid = refused(env.bundle, env.db, 1)[0]
    other = decided(env, 0.5, cid + 1 if cid + 1 in vectors(env.db, limit=3000) else 100002)
    r1 = decided(env, 0.3, cid)
    rv = records.request_review(env.store, OFFICER, r1, "please look again")
    records.decide_review(env.store, RISK, rv["id"], "uphold", "assessment_confirmed", "")
    r2 = decided(env, 0.35, cid)
    records.record_override(env.store, OFFICER, r2, "accept", "documented_income", "second job", FOUR_EYES)
    records.second_opinion(env.store, RISK, r2, True, "ok")
    issue(
        env.store,
        r2,
        actor=OFFICER,
        channel="api",
        lang="en",
        fmt="html",
        serving=env.model_dir,
        data_db=env.db,
        levers=("term",),
    )
    doc = export_client(env.store, cid, RISK, env.model_dir)
    json.dumps(doc)  # JSON-ready
    assert [d["request_id"] for d in doc["decisions"]] == [r1, r2]
    assert other not in json.dumps(doc)
    d1, d2 = doc["decisions"]
    assert d1["reviews"][0]["outcome"] == "uphold" and d1["decision_in_force"] == "refuse"
    assert d2["override"]["status"] == "in force" and d2["decision_in_force"] == "accept"
    assert isinstance(d1["inputs"], dict) and len(d1["inputs"]) == env.bundle.n_features  # named values
    assert d2["explanation"]["reasons"] and d1["explanation"] is None  # only r2 had a letter
    assert [x["request_id"] for x in doc["letters"]] == [r2] and doc["letters"][0]["content"]["lang"] == "en"
    actions = [(e["actor"], e["action"]) for e in doc["events"]]
    assert actions == [
        ("Alice Martin", "review requested"),
        ("Bob Durand", "review decided"),
        ("Alice Martin", "override recorded"),
        ("Bob Durand", "override approved"),
        ("Alice Martin", "letter issued"),
        ("Bob Durand", "export"),
    ]
    assert all(e["ts"] > 0 and e["role"] in ("officer", "risk") for e in doc["events"])


def test_acts_survive_a_reimport_and_a_reopen(env):
    rid = decided(env, 0.5)
    records.request_review(env.store, OFFICER, rid, "view")
    env.store.close()
    (env.root / "credit.db").replace(env.root / "old.db")  # the data file goes away; the store does not care
    env.store = stores.open_store(env.log_db)
    assert records.reviews_of(env.store, rid)[0]["client_view"] == "view"


def test_who_must_be_named(env):
    with pytest.raises(RightsError, match="name is required"):
        Actor("  ", "officer")
    with pytest.raises(RightsError, match="unknown role"):
        Actor("x", "boss")


def test_cli_review_and_override(env):
    """The command line acts as verified accounts: the role is the account's; four eyes needs two accounts."""
    base = ["--db", str(env.db), "--log-db", str(env.log_db)]
    rid = decided(env, 0.5)

    def run(args: list[str], who: str):
        return CliRunner().invoke(cli, [*args, "--as", who, *base], env=as_env(env.root, who))

    override = ["override", "record", rid, "--decision", "accept", "--reason", "guarantee", "--comment", "surety"]
    out = run(override, "alice")
    assert out.exit_code == 0 and "(pending)" in out.output, out.output
    out = run(["override", "approve", rid], "chloe")  # another officer: not the risk role
    assert out.exit_code == 1 and "risk role" in out.output, out.output
    out = run(["override", "approve", rid], "bob")
    assert out.exit_code == 0 and "in force (second person bob)" in out.output, out.output
    rid2 = decided(env, 0.6)
    out = run(["review", "request", rid2, "--view", "I was ill"], "alice")
    assert out.exit_code == 0 and "review" in out.output, out.output
    review_id = out.output.split()[1]
    out = run(["review", "decide", review_id, "--outcome", "uphold", "--reason", "nope"], "bob")
    assert out.exit_code == 2 and "nope" in out.output  # not in the closed list: a usage error
    out = run(["review", "decide", review_id, "--outcome", "uphold", "--reason", "policy"], "alice")
    assert out.exit_code == 1 and "risk role" in out.output  # alice's account is an officer's
    out = run(["review", "decide", review_id, "--outcome", "uphold", "--reason", "policy"], "rita")
    assert out.exit_code == 0 and "uphold" in out.output, out.output
    conn = apsw.Connection(str(env.log_db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        acts = conn.execute("SELECT action, actor, role FROM rights_events ORDER BY id").fetchall()
    finally:
        conn.close()
    # override recorded, approved, review requested, decided: refused attempts leave no act
    assert [(a, r) for _k, a, r in acts] == [
        ("alice", "officer"),
        ("bob", "risk"),
        ("alice", "officer"),
        ("rita", "risk"),
    ]


def test_cli_four_eyes_needs_two_different_accounts(env):
    """A risk account that made an override cannot approve it itself: the second account must be another."""
    base = ["--db", str(env.db), "--log-db", str(env.log_db)]
    rid = decided(env, 0.5)
    record = ["override", "record", rid, "--decision", "accept", "--reason", "guarantee", "--comment", "surety"]
    out = CliRunner().invoke(cli, [*record, "--as", "bob", *base], env=as_env(env.root, "bob"))
    assert out.exit_code == 0 and "(pending)" in out.output, out.output
    out = CliRunner().invoke(cli, ["override", "approve", rid, "--as", "bob", *base], env=as_env(env.root, "bob"))
    assert out.exit_code == 1 and "must not be the officer" in out.output, out.output
    out = CliRunner().invoke(cli, ["override", "approve", rid, "--as", "rita", *base], env=as_env(env.root, "rita"))
    assert out.exit_code == 0 and "second person rita" in out.output, out.output
