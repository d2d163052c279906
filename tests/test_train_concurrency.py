"""Training's concurrency: the logistic baseline in a thread beside the candidates, the outer folds two at a time;
the figures are those of the same fits one after the other."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from app.model.train import _logistic_margin, _nested_margins, honest_figures, train_arrays


def _data(n=900, p=10, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)).astype(np.float32)
    logit = 1.2 * X[:, 0] - 0.9 * X[:, 1] + 0.5 * X[:, 2] * X[:, 3] - 2.3
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    X[rng.random(X.shape) < 0.08] = np.nan
    X[::40, 4] = -np.inf
    return X, y, [f"f{i}" for i in range(p)]


def test_the_threaded_baseline_equals_the_baseline_computed_alone(tmp_path):
    X, y, names = _data()
    m = train_arrays(X, y, names, tmp_path / "m", seed=11, quick=True, progress=False, num_threads=1, folds=3)
    fold_id = np.empty(len(y), dtype=np.int32)
    from sklearn.model_selection import StratifiedKFold

    for k, (_tr, te) in enumerate(StratifiedKFold(n_splits=3, shuffle=True, random_state=11).split(X, y)):
        fold_id[te] = k
    margins, _extra = _nested_margins("logistic_regression", X, y, fold_id, {"seed": 11})
    alone, _ = honest_figures(y, margins, fold_id, 10.0, 1.0)
    got = m["baselines"]["logistic_regression"]
    for key in ("oof_auc", "auc_mean", "auc_std", "cost_per_client"):
        assert got[key] == alone[key], key


def test_the_baseline_reaches_the_l2_optimum_lbfgs_approaches():
    """Newton-Cholesky and a long lbfgs run land on the same regularised logistic regression."""
    X, y, _ = _data(n=1200)
    tr, te = np.arange(0, 900), np.arange(900, 1200)
    ours = _logistic_margin(X, y, tr, te, seed=0)
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clean = np.where(np.isfinite(X), X, np.nan).astype(np.float64)
    ref = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(solver="lbfgs", max_iter=10_000, tol=1e-12),
    ).fit(clean[tr], y[tr])
    np.testing.assert_allclose(ours, ref.decision_function(clean[te]), atol=1e-5)


def test_folds_fitted_at_once_give_the_margins_of_folds_fitted_one_by_one():
    """Two threads: two outer folds at once, one LightGBM thread each; the margins are those of the folds fitted
    one after the other with one thread, whichever fold finishes first."""
    from app.model.train import _fold_parallelism, _plan

    X, y, names = _data(n=1500, p=12)
    runs = {}
    for threads in (1, 2):
        plan = _plan(X, y, names, seed=4, folds=4, quick=True, say=lambda m: None, num_threads=threads, trials=2,
                     budget_seconds=None, monotone=None, sensitive_attributes=(), exclude_sensitive=False)  # fmt: skip
        assert _fold_parallelism("lightgbm", plan.cfg, 4)[0] == threads
        kinds = ("lightgbm", "scorecard")
        runs[threads] = {k: _nested_margins(k, plan.X_fit, y, plan.fold_id, plan.cfg) for k in kinds}
    for kind in ("lightgbm", "scorecard"):
        np.testing.assert_array_equal(runs[2][kind][0], runs[1][kind][0])
    assert runs[2]["lightgbm"][1]["n_trees"] == runs[1]["lightgbm"][1]["n_trees"]
