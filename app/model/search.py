"""The LightGBM procedure: a seeded random search with early stopping on an inner validation split.

`tune(X, y, idx, ...)` only ever looks at the rows `idx` (an outer fold's training part, or every
row for the final model): they are split into inner-train / inner-validation (stratified, seeded;
one 80/20 split, or CV_FOLDS folds up to CV_MAX_ROWS rows); each trial trains on inner-train with
early stopping on inner-validation; the trial with the best (mean) inner-validation AUC gives the
parameters and the tree count (where the mean validation AUC peaks, at least `patience`). `refit` then trains on all
of `idx` with that many trees; up to BAG_MAX_ROWS rows, as the mean of BAGS such fits with different
seeds (app/model/bagging.py: one LightGBM model). The same procedure is run inside every outer fold
(honest figures) and once on all rows (the shipped model), so the figures describe what is shipped.

Trial 0 is always the project's default parameters, so the search can only match or beat them on
the inner validation; on small data trial 1 is a slow, subsampled configuration (STEADY); then
random points.
Early stopping waits about 2 / learning_rate rounds, so slow learners are not cut short.
The budget is a number of trials (deterministic: same data + seed + threads
gives the same model); `budget_seconds` is an optional cap that stops starting new trials (then
the result depends on the machine's speed, which the manifest records as `search.stopped_by_time`).
Why not Optuna: with the budgets that fit `credit train` in 3 minutes (a handful of trials per
search) TPE is still in its random start-up phase, so a seeded random search is the same thing
without a dependency.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from app.model.evaluation import auc

INNER_SHARE = 0.2
# up to this many rows, each trial is scored by an inner stratified CV_FOLDS-fold cross-validation instead of one
# inner split: one 20 % split of a few thousand clients gives an AUC too noisy to choose among trials (the
# best of 8 noisy scores is mostly luck), and small data makes the extra fits cheap
CV_MAX_ROWS = 10_000
CV_FOLDS = 3


def base_params(seed: int, quick: bool, num_threads: int) -> dict[str, Any]:
    """The project's default LightGBM parameters (trial 0 of every search, the default baseline)."""
    params: dict[str, Any] = {
        "objective": "binary",
        "metric": "auc",
        "learning_rate": 0.08,
        "num_leaves": 31,
        "min_child_samples": 40,
        "feature_fraction": 0.5,
        "max_bin": 127,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "feature_pre_filter": False,
        "num_threads": num_threads,
        "verbosity": -1,
    }
    if quick:
        params.update(learning_rate=0.2, num_leaves=7, min_child_samples=10, max_bin=63)
    return params


# trial 1 on small data sets (inner-train part up to STEADY_MAX_ROWS rows, where its many slow rounds are
# cheap): a slow, subsampled configuration that is hard to beat on small, noisy credit data
STEADY_MAX_ROWS = 5000
STEADY = {
    "learning_rate": 0.02,
    "num_leaves": 15,
    "min_child_samples": 20,
    "feature_fraction": 0.7,
    "bagging_fraction": 0.8,
    "lambda_l2": 1.0,
}


# up to this many labelled rows the shipped LightGBM (and each outer fold's) is the mean of BAGS refits with
# different seeds (app.model.bagging): on small data one fit's row and feature subsampling is a large share of its
# error, and the extra fits are cheap; above it one fit (the model's size and SQL cost per row stay those of one fit)
BAG_MAX_ROWS = CV_MAX_ROWS
BAGS = 5
BAG_SEED_STEP = 1000


# LightGBM's threads only pay off on enough data: each boosting round waits for every thread to wake, which on
# this 2-core VM cost about 9 ms a round (python -m benchmarks.lgb_threads: 2 threads took 9x as long as 1 on
# 4,000 x 26 and 1.24x on 4,000 x 400, 0.96x on 16,000 x 400, 0.57x on 250,000 x 400)
CELLS_PER_THREAD = 4_000_000


def fit_threads(n_rows: int, n_features: int, threads: int) -> int:
    """LightGBM threads for a fit on n_rows x n_features: 1, plus one per CELLS_PER_THREAD cells, at most `threads`."""
    return max(1, min(int(threads), 1 + (int(n_rows) * int(n_features)) // CELLS_PER_THREAD))


def patience(params: dict[str, Any], quick: bool) -> int:
    """Early-stopping rounds: about two 'learning-rate units' of trees, so slow learners are not cut short.
    Also the fewest trees a trial keeps (`tune`): a validation curve that peaks before the end of its first
    patience window never rose beyond noise (seen on a noisy 6,000-client data set: inner folds stopping at
    1 or 2 trees), and such a model is scarcely fitted; its fold models' scores also spread on a scale
    unlike the others', which the cross-fitted threshold, carried from fold to fold, cannot follow."""
    return 10 if quick else max(30, int(round(2.0 / float(params["learning_rate"]))))


def sample_params(rng: np.random.Generator, quick: bool) -> dict[str, Any]:
    """One point of the search space (learning rate, leaves, child size, L1/L2, feature and row subsampling)."""

    def log_uniform(lo: float, hi: float) -> float:
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))

    out = {
        "learning_rate": log_uniform(0.1, 0.3) if quick else log_uniform(0.02, 0.12),
        "num_leaves": int(rng.integers(4, 16)) if quick else int(rng.integers(7, 64)),
        "min_child_samples": int(round(log_uniform(5, 200))),
        "lambda_l1": log_uniform(1e-3, 5.0),
        "lambda_l2": log_uniform(1e-2, 30.0),
        "feature_fraction": float(rng.uniform(0.2, 0.9)),
        "bagging_fraction": float(rng.uniform(0.5, 1.0)),
        "min_gain_to_split": float(rng.choice([0.0, 0.0, 0.01, 0.1])),
    }
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in out.items()}


def inner_split(y: np.ndarray, idx: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    tr, va = train_test_split(idx, test_size=INNER_SHARE, stratify=y[idx], random_state=seed)
    return np.sort(tr), np.sort(va)


def inner_splits(y: np.ndarray, idx: np.ndarray, seed: int, quick: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (inner-train, inner-validation) parts of idx a trial is scored on: CV_FOLDS folds up to
    CV_MAX_ROWS rows (not with quick), else one INNER_SHARE split."""
    from sklearn.model_selection import StratifiedKFold

    if quick or len(idx) > CV_MAX_ROWS or np.bincount(y[idx], minlength=2).min() < 2 * CV_FOLDS:
        return [inner_split(y, idx, seed)]
    folds = StratifiedKFold(CV_FOLDS, shuffle=True, random_state=seed).split(np.zeros(len(idx)), y[idx])
    return [(np.sort(idx[a]), np.sort(idx[b])) for a, b in folds]


def tune(
    X: np.ndarray,
    y: np.ndarray,
    idx: np.ndarray,
    *,
    seed: int,
    trials: int,
    budget_seconds: float | None,
    num_threads: int,
    quick: bool,
    monotone: list[int] | None = None,
    say: Any = None,
    label: str = "",
) -> dict[str, Any]:
    """Best parameters and tree count for the rows idx, found on an inner split of idx only."""
    import lightgbm as lgb

    t_start = time.perf_counter()
    rounds = 60 if quick else 3000
    base = base_params(seed, quick, fit_threads(len(idx), X.shape[1], num_threads))
    if monotone:
        base["monotone_constraints"] = list(monotone)
        base["monotone_constraints_method"] = "basic"
    splits = inner_splits(y, idx, seed, quick)
    ds_params = {"max_bin": base["max_bin"], "feature_pre_filter": False}
    if len(splits) > 1:  # inner CV: one Dataset of idx, folds as positions in it (binning sees no label)
        pos = {int(r): i for i, r in enumerate(idx)}
        whole = lgb.Dataset(X[idx], y[idx], params=ds_params, free_raw_data=False)
        folds = [(np.array([pos[int(r)] for r in tr]), np.array([pos[int(r)] for r in va])) for tr, va in splits]
    else:
        tr, va = splits[0]
        dtr = lgb.Dataset(X[tr], y[tr], params=ds_params, free_raw_data=False)
        dva = lgb.Dataset(X[va], y[va], reference=dtr, free_raw_data=False)
    rng = np.random.default_rng(seed)
    log: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    stopped_by_time = False
    for k in range(max(1, trials)):
        if k and budget_seconds is not None and time.perf_counter() - t_start > budget_seconds:
            stopped_by_time = True
            break
        if k == 0:
            params = dict(base)
        elif k == 1 and not quick and len(idx) * (1 - INNER_SHARE) <= STEADY_MAX_ROWS:
            params = {**base, **STEADY}
        else:
            params = {**base, **sample_params(rng, quick)}
        stop = lgb.early_stopping(patience(params, quick), verbose=False)
        if len(splits) > 1:
            # the tree count where the folds' MEAN validation AUC peaks (steadier than the mean of each fold's stop)
            curve = lgb.cv(params, whole, num_boost_round=rounds, folds=folds, callbacks=[stop])["valid auc-mean"]
            stopped_at, score = len(curve), float(curve[-1])
        else:
            booster = lgb.train(params, dtr, num_boost_round=rounds, valid_sets=[dva], callbacks=[stop])
            stopped_at = int(booster.best_iteration or rounds)
            score = auc(y[va], booster.predict(X[va], num_iteration=stopped_at, raw_score=True))
        n_trees = max(stopped_at, patience(params, quick))
        entry = {
            "trial": k,
            "inner_auc": score,
            "n_trees": n_trees,
            "stopped_at": stopped_at,
            **{p: params[p] for p in _SHOWN if p in params},
        }
        log.append(entry)
        if best is None or score > best["inner_auc"]:
            best = {"inner_auc": score, "n_trees": n_trees, "params": params}
        if say:
            say(f"  [{label}] trial {k}: inner AUC {score:.4f}, {n_trees} trees, {time.perf_counter() - t_start:.1f} s")
    assert best is not None
    return {**best, "trials": log, "stopped_by_time": stopped_by_time, "seconds": time.perf_counter() - t_start}


_SHOWN = (
    "learning_rate",
    "num_leaves",
    "min_child_samples",
    "lambda_l1",
    "lambda_l2",
    "feature_fraction",
    "bagging_fraction",
    "min_gain_to_split",
)


def bags(n_rows: int, quick: bool) -> int:
    """How many seeds each refit averages when n_rows rows are labelled: BAGS up to BAG_MAX_ROWS (not with quick),
    else 1."""
    return 1 if quick or n_rows > BAG_MAX_ROWS else BAGS


def refit(
    X: np.ndarray, y: np.ndarray, idx: np.ndarray | None, params: dict, n_trees: int, names=None, n_bags: int = 1
):
    """Train on the rows idx (all rows when None) with the tuned parameters and tree count; with n_bags > 1,
    the mean of n_bags such fits with seeds seed, seed + BAG_SEED_STEP, ... (app.model.bagging)."""
    import lightgbm as lgb

    from app.model.bagging import average_models

    params = {k: v for k, v in params.items() if k != "metric"}
    Xs, ys = (X, y) if idx is None else (X[idx], y[idx])
    feature_name = names if names is not None else "auto"

    def fit(seed: int):
        ds = lgb.Dataset(Xs, ys, feature_name=feature_name, params={"max_bin": params["max_bin"]})
        return lgb.train({**params, "seed": seed}, ds, num_boost_round=max(1, int(n_trees)))

    if n_bags <= 1:
        return fit(params["seed"])
    texts = [fit(params["seed"] + BAG_SEED_STEP * b).model_to_string() for b in range(n_bags)]
    return lgb.Booster(model_str=average_models(texts))
