"""Honest figures: the cross-fitted threshold never looks at the fold it is counted on; trivial policies;
calibration metrics; Platt calibration keeps the ranking."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.model import calibration
from app.model.evaluation import (
    auc,
    best_threshold,
    brier,
    business_cost,
    cross_fitted_cost,
    ece,
    log_loss,
    reliability,
    score_bands,
    trivial_policies,
)


@st.composite
def folded(draw):
    n = draw(st.integers(6, 60))
    k = draw(st.integers(2, 4))
    y = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    p = np.array(draw(st.lists(st.floats(0, 1) | st.sampled_from([0.1, 0.5, 0.9]), min_size=n, max_size=n)))
    fold_id = np.arange(n) % k
    return y, p, fold_id


@settings(max_examples=150, deadline=None)
@given(folded(), st.integers(0, 3), st.randoms(use_true_random=False), st.sampled_from([(10.0, 1.0), (1.0, 1.0)]))
def test_cross_fitted_threshold_never_sees_its_fold(data, which, rnd, costs):
    y, p, fold_id = data
    fn, fp = costs
    k = which % (fold_id.max() + 1)
    before = cross_fitted_cost(y, p, fold_id, fn, fp)
    # scramble the held fold's labels and scores: its threshold must not move
    held = fold_id == k
    y2, p2 = y.copy(), p.copy()
    y2[held] = [rnd.randint(0, 1) for _ in range(held.sum())]
    p2[held] = [rnd.random() for _ in range(held.sum())]
    after = cross_fitted_cost(y2, p2, fold_id, fn, fp)
    assert after["fold_thresholds"][k] == before["fold_thresholds"][k]
    # and the fold's cost is the business cost at the threshold chosen on the others
    t, _ = best_threshold(y[~held], p[~held], fn, fp)
    assert before["fold_costs"][k] == pytest.approx(business_cost(y[held], p[held], t, fn, fp) / held.sum())
    assert before["cost_per_client"] == pytest.approx(
        sum(c * (fold_id == j).sum() for j, c in enumerate(before["fold_costs"])) / len(y)
    )
    assert sum(before["confusion"].values()) == len(y)


def test_cross_fitted_cost_is_not_the_in_sample_minimum():
    # pure noise: the in-sample minimiser looks better than the honest, cross-fitted figure
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.2).astype(int)
    p = rng.random(400)
    fold_id = np.arange(400) % 5
    _, in_sample = best_threshold(y, p, 10, 1)
    honest = cross_fitted_cost(y, p, fold_id, 10, 1)["cost_per_client"]
    assert honest > in_sample / 400


def test_trivial_policies():
    y = np.array([1, 0, 0, 0])
    assert trivial_policies(y, 10, 1) == {"accept_all": 2.5, "refuse_all": 0.75}


def test_calibration_metrics():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.0, 0.0, 1.0, 1.0])
    assert brier(y, p) == 0 and log_loss(y, p) < 1e-12 and ece(y, p) == 0
    q = np.full(4, 0.5)
    assert brier(y, q) == 0.25 and log_loss(y, q) == pytest.approx(np.log(2))
    rel = reliability(y, np.array([0.1, 0.2, 0.3, 0.4]), bins=2)
    assert rel == [
        {"predicted": pytest.approx(0.15), "observed": 0.0, "n": 2},
        {"predicted": 0.35, "observed": 1.0, "n": 2},
    ]
    bands = score_bands(y, np.array([0.1, 0.2, 0.3, 0.4]), bands=2)
    assert [b["default_rate"] for b in bands] == [0.0, 1.0]


# ------------------------------------------------------------------ calibration


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(-8192, 8192), min_size=4, max_size=80),
    st.lists(st.integers(0, 1), min_size=4, max_size=80),
    st.floats(0.05, 2),
    st.floats(-3, 3),
)
def test_platt_map_is_monotone_and_keeps_auc(margins, labels, a, b):
    # margins on a 1/1024 grid in [-8, 8]: calibrated log-odds stay within +-19, where float64 still
    # separates neighbouring probabilities (far in the tails the sigmoid rounds to 0 or 1)
    n = min(len(margins), len(labels))
    m, y = np.array(margins[:n]) / 1024.0, np.array(labels[:n])
    cal = {"a": a, "b": b}
    p = calibration.apply(m, cal)
    order = np.argsort(m, kind="stable")
    assert np.all(np.diff(p[order]) >= 0)
    assert np.all(np.diff(p[order])[np.diff(m[order]) > 0] > 0)  # strictly increasing: no new ties
    if 0 < y.sum() < n:
        assert auc(y, p) == auc(y, m)
    fitted = calibration.fit_platt(m, y)
    assert fitted["a"] > 0
    if 0 < y.sum() < n and 8 * fitted["a"] + abs(fitted["b"]) < 19:
        assert auc(y, calibration.apply(m, fitted)) == auc(y, m)


def test_platt_recovers_a_known_map():
    rng = np.random.default_rng(1)
    m = rng.normal(0, 2, 20000)
    y = (rng.random(len(m)) < calibration.sigmoid(0.5 * m - 1.0)).astype(int)
    cal = calibration.fit_platt(m, y)
    assert cal["method"] == "platt"
    assert cal["a"] == pytest.approx(0.5, abs=0.05) and cal["b"] == pytest.approx(-1.0, abs=0.08)


def test_choose_prefers_platt_on_inflated_scores_and_is_cross_fitted():
    rng = np.random.default_rng(2)
    m = rng.normal(0, 1.5, 5000)
    y = (rng.random(len(m)) < calibration.sigmoid(m - 2.0)).astype(int)
    inflated = 3.0 * m  # like is_unbalance: right ranking, wrong probabilities
    fold_id = np.arange(len(m)) % 5
    cal, p_honest, losses = calibration.choose(inflated, y, fold_id)
    assert cal["method"] == "platt" and losses["platt"] < losses["none"]
    assert cal["a"] == pytest.approx(1 / 3, abs=0.05)
    # honest probabilities of fold 0 come from a map fitted without fold 0
    held = fold_id == 0
    other = calibration.fit_platt(inflated[~held], y[~held])
    np.testing.assert_allclose(p_honest[held], calibration.apply(inflated[held], other))
    # a map that would reverse the ranking is refused: identity
    assert calibration.fit_platt(np.arange(10.0), np.array([1] * 5 + [0] * 5))["method"] == "none"
