"""Champion choice: a cost difference within two paired standard errors is a tie, the higher AUC wins;
small data scores each search trial by inner cross-validation (issue 16, budgets)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from app.model import search
from app.model.evaluation import cross_fitted_cost, same_cost
from app.model.train import _champion


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(10, 200), fn=st.floats(0.5, 20), fp=st.floats(0.1, 5))
def test_client_costs_add_up_to_the_cross_fitted_cost(seed, n, fn, fp):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    p = rng.random(n)
    fold_id = rng.integers(0, 3, n)
    cf = cross_fitted_cost(y, p, fold_id, fn, fp)
    assert np.isclose(cf["client_costs"].sum() / n, cf["cost_per_client"], rtol=1e-12, atol=1e-12)
    assert set(np.unique(cf["client_costs"])) <= {0.0, fn, fp}


def test_same_cost_is_a_paired_test():
    rng = np.random.default_rng(0)
    a = rng.choice([0.0, 1.0, 10.0], size=2000, p=[0.7, 0.2, 0.1])
    assert same_cost(a, a)[0]
    noisy = a.copy()  # 20 clients cost 1 instead of 0, 20 others 0 instead of 1: different, not dearer
    zeros, ones = np.flatnonzero(a == 0.0)[:20], np.flatnonzero(a == 1.0)[:20]
    noisy[zeros], noisy[ones] = 1.0, 0.0
    tie, diff, se = same_cost(a, noisy)
    assert tie and diff == 0.0 and se > 0
    assert not same_cost(a, a + 0.5)[0]


def _cand(costs, auc):
    return {"cost_per_client": float(np.mean(costs)), "oof_auc": auc, "_client_costs": np.asarray(costs, float)}


def test_a_tie_goes_to_the_higher_auc_a_real_difference_to_the_lower_cost():
    rng = np.random.default_rng(1)
    base = rng.choice([0.0, 1.0, 10.0], size=3000, p=[0.7, 0.2, 0.1])
    close = base.copy()
    close[np.flatnonzero(base == 1.0)[:3]] = 0.0  # 3 clients cheaper of 3,000: within noise
    champ, why = _champion({"lightgbm": _cand(base, 0.75), "scorecard": _cand(close, 0.70)})
    assert champ == "lightgbm" and "ties with scorecard" in why
    far = np.where(base == 10.0, 0.0, base)  # far cheaper: no tie, the cost decides
    champ, why = _champion({"lightgbm": _cand(base, 0.75), "scorecard": _cand(far, 0.70)})
    assert champ == "scorecard" and why.startswith("lowest honest cost")
    # a tied candidate that does not beat the trivial policy is not chosen
    champ, _ = _champion({"lightgbm": _cand(base, 0.75), "scorecard": _cand(close, 0.70)}, trivial_cost=0.5)
    assert champ == "scorecard"


def test_small_data_scores_trials_by_inner_cross_validation():
    rng = np.random.default_rng(0)
    y = (rng.random(3000) < 0.3).astype(np.int8)
    idx = np.arange(0, 3000, 2)
    splits = search.inner_splits(y, idx, 0, quick=False)
    assert len(splits) == search.CV_FOLDS
    vals = np.concatenate([va for _tr, va in splits])
    assert sorted(vals.tolist()) == idx.tolist()  # every row of idx validated once, nothing else
    for tr, va in splits:
        assert not set(tr) & set(va) and set(tr) | set(va) == set(idx)
    assert len(search.inner_splits(y, idx, 0, quick=True)) == 1
    big = np.arange(search.CV_MAX_ROWS + 1)
    assert len(search.inner_splits(np.resize(y, len(big)), big, 0, quick=False)) == 1
