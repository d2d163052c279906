"""Seed bagging (issue 16): the averaged model is one LightGBM model whose raw score is the mean of the
fits' raw scores, and a small-data champion built that way compiles and passes the parity gate."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.model import search
from app.model.bagging import average_models
from app.model.compile import compile_model
from app.model.train import train_arrays


def _fits(seed: int, k: int, leaves: int, rounds: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(300, 4))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = (X[:, 0] - np.nan_to_num(X[:, 1]) + rng.normal(size=300) > 0.5).astype(int)
    params = {"objective": "binary", "verbosity": -1, "num_leaves": leaves, "min_child_samples": 5}
    params.update(bagging_fraction=0.7, bagging_freq=1, feature_fraction=0.75)
    return X, [lgb.train({**params, "seed": seed + s}, lgb.Dataset(X, y), num_boost_round=rounds) for s in range(k)]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 5), leaves=st.integers(2, 9), rounds=st.integers(1, 12))
def test_the_average_scores_the_mean_of_the_fits(seed, k, leaves, rounds):
    X, fits = _fits(seed, k, leaves, rounds)
    merged = lgb.Booster(model_str=average_models([b.model_to_string() for b in fits]))
    want = np.mean([b.predict(X, raw_score=True) for b in fits], axis=0)
    got = merged.predict(X, raw_score=True)
    assert merged.num_trees() == sum(b.num_trees() for b in fits)
    assert np.max(np.abs(got - want)) <= 1e-12
    # SHAP of the average adds up to its margin (LightGBM's own TreeSHAP over the merged trees)
    contrib = merged.predict(X[:20], pred_contrib=True)
    assert np.allclose(contrib.sum(axis=1), got[:20], atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 4), rounds=st.integers(1, 8), data=st.data())
def test_a_weighted_average_scores_the_weighted_sum(seed, k, rounds, data):
    X, fits = _fits(seed, k, 5, rounds)
    weights = data.draw(st.lists(st.floats(0.05, 2.0), min_size=k, max_size=k))
    merged = lgb.Booster(model_str=average_models([b.model_to_string() for b in fits], weights))
    want = sum(w * b.predict(X, raw_score=True) for w, b in zip(weights, fits, strict=True))
    assert np.max(np.abs(merged.predict(X, raw_score=True) - want)) <= 1e-12


def test_bad_model_texts_are_refused():
    with pytest.raises(ValueError, match="no model"):
        average_models([])
    with pytest.raises(ValueError, match="no tree"):
        average_models(["tree\nversion=v4\n", "tree\nversion=v4\n"])
    with pytest.raises(ValueError, match="2 weights for 1 models"):
        average_models(["x"], [0.5, 0.5])


def test_bags_only_on_small_data_and_not_quick():
    assert search.bags(search.BAG_MAX_ROWS, quick=False) == search.BAGS > 1
    assert search.bags(search.BAG_MAX_ROWS + 1, quick=False) == 1
    assert search.bags(100, quick=True) == 1


def test_a_bagged_champion_is_shipped_compiled_and_reproducible(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(700, 5)).astype(np.float32)
    logit = np.where((X[:, 0] > 0) == (X[:, 1] > 0), 1.2, -3.5)  # an interaction: LightGBM wins
    y = (rng.random(700) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    names = [f"x{i}" for i in range(5)]
    kw = {"seed": 3, "quick": False, "trials": 1, "folds": 3, "progress": False, "num_threads": 1}
    m = train_arrays(X, y, names, tmp_path / "a", **kw)
    assert m["champion"]["kind"] == "lightgbm" and m["search"]["bags"] == search.BAGS
    booster = lgb.Booster(model_file=str(tmp_path / "a" / "model.txt"))
    assert booster.num_trees() == search.BAGS * m["params"]["num_boost_round"] == m["metrics"]["n_estimators"]
    again = train_arrays(X, y, names, tmp_path / "b", **kw)
    assert again["model_id"] == m["model_id"]
    info = compile_model(tmp_path / "a", progress=False, flags=("-O1",), tl2cgen_reference=False)
    assert info["parity_max_abs_diff"] <= 1e-6 and info["shap"]["parity_max_abs_diff"] <= info["shap"]["tolerance"]
