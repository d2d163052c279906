"""Realised performance (app.monitoring.performance): outcomes joined with the decision served."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import apsw
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from app.monitoring import outcomes, performance
from app.monitoring.outcomes import Outcome
from app.store import default_path, open_store

DAY = 86400.0
T0 = datetime(2025, 3, 3, tzinfo=UTC).timestamp()  # a Monday


def store(path) -> apsw.Connection:
    return open_store(path)


def log(conn, client_id, ts, p, model="m1", threshold=0.3):
    conn.execute(
        "INSERT INTO prediction_log (ts, request_id, client_id, features, probability, decision, model_id,"
        " latency_ms, role, endpoint) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (ts, str(uuid.uuid4()), client_id, b"", p, "refuse" if p >= threshold else "accept", model, 1.0, "officer",
         "GET /clients/{id}/score"),
    )  # fmt: skip


# ---- AUC equals sklearn's ---------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0]) | st.floats(0, 1)),
        min_size=2,
        max_size=60,
    )
)
def test_auc_equals_sklearn(pairs):
    y = np.array([a for a, _ in pairs])
    p = np.array([b for _, b in pairs])
    if y.all() or not y.any():
        with pytest.raises(performance.PerformanceError):
            performance.auc(y, p)
        return
    assert performance.auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_auc_one_class_is_an_error():
    with pytest.raises(performance.PerformanceError, match="one default and one non-default"):
        performance.auc(np.zeros(5), np.linspace(0, 1, 5))


# ---- calibration, cost, too few --------------------------------------------------------------------------


def test_calibration_by_band_by_hand():
    p = np.array([0.01, 0.03, 0.04, 0.15, 0.15, 1.0])
    y = np.array([0, 0, 1, 1, 0, 1])
    bands = performance.calibration(y, p, edges=(0.0, 0.02, 0.1, 1.0), min_band=2)
    assert [b["n"] for b in bands] == [1, 2, 3]
    assert bands[0]["observed_default_rate"] is None and bands[0]["too_few_outcomes"]
    assert bands[0]["mean_predicted"] == pytest.approx(0.01)
    assert bands[1]["observed_default_rate"] == pytest.approx(0.5)
    assert bands[1]["mean_predicted"] == pytest.approx(0.035)
    assert bands[2]["observed_default_rate"] == pytest.approx(2 / 3)  # p = 1.0 falls in the last band
    assert bands[2]["mean_predicted"] == pytest.approx((0.15 + 0.15 + 1.0) / 3)


def test_cost_by_hand():
    y = np.array([1, 1, 0, 0, 0])
    refused = np.array([True, False, True, False, False])
    c = performance.cost(y, refused, fn_cost=10, fp_cost=1)
    assert c["confusion"] == {"tp": 1, "fp": 1, "tn": 2, "fn": 1}
    assert c["cost_per_client"] == pytest.approx((10 * 1 + 1 * 1) / 5)
    assert c["accept_all_cost_per_client"] == pytest.approx(10 * 2 / 5)
    assert c["approval_rate"] == pytest.approx(3 / 5)


def test_too_few_outcomes_gives_no_number():
    y = np.array([0, 1, 0])
    out = performance.evaluate(y, np.array([0.1, 0.9, 0.2]), y.astype(bool), fn_cost=10, fp_cost=1, min_outcomes=4)
    assert out["too_few_outcomes"] and "auc" not in out and "cost_per_client" not in out
    assert "3 outcomes" in out["reason"]
    one_class = performance.evaluate(np.zeros(5), np.linspace(0, 1, 5), np.zeros(5), fn_cost=1, fp_cost=1,
                                     min_outcomes=1)  # fmt: skip
    assert one_class["too_few_outcomes"] and "one class" in one_class["reason"]


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 200_000))
def test_iso_week_matches_python(day):
    ts = np.array([day * DAY + 3600.0])
    y, w, _ = datetime.fromtimestamp(ts[0], UTC).isocalendar()
    assert performance.period_key(ts, "week")[0] == f"{y}-W{w:02d}"
    assert performance.period_key(ts, "day")[0] == datetime.fromtimestamp(ts[0], UTC).date().isoformat()


# ---- the join on a real SQLite file ------------------------------------------------------------------------


def test_join_uses_the_decision_served_before_the_outcome(tmp_path):
    conn = store(tmp_path / "store.db")
    with conn:
        log(conn, 1, T0, 0.10)  # an older decision about client 1
        log(conn, 1, T0 + DAY, 0.80)  # the latest one before its outcome: this is the one
        log(conn, 1, T0 + 5 * DAY, 0.05)  # after the outcome: not the decision that outcome is about
        log(conn, 2, T0 + DAY, 0.20)
        log(conn, None, T0 + DAY, 0.20)  # an applicant (no client id): never joined
    outcomes.upsert(conn, [Outcome(1, 1, T0 + 2 * DAY), Outcome(2, 0, T0 + 2 * DAY), Outcome(3, 1, T0)], "test")
    j = performance.join(conn)
    got = dict(zip(j.client_id.tolist(), j.probability.tolist(), strict=True))
    assert got == {1: 0.80, 2: 0.20}
    assert j.refused.tolist() == [True, False]
    # an outcome for a client never scored is reported, not silently dropped
    assert j.outcomes_total == 3 and j.never_scored == 1 and j.never_scored_ids == [3]
    rep = performance.report(conn, fn_cost=10, fp_cost=1, min_outcomes=1, min_band=1)
    assert rep["never_scored"] == {"count": 1, "client_ids": [3]}
    assert rep["matched"] == 2 and rep["outside_window"] == 0
    # a window that ends before client 1's second decision takes its first one
    j2 = performance.join(conn, until=T0 + DAY / 2)
    assert dict(zip(j2.client_id.tolist(), j2.probability.tolist(), strict=True)) == {1: 0.10}
    rep2 = performance.report(conn, fn_cost=10, fp_cost=1, until=T0 + DAY / 2, min_outcomes=1)
    assert rep2["outside_window"] == 1  # client 2's decision is outside the window


def test_report_per_model_and_period_equals_sklearn(tmp_path):
    conn = store(tmp_path / "store.db")
    rng = np.random.default_rng(3)
    n = 600
    p = rng.uniform(0, 1, n)
    y = (rng.uniform(0, 1, n) < p * 0.5).astype(int)
    days = rng.integers(0, 14, n)
    models = np.where(np.arange(n) % 3 == 0, "challenger", "champion")
    with conn:
        for i in range(n):
            log(conn, i + 1, T0 + days[i] * DAY + 60, float(p[i]), model=str(models[i]))
    outcomes.upsert(conn, [Outcome(i + 1, int(y[i]), T0 + 30 * DAY) for i in range(n)], "test")
    rep = performance.report(conn, fn_cost=10, fp_cost=1, period="week", min_outcomes=50)
    assert rep["matched"] == n and rep["never_scored"]["count"] == 0
    assert rep["overall"]["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    by_model = {m["model_id"]: m for m in rep["models"]}
    assert set(by_model) == {"champion", "challenger"}
    for mid, m in by_model.items():
        mask = models == mid
        assert m["outcomes"] == mask.sum()
        assert m["auc"] == pytest.approx(roc_auc_score(y[mask], p[mask]), abs=1e-12)
        assert [w["period"] for w in m["periods"]] == ["2025-W10", "2025-W11"]
        for w in m["periods"]:
            wk = mask & ((days < 7) if w["period"] == "2025-W10" else (days >= 7))
            assert w["outcomes"] == wk.sum()
            if w["too_few_outcomes"]:
                assert wk.sum() < 50 and "auc" not in w
            else:
                assert w["auc"] == pytest.approx(roc_auc_score(y[wk], p[wk]), abs=1e-12)
    refused = p >= 0.3
    fn, fp = int((~refused & (y == 1)).sum()), int((refused & (y == 0)).sum())
    assert rep["overall"]["cost_per_client"] == pytest.approx((10 * fn + fp) / n)


def test_last_n_keeps_only_recent_decisions(tmp_path):
    conn = store(tmp_path / "store.db")
    with conn:
        for i in range(10):
            log(conn, i + 1, T0 + i, 0.1 * i)
    outcomes.upsert(conn, [Outcome(i + 1, i % 2, T0 + DAY) for i in range(10)], "test")
    j = performance.join(conn, last=4)
    assert sorted(j.client_id.tolist()) == [7, 8, 9, 10]
    with pytest.raises(performance.PerformanceError):
        performance.join(conn, last=0)


# ---- the CLI ------------------------------------------------------------------------------------------------


def test_cli_performance_exit_codes(pipeline_copy, tmp_path):
    import json

    from click.testing import CliRunner

    from app.cli.main import cli
    from app.scoring.db import connect

    env = {"CREDIT_DB": str(pipeline_copy.db), "CREDIT_MODEL_DIR": str(pipeline_copy.model_dir)}
    data = connect(pipeline_copy.db, pipeline_copy.model_dir)
    scored = data.execute(  # every labelled client scored once, with the compiled model, as the API would log it
        "SELECT ?, 'r' || f.client_id, f.client_id, f.x, score_features(f.x),"
        " CASE WHEN score_features(f.x) >= model_threshold() THEN 'refuse' ELSE 'accept' END, model_id(), 1,"
        " 'officer', 'GET /clients/{id}/score' FROM features f JOIN labels USING (client_id)",
        (T0,),
    ).fetchall()
    data.close()
    conn = open_store(default_path(pipeline_copy.db))
    with conn:
        conn.executemany(
            "INSERT INTO prediction_log (ts, request_id, client_id, features, probability, decision, model_id,"
            " latency_ms, role, endpoint) VALUES (?,?,?,?,?,?,?,?,?,?)",
            scored,
        )
    conn.close()
    runner = CliRunner()
    res = runner.invoke(cli, ["performance"], env=env)
    assert res.exit_code == 2 and "no outcome joins a decision" in res.output  # no outcomes yet
    assert runner.invoke(cli, ["outcomes", "simulate"], env=env).exit_code == 0
    html = tmp_path / "perf.html"
    res = runner.invoke(cli, ["performance", "--json", "--html", str(html), "--period", "all"], env=env)
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    (model,) = rep["models"]
    assert model["model_id"] == json.loads((pipeline_copy.model_dir / "manifest.json").read_text())["model_id"]
    assert 0.5 < model["auc"] < 1 and rep["never_scored"]["count"] == 0
    conn = open_store(default_path(pipeline_copy.db))
    joined = "SELECT o.defaulted, l.probability FROM outcomes o JOIN prediction_log l USING (client_id)"
    y, p = zip(*conn.execute(joined), strict=True)
    conn.close()
    assert model["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert "Realised performance" in html.read_text() and model["model_id"][:12] in html.read_text()
    res = runner.invoke(cli, ["performance", "--fail-below-auc", "0.5"], env=env)
    assert res.exit_code == 0 and "too few" not in res.output.splitlines()[3]
    res = runner.invoke(cli, ["performance", "--fail-below-auc", "1.0"], env=env)
    assert res.exit_code == 1 and "realised AUC below 1.0" in res.output
    res = runner.invoke(cli, ["performance", "--fail-below-auc", "0.5", "--min-outcomes", "1000000"], env=env)
    assert res.exit_code == 2 and "too few outcomes" in res.output
    res = runner.invoke(cli, ["performance", "--since", "yesterday"], env=env)
    assert res.exit_code == 2 and "not a date/time" in res.output  # click usage error
