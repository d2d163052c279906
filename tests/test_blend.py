"""The blend candidate (issue 16): w * the tuned LightGBM's log-odds + (1 - w) * the scorecard's, w chosen on
out-of-fold margins (cross-fitted for the honest figures), shipped as one LightGBM text that compiles and
passes the parity gate like any champion."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from app.model.compile import compile_model
from app.model.evaluation import auc
from app.model.train import BLEND_GRID, blend_weight, cross_fitted_blend, train_arrays


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(30, 300), folds=st.integers(2, 5))
def test_each_folds_weight_is_chosen_without_that_fold(seed, n, folds):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    fold_id = np.arange(n) % folds
    y[:folds], y[folds : 2 * folds] = 0, 1  # both classes in every fold
    a, b = rng.normal(size=n) + y, rng.normal(size=n) + 0.5 * y
    blended, weights = cross_fitted_blend(y, a, b, fold_id)
    assert len(weights) == folds and set(weights) <= set(BLEND_GRID)
    for k, w in enumerate(weights):
        held = fold_id == k
        assert w == blend_weight(y[~held], a[~held], b[~held])
        np.testing.assert_array_equal(blended[held], w * a[held] + (1 - w) * b[held])
    # the held fold's labels and margins play no part in its weight: one fold an example (drawn with the example,
    # so every fold is tried across the examples), one blend instead of one per fold
    k = int(rng.integers(folds))
    held = fold_id == k
    y2, a2 = y.copy(), a.copy()
    y2[held], a2[held] = 1 - y2[held], rng.normal(size=int(held.sum()))
    assert cross_fitted_blend(y2, a2, b, fold_id)[1][k] == weights[k]


def test_the_weight_follows_the_signal():
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.3).astype(int)
    signal, noise = y + rng.normal(size=2000), rng.normal(size=2000)
    assert blend_weight(y, signal, noise) == 1.0 and blend_weight(y, noise, signal) == 0.0
    # two halves of the signal: the mean beats either part
    half1, half2 = y + rng.normal(size=2000) * 1.5, y + rng.normal(size=2000) * 1.5
    w = blend_weight(y, half1, half2)
    assert 0 < w < 1 and auc(y, w * half1 + (1 - w) * half2) > max(auc(y, half1), auc(y, half2))


def test_a_blend_champion_is_shipped_compiled_and_reproducible(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 6)).astype(np.float32)
    X[rng.random(X.shape) < 0.05] = np.nan
    x = np.nan_to_num(X)
    # an additive part the scorecard reads well and an interaction only the trees find
    logit = 0.8 * x[:, 2] - 0.7 * x[:, 3] + 0.5 * x[:, 4] + np.where((x[:, 0] > 0) == (x[:, 1] > 0), 0.9, -0.9) - 1.5
    y = (rng.random(1500) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    names = [f"x{i}" for i in range(6)]
    kw = {"seed": 1, "quick": True, "progress": False, "num_threads": 1, "folds": 3, "candidates": ("blend",)}
    m = train_arrays(X, y, names, tmp_path / "a", **kw)
    assert m["champion"]["kind"] == "blend" and set(m["candidates"]) == {"blend"}
    w = m["params"]["lightgbm_weight"]
    fig = m["candidates"]["blend"]
    assert 0 < w < 1 and w == fig["weight"] and len(fig["fold_weights"]) == 3
    booster = lgb.Booster(model_file=str(tmp_path / "a" / "model.txt"))
    lgb_trees = m["params"]["num_boost_round"] * m["params"]["bags"]
    assert booster.num_trees() == m["metrics"]["n_estimators"] == lgb_trees + m["params"]["scorecard"]["used"]
    again = train_arrays(X, y, names, tmp_path / "b", **kw)
    assert again["model_id"] == m["model_id"]
    info = compile_model(tmp_path / "a", progress=False, flags=("-O1",), tl2cgen_reference=False)
    assert info["parity_max_abs_diff"] <= 1e-6 and info["shap"]["parity_max_abs_diff"] <= info["shap"]["tolerance"]
