"""The drift verdict (app.monitoring.verdict): bands, the refusal-rate test, the window's name, and the detection
of every `credit traffic --drift` scenario (and no alarm on undrifted traffic) on the test pipeline."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.monitoring.detection import SCENARIOS, Replayer
from app.monitoring.verdict import PSI_ACT, TOP_IMPORTANCE, TOP_MAX, judge, psi_level, refusal_test, window_text

WINDOWS = 20


@pytest.fixture(scope="module")
def replayer(pipeline):
    return Replayer(pipeline.db, pipeline.model_dir)


def test_psi_bands_are_the_risk_teams():
    assert [psi_level(v) for v in (0.0, 0.0999, 0.1, 0.1001, 0.25, 0.2501, 4.0)] == [
        "stable", "stable", "stable", "watch", "watch", "act", "act",
    ]  # fmt: skip
    assert psi_level(math.inf) == "act" and psi_level(None) == "stable"


def test_refusal_test_is_the_pooled_two_proportion_z_test():
    from scipy.stats import norm

    z, p = refusal_test(390, 1000, 810, 2580)
    pooled = (390 + 810) / 3580
    want = (0.39 - 810 / 2580) / math.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 2580))
    assert z == pytest.approx(want) and z > 4
    assert p == pytest.approx(2 * norm.sf(abs(want)))
    assert refusal_test(0, 100, 0, 100) == (0.0, 1.0)
    assert refusal_test(5, 0, 3, 10) == (0.0, 1.0)


@given(st.integers(0, 500), st.integers(1, 500), st.integers(0, 500), st.integers(1, 500))
def test_refusal_test_is_antisymmetric_and_p_is_a_probability(k1, n1, k0, n0):
    k1, k0 = min(k1, n1), min(k0, n0)
    z, p = refusal_test(k1, n1, k0, n0)
    z2, p2 = refusal_test(k0, n0, k1, n1)
    assert z == pytest.approx(-z2, abs=1e-9) and p == pytest.approx(p2)
    assert 0.0 <= p <= 1.0
    assert (z > 0) == (k1 / n1 > k0 / n0)


def test_window_text_names_the_window():
    w = {"since": None, "until": None, "last": 1000, "rows": 1000,
         "first_ts": "2026-12-07T10:00:05+00:00", "last_ts": "2026-12-07T10:12:40+00:00"}  # fmt: skip
    assert window_text(w) == "last 1,000 requests, 2026-12-07 10:00–10:12 UTC"
    w2 = w | {"last": None, "since": "2026-12-06T00:00:00+00:00", "first_ts": "2026-12-06T23:50:00+00:00"}
    assert window_text(w2) == (
        "1,000 requests from 2026-12-06T00:00:00+00:00 until now, 2026-12-06 23:50 – 2026-12-07 10:12 UTC"
    )


def test_top_features_follow_the_importance(replayer):
    ref = replayer.reference
    assert ref.importance.sum() == pytest.approx(1.0)
    shares = [ref.importance[j] for j in ref.top]
    assert shares == sorted(shares, reverse=True) and shares[0] == ref.importance.max()
    assert len(ref.top) == TOP_MAX or sum(shares) >= TOP_IMPORTANCE
    assert ref.refusals is not None and 0 < ref.refusals < ref.rows


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_drift_scenario_is_flagged_and_undrifted_traffic_is_not(replayer, scenario):
    """WINDOWS windows of 1,000 requests each: every drift scenario gets "act" in at least 95 % of them,
    undrifted traffic in none (benchmarks/bench_drift_detection.py measures the same over more windows)."""
    rates = replayer.rates(scenario, windows=WINDOWS, n=1000, seed=500)
    if scenario is None:
        assert rates["act"] == 0.0, rates
    else:
        assert rates["act"] >= 0.95, rates


def test_the_reasons_name_what_moved(replayer):
    v = replayer.window("ext-source", 1000, np.random.default_rng(1))
    assert v["level"] == "act"
    assert any(r.startswith("EXT_SOURCE_2 ") and f"> {PSI_ACT}" in r for r in v["reasons"]), v["reasons"]
    assert v["decisions"]["window_refusal_rate"] > v["decisions"]["reference_refusal_rate"]
    income = replayer.window("income", 1000, np.random.default_rng(1))
    assert any("AMT_INCOME_TOTAL" in r for r in income["reasons"]), income["reasons"]
    clean = replayer.window(None, 1000, np.random.default_rng(1))
    assert clean["level"] == "stable" and clean["reasons"] == []


def test_a_refusal_rate_change_alone_is_an_act(replayer):
    """Same applicants, same scores, but 12 more refusals in 100 (a threshold changed by hand, say)."""
    rng = np.random.default_rng(2)
    X = replayer.X[rng.integers(0, len(replayer.X), 1000)]
    scores = replayer.bundle.predict(np.ascontiguousarray(X)).astype(np.float64)
    refused = replayer.bundle.refuses(scores)
    assert judge(X, scores, refused, replayer.reference)["decisions"]["level"] == "stable"
    more = refused.copy()
    more[np.flatnonzero(~refused)[:120]] = True
    v = judge(X, scores, more, replayer.reference)
    assert v["decisions"]["level"] == "act" and v["features"]["level"] == "stable" and v["level"] == "act"
    assert any(r.startswith("refusal rate ") for r in v["reasons"])
