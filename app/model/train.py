"""`credit train`: nested evaluation, candidates, champion by honest cost, calibration, model folder.

Procedure (every figure reported is honest: nothing that chose it saw the fold it is counted on):
1. Outer stratified k-fold. Inside each outer fold's training part, each candidate runs its whole
   procedure: the tuned LightGBM searches its parameters and tree count on an inner split
   (app/model/search.py) and is refitted on the training part (on small data, the mean of several
   seeds' fits: app/model/bagging.py); the logistic scorecard bins, weighs
   and fits (app/model/scorecard.py). The held fold only receives margins (log-odds).
2. Calibration (app/model/calibration.py): Platt or none, picked by cross-fitted log-loss.
3. Cost: the threshold is cross-fitted (chosen on the other folds, counted on the held one);
   figures are pooled out-of-fold AUC, fold mean ± std, honest cost per client, Brier, log-loss,
   ECE, beside the trivial policies (accept all, refuse all) and the logistic-regression baseline.
4. Champion: lower honest cost (ties: higher AUC). If it does not beat the cheaper trivial policy,
   training stops (TrivialPolicyWins) unless forced; the manifest records "forced".
5. Final model: the champion's procedure on all rows; the calibration map fitted on all its
   out-of-fold margins; the threshold is the cost minimiser over those calibrated out-of-fold
   probabilities (on the calibrated scale: what score() returns and credit_threshold() reports).

Writes model_dir/{model.txt, manifest.json, reference.npy, reference_scores.npy, report.html}
atomically (temp file + os.replace). No pickle anywhere.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from app import __version__
from app.errors import CreditError
from app.files import atomic_write_bytes, atomic_write_json
from app.model import calibration, report, scorecard, search
from app.model.artifacts import fingerprint_arrays, lgb_names, npy_bytes, psi_bins
from app.model.evaluation import (
    auc,
    best_threshold,
    business_cost,
    calibration_figures,
    confusion,
    cost_curve,
    cross_fitted_cost,
    fold_aucs,
    reliability,
    roc_points,
    same_cost,
    score_bands,
    trivial_policies,
)
from app.progress import say as _say
from app.scoring.bundle import Champion, Manifest, Reference, identify, manifest_dict
from app.scoring.db import connect
from app.scoring.filenames import MANIFEST, MODEL_TEXT, REFERENCE, REFERENCE_SCORES, SCORE_LINK, TRAINING_REPORT
from app.scoring.sections import Calibration, Distributed, Evaluation, Figures, Metrics, Search, Sensitive
from app.scoring.serving import refuse_direct_write

# LightGBM's OpenMP threads spin while they wait; on a shared machine (more runnable threads than cores)
# that made 2 threads ten times slower than 1 (measured here under load 11 on 2 cores: 47.8 s vs 4.4 s for
# 70 rounds on 10,800 x 416; 4.7 s with passive waiting). Read by libgomp when LightGBM is first loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["best_threshold", "business_cost", "confusion", "psi_bins", "train", "train_arrays"]

CANDIDATES = ("lightgbm", "scorecard", "blend")
# the blend's log-odds: w * the tuned LightGBM's + (1 - w) * the scorecard's, both fitted on the same rows; w is the
# point of BLEND_GRID with the best AUC on out-of-fold margins (cross-fitted for the honest figures: each fold's
# margins are blended with the w chosen on the other folds). Shipped as one LightGBM text (bagging.average_models).
BLEND_PARTS = ("lightgbm", "scorecard")
BLEND_GRID = tuple(i / 10 for i in range(11))
BASELINES = ("logistic_regression",)
REFERENCE_ROWS = 5000
SHAP_ROWS = 2000
BASELINE_ROWS = 10_000  # the logistic baseline is fitted on at most this many rows of each training part (cheap)


class TrivialPolicyWins(CreditError, ValueError):
    """The champion does not beat accepting (or refusing) everybody on honest cost."""


def default_trials(n_rows: int, quick: bool) -> int:
    """Search trials per search: about 60,000 rows' worth of trials, 1 to 8 (4 for 17,000 labelled clients;
    only the default parameters, early-stopped, at full Kaggle scale)."""
    if quick:
        return 3
    return int(max(1, min(8, round(60_000 / max(n_rows, 1)))))


# ---------------------------------------------------------------- one procedure per candidate


def _logistic_margin(X, y, tr, te, seed):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(tr) > BASELINE_ROWS:
        tr = np.sort(np.random.default_rng(seed).choice(tr, BASELINE_ROWS, replace=False))
    clean = lambda A: np.where(np.isfinite(A), A, np.nan).astype(np.float64)  # noqa: E731  +-inf -> missing
    model = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        # Newton steps on the Cholesky-factored Hessian reach the L2 optimum itself in about 6 iterations, where
        # lbfgs stopped near it after 110-140 on the demo's 10,000 x 416, for twice the CPU
        LogisticRegression(solver="newton-cholesky", tol=1e-8, max_iter=100, random_state=seed),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        model.fit(clean(X[tr]), y[tr])
        return model.decision_function(clean(X[te]))


def _procedure(kind: str, X, y, idx, cfg: dict, label: str, fixed: dict | None = None) -> tuple[Any, dict]:
    """Fit candidate `kind` on rows idx with its whole procedure; returns (margin function, details).

    fixed: {"params", "n_trees"} of LightGBM to refit without a search (the sensitive-features effect, below)."""
    n_bags = cfg["bags"]
    if kind == "lightgbm" and fixed is not None:
        booster = search.refit(X, y, idx, fixed["params"], fixed["n_trees"], cfg.get("lgb_names"), n_bags)
        return (lambda A: booster.predict(A, raw_score=True, num_threads=cfg["threads"])), {**fixed, "inner_auc": None}
    if kind == "lightgbm":
        res = search.tune(
            X,
            y,
            idx,
            seed=cfg["seed"],
            trials=cfg["trials"],
            budget_seconds=cfg["budget_per_search"],
            num_threads=cfg["threads"],
            quick=cfg["quick"],
            monotone=cfg["monotone"],
            say=cfg["say"],
            label=label,
        )
        booster = search.refit(X, y, idx, res["params"], res["n_trees"], cfg.get("lgb_names"), n_bags)
        predict = lambda A: booster.predict(A, raw_score=True, num_threads=cfg["threads"])  # noqa: E731
        return predict, {**res, "booster": booster, "bags": n_bags}
    if kind == "scorecard":
        sc = scorecard.fit(X[idx], y[idx], seed=cfg["seed"])
        return sc.margin, {"scorecard": sc}
    if kind == "blend":  # its parts, fitted on the same rows; the weight comes from their out-of-fold margins
        parts = {k: _procedure(k, X, y, idx, cfg, label, fixed)[1] for k in BLEND_PARTS}
        return None, {**parts["lightgbm"], "scorecard": parts["scorecard"]["scorecard"]}
    raise ValueError(f"unknown candidate {kind!r}")


def _model_text(kind: str, det: dict, names: list[str]) -> str:
    """The LightGBM text of a candidate fitted by _procedure (details det)."""
    if kind == "lightgbm":
        return det["booster"].model_to_string()
    if kind == "scorecard":
        return det["scorecard"].to_lightgbm_text(names)
    from app.model.bagging import average_models

    w = float(det["weight"])
    shares = [(k, s) for k, s in zip(BLEND_PARTS, (w, 1.0 - w), strict=True) if s]  # a part weighing 0 is left out
    if len(shares) == 1:
        return _model_text(shares[0][0], det, names)
    return average_models([_model_text(k, det, names) for k, _ in shares], [s for _, s in shares])


def blend_weight(y, lgb_margins, sc_margins) -> float:
    """The LightGBM share w in BLEND_GRID whose blend has the best AUC (ties: the share nearest 1/2)."""
    scores = [(auc(y, w * lgb_margins + (1 - w) * sc_margins), -abs(w - 0.5), w) for w in BLEND_GRID]
    return max(scores)[2]


def cross_fitted_blend(y, lgb_margins, sc_margins, fold_id) -> tuple[np.ndarray, list[float]]:
    """Blended out-of-fold margins, each fold's with the weight chosen on the other folds; and those weights."""
    out = np.empty(len(y), dtype=np.float64)
    weights = []
    for k in range(int(fold_id.max()) + 1):
        held = fold_id == k
        w = blend_weight(y[~held], lgb_margins[~held], sc_margins[~held])
        out[held] = w * lgb_margins[held] + (1 - w) * sc_margins[held]
        weights.append(w)
    return out, weights


def _nested_margins(kind: str, X, y, fold_id, cfg: dict, fixed: list | None = None) -> tuple[np.ndarray, dict]:
    """Out-of-fold margins of candidate `kind`; fixed[k]: fold k's LightGBM parameters and tree count (no search).
    extra["_params"] (per fold, kept out of the manifest) holds the parameters each fold used."""
    if kind == "blend":
        (m_lgb, extra), (m_sc, _) = (_nested_margins(k, X, y, fold_id, cfg, fixed) for k in BLEND_PARTS)
        margins, extra["fold_weights"] = cross_fitted_blend(y, m_lgb, m_sc, fold_id)
        return margins, extra
    from concurrent.futures import ThreadPoolExecutor

    margins = np.empty(len(y), dtype=np.float64)
    extra: dict[str, Any] = {"n_trees": [], "inner_auc": [], "seconds": 0.0, "_params": []}
    t0 = time.perf_counter()
    folds = range(int(fold_id.max()) + 1)
    workers, fold_cfg = _fold_parallelism(kind, cfg, len(folds))

    def fit_fold(k: int) -> tuple[np.ndarray, np.ndarray, dict | None]:
        tr, te = np.flatnonzero(fold_id != k), np.flatnonzero(fold_id == k)
        if kind == "logistic_regression":
            return te, _logistic_margin(X, y, tr, te, cfg["seed"]), None
        fn, det = _procedure(kind, X, y, tr, fold_cfg, f"{kind} fold {k + 1}", fixed[k] if fixed else None)
        return te, fn(X[te]), det

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{kind}-folds") as pool:
        done = list(pool.map(fit_fold, folds))  # in fold order, whichever finished first
    for k, (te, fold_margins, det) in zip(folds, done, strict=True):
        margins[te] = fold_margins
        if det is None:
            continue
        if kind == "lightgbm":
            extra["n_trees"].append(det["n_trees"])
            extra["inner_auc"].append(det["inner_auc"])
            extra["_params"].append({"params": det["params"], "n_trees": det["n_trees"]})
        cfg["say"](f"  [{kind}] fold {k + 1}: held-out AUC {auc(y[te], margins[te]):.4f}")
    extra["seconds"] = round(time.perf_counter() - t0, 2)
    return margins, extra


def _fold_parallelism(kind: str, cfg: dict, n_folds: int) -> tuple[int, dict]:
    """(outer folds fitted at once, the settings each fold's fit gets). The threads are shared out among folds
    rather than given to one fit at a time: at a fold's size LightGBM gains little from a second thread (1.2x on
    the demo's 13,600 x 416) and two folds at once nearly twice. The logistic baseline's folds stay one at a time
    (it runs in its own thread beside the candidates, its algebra already threaded)."""
    if kind == "logistic_regression" or int(cfg["threads"]) < 2 or n_folds < 2:
        return 1, cfg
    threads = int(cfg["threads"])
    workers = min(n_folds, threads)
    return workers, {**cfg, "threads": max(1, threads // workers)}


def honest_figures(y, margins, fold_id, fn_cost: float, fp_cost: float) -> tuple[dict, np.ndarray]:
    """Figures of out-of-fold margins: AUC, calibration choice, cross-fitted cost; + honest probabilities."""
    cal, p_honest, _losses = calibration.choose(margins, y, fold_id)
    # The cost is cross-fitted on the margins: a strictly increasing calibration fitted on the other folds
    # moves a threshold chosen on the other folds and the held fold's scores together, so the decisions are
    # the same, and no calibration map fitted with the held fold's labels is involved.
    cf = cross_fitted_cost(y, margins, fold_id, fn_cost, fp_cost)
    aucs = fold_aucs(y, margins, fold_id)
    figures = {
        "oof_auc": auc(y, margins),
        "auc_mean": float(np.mean(aucs)),
        "auc_std": float(np.std(aucs)),
        "auc_folds": aucs,
        "cost_per_client": cf["cost_per_client"],
        "fold_margin_thresholds": cf["fold_thresholds"],
        "fold_costs": cf["fold_costs"],
        "confusion": cf["confusion"],
        "calibration": cal,
        "uncalibrated": calibration_figures(y, calibration.sigmoid(margins)),
        "calibrated": calibration_figures(y, p_honest),
        "_client_costs": cf["client_costs"],
    }
    return figures, p_honest


def _champion(candidates: dict[str, dict], trivial_cost: float = float("inf")) -> tuple[str, str]:
    """Lowest honest cost; a candidate whose per-client costs are within two paired standard errors of the
    cheapest's (same clients) ties with it, and among tied candidates that beat the trivial policy the
    higher out-of-fold AUC wins (a cost difference that small is noise; the ranking is the steadier figure)."""
    order = {k: i for i, k in enumerate(CANDIDATES)}  # exact ties: the simpler candidate
    ranked = sorted(
        candidates, key=lambda k: (candidates[k]["cost_per_client"], -candidates[k]["oof_auc"], order.get(k, 9))
    )
    best = ranked[0]
    tied = []
    for k in ranked[1:]:
        a, b = candidates[best].get("_client_costs"), candidates[k].get("_client_costs")
        if a is None or b is None or candidates[k]["cost_per_client"] >= trivial_cost:
            continue
        indistinct, diff, se = same_cost(a, b)
        if indistinct and candidates[k]["oof_auc"] > candidates[best]["oof_auc"]:
            tied.append((candidates[k]["oof_auc"], k, diff, se))
    if tied:
        auc_k, k, diff, se = max(tied)
        return k, (
            f"honest cost per client {candidates[k]['cost_per_client']:.4f} ties with {best}'s "
            f"{candidates[best]['cost_per_client']:.4f} (paired difference {diff:+.4f} ± {se:.4f}, within two "
            f"standard errors) and its out-of-fold AUC is higher ({auc_k:.4f} vs {candidates[best]['oof_auc']:.4f})"
        )
    why = f"lowest honest cost per client ({candidates[best]['cost_per_client']:.4f})"
    if len(ranked) > 1:
        other = candidates[ranked[1]]
        if other["cost_per_client"] == candidates[best]["cost_per_client"]:
            why = f"same honest cost as {ranked[1]}, higher out-of-fold AUC"
        else:
            why += f" vs {ranked[1]} {other['cost_per_client']:.4f}"
    return best, why


# ---------------------------------------------------------------- training


@dataclass
class _Plan:
    """What the evaluation and the final fit share, decided once from the inputs."""

    X: np.ndarray  # the features as given (the reference rows come from here)
    X_fit: np.ndarray  # ... with the sensitive features masked when they are excluded
    X_other: np.ndarray  # ... with the other choice (the sensitive-features effect)
    y: np.ndarray
    names: list[str]
    fold_id: np.ndarray
    cfg: dict[str, Any]
    sens: dict[str, Any]
    n_trials: int
    threads: int

    @property
    def say(self) -> Callable[[str], None]:
        return self.cfg["say"]


@dataclass
class _Evaluation:
    """Every candidate's and baseline's honest figures, out-of-fold margins and honest probabilities."""

    results: dict[str, dict]
    oof: dict[str, np.ndarray]
    honest_p: dict[str, np.ndarray]


@dataclass
class _Choice:
    champ: str
    why: str
    trivial: dict[str, float]
    beats: bool


@dataclass
class _Final:
    """The champion's procedure on all rows: the shipped model and the decision around it."""

    det: dict[str, Any]
    model_text: bytes
    booster: Any  # lightgbm.Booster of model_text
    cal: dict[str, Any]
    threshold: float
    p_oof: np.ndarray  # calibrated out-of-fold probabilities of the champion
    distributed: dict[str, Any] | None


def train_arrays(
    X: np.ndarray,
    y: np.ndarray,
    names: list[str],
    model_dir: Path | str,
    *,
    fn_cost: float = 10.0,
    fp_cost: float = 1.0,
    seed: int = 42,
    folds: int = 5,
    quick: bool = False,
    progress: bool | Callable[[str], None] = True,
    data_fingerprint: str | None = None,
    data_source: str | None = None,
    schema_fingerprint: str | None = None,
    sensitive: dict[str, np.ndarray] | None = None,
    num_threads: int | None = None,
    trials: int | None = None,
    budget_seconds: float | None = None,
    candidates: tuple[str, ...] = CANDIDATES,
    monotone: dict[str, int] | None = None,
    force: bool = False,
    sensitive_attributes: tuple[str, ...] | None = None,
    exclude_sensitive: bool | None = None,
    final_fit: Callable[[str, dict, dict, float], tuple[dict, dict]] | None = None,
) -> dict:
    """Nested evaluation of the candidates, champion, calibration, final fit; writes the model folder.

    final_fit(champion, details, calibration, threshold) -> (details, record): replaces the final fit (a fit on
    a cluster, app/model/distributed.py); its record becomes the manifest's `distributed` section.

    sensitive_attributes / exclude_sensitive (default: CREDIT_SENSITIVE / CREDIT_EXCLUDE_SENSITIVE): the
    model features derived from the attributes (app.monitoring.fairness.derived_features) are kept out of
    the model when excluded; the layout of the feature vector does not change (the library, SQL and API
    read the same vectors), the excluded columns are missing for every training row, so no split or
    coefficient uses them. Both choices are evaluated for the champion on the same folds (`sensitive` in
    the manifest)."""
    t_start = time.perf_counter()
    model_dir = Path(model_dir)
    refuse_direct_write(model_dir, "credit train")  # before minutes of training, not after
    X, y, names = _checked_inputs(X, y, names, folds=folds, fn_cost=fn_cost, fp_cost=fp_cost, candidates=candidates)
    plan = _plan(
        X,
        y,
        names,
        seed=seed,
        folds=folds,
        quick=quick,
        say=lambda m: _say(progress, m),
        num_threads=num_threads,
        trials=trials,
        budget_seconds=budget_seconds,
        monotone=monotone,
        sensitive_attributes=sensitive_attributes,
        exclude_sensitive=exclude_sensitive,
    )
    ev = _evaluate_candidates(plan, candidates, fn_cost, fp_cost)
    choice = _choose_champion(ev, candidates, y, fn_cost=fn_cost, fp_cost=fp_cost, force=force, say=plan.say)
    sensitive_record = _sensitive_effect(
        plan.sens, choice.champ, ev.results[choice.champ], plan.X_other, y, plan.fold_id, plan.cfg, fn_cost, fp_cost
    )
    final = _fit_final(plan, ev, choice.champ, fn_cost=fn_cost, fp_cost=fp_cost, final_fit=final_fit)
    reference, ref_scores, importance = _reference(X, names, final, seed)
    manifest = _build_manifest(
        plan,
        ev,
        choice,
        final,
        reference=reference,
        ref_scores=ref_scores,
        importance=importance,
        sensitive_record=sensitive_record,
        fn_cost=fn_cost,
        fp_cost=fp_cost,
        seed=seed,
        folds=folds,
        force=force,
        candidates=candidates,
        budget_seconds=budget_seconds,
        monotone=monotone,
        sources={"data_fingerprint": data_fingerprint, "data_source": data_source},
        schema_fingerprint=schema_fingerprint,
        seconds=time.perf_counter() - t_start,
    )
    written = manifest_dict(manifest)
    model_id = identify(written, final.model_text)
    _write_folder(model_dir, written, final, reference, ref_scores, y=y, sensitive=sensitive)
    plan.say(
        f"model {model_id[:12]} ({choice.champ}, calibration {final.cal['method']}): threshold {final.threshold:.4f}, "
        f"honest cost/client {manifest.metrics.cost_per_client:.4f}, written to {model_dir} in "
        f"{time.perf_counter() - t_start:.1f} s"
    )
    return written


def _checked_inputs(
    X, y, names, *, folds: int, fn_cost: float, fp_cost: float, candidates: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """X as contiguous float32, y as 0/1 int32, names as str; ValueError naming what does not agree."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.asarray(y).astype(np.int32)
    names = [str(n) for n in names]
    if X.ndim != 2 or X.shape[0] != len(y) or X.shape[1] != len(names):
        raise ValueError(f"X {X.shape}, y {y.shape} and {len(names)} names do not agree")
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError("y must be 0/1")
    n_pos = int(y.sum())
    if n_pos < folds or len(y) - n_pos < folds:
        raise ValueError(f"need at least {folds} clients of each class, got {n_pos} defaults of {len(y)}")
    if fn_cost < 0 or fp_cost < 0:
        raise ValueError("costs must be >= 0")
    unknown = [k for k in candidates if k not in CANDIDATES]
    if unknown or not candidates:
        raise ValueError(f"candidates must be among {', '.join(CANDIDATES)}, got {', '.join(candidates) or 'none'}")
    return X, y, names


def _plan(
    X: np.ndarray,
    y: np.ndarray,
    names: list[str],
    *,
    seed: int,
    folds: int,
    quick: bool,
    say: Callable[[str], None],
    num_threads: int | None,
    trials: int | None,
    budget_seconds: float | None,
    monotone: dict[str, int] | None,
    sensitive_attributes: tuple[str, ...] | None,
    exclude_sensitive: bool | None,
) -> _Plan:
    """The outer folds, the search settings and the sensitive-feature choice; says what the run will do."""
    from sklearn.model_selection import StratifiedKFold

    mono = _monotone_vector(monotone, names)
    sens = _sensitive_choice(names, sensitive_attributes, exclude_sensitive)
    X_other = _masked(X, sens["columns"]) if not sens["excluded"] and sens["columns"] else X
    X_fit = _masked(X, sens["columns"]) if sens["excluded"] and sens["columns"] else X
    threads = int(num_threads or os.cpu_count() or 1)
    n_trials = int(trials) if trials is not None else default_trials(len(y), quick)
    cfg = {
        "seed": seed,
        "trials": n_trials,
        "budget_per_search": None if budget_seconds is None else budget_seconds / (folds + 1),
        "threads": threads,
        "quick": quick,
        "monotone": mono,
        "say": say,
        "lgb_names": lgb_names(names),
        # decided once from all labelled rows, so each outer fold's refit and the final one follow the same procedure
        "bags": search.bags(len(y), quick),
    }
    fold_id = np.empty(len(y), dtype=np.int32)
    for k, (_tr, te) in enumerate(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(X, y)):
        fold_id[te] = k
    n_pos = int(y.sum())
    verb = "excluded" if sens["excluded"] else "used"
    say(
        f"train: {len(y)} labelled clients, {X.shape[1]} features, {n_pos} defaults ({n_pos / len(y):.1%}); "
        f"{folds} outer folds, {n_trials} search trials per search, {threads} threads; sensitive features "
        + (f"{verb}: {', '.join(sens['features'])}" if sens["features"] else "none")
    )
    return _Plan(X, X_fit, X_other, y, names, fold_id, cfg, sens, n_trials, threads)


def _evaluate_candidates(plan: _Plan, candidates: tuple[str, ...], fn_cost: float, fp_cost: float) -> _Evaluation:
    """Each candidate (and the blend's parts, and the baselines) through the nested evaluation, in a fixed order."""
    from concurrent.futures import ThreadPoolExecutor

    y, fold_id = plan.y, plan.fold_id
    ev = _Evaluation({}, {}, {})
    fitted = [k for k in CANDIDATES if k in candidates or ("blend" in candidates and k in BLEND_PARTS)]
    # the baselines need nothing from the candidates: fitted in a thread beside them (BLAS and LightGBM release
    # the GIL), their figures reported in the same order as before
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="baselines") as pool:
        pending = {k: pool.submit(_nested_margins, k, plan.X_fit, y, fold_id, plan.cfg) for k in BASELINES}
        for kind in (*fitted, *BASELINES):
            _evaluate_one(plan, ev, kind, pending.get(kind), fn_cost, fp_cost)
    return ev


def _evaluate_one(plan: _Plan, ev: _Evaluation, kind: str, pending, fn_cost: float, fp_cost: float) -> None:
    """One candidate's (or baseline's) out-of-fold margins and honest figures, recorded in ev; `pending` is the
    future of its margins when they are already being computed."""
    y, fold_id = plan.y, plan.fold_id
    if kind == "blend":  # the same folds' fits as its parts: their out-of-fold margins, blended
        margins, fold_weights = cross_fitted_blend(y, ev.oof["lightgbm"], ev.oof["scorecard"], fold_id)
        extra = {
            **_search_details(ev.results["lightgbm"]),
            "seconds": sum(ev.results[k]["seconds"] for k in BLEND_PARTS),
            "fold_weights": fold_weights,
            "weight": blend_weight(y, ev.oof["lightgbm"], ev.oof["scorecard"]),
        }
    elif pending is not None:
        margins, extra = pending.result()
    else:
        margins, extra = _nested_margins(kind, plan.X_fit, y, fold_id, plan.cfg)
    figures, p_h = honest_figures(y, margins, fold_id, fn_cost, fp_cost)
    figures.update(extra)
    ev.results[kind], ev.oof[kind], ev.honest_p[kind] = figures, margins, p_h
    plan.say(report.line(kind, figures))


def _choose_champion(
    ev: _Evaluation,
    candidates: tuple[str, ...],
    y: np.ndarray,
    *,
    fn_cost: float,
    fp_cost: float,
    force: bool,
    say: Callable[[str], None],
) -> _Choice:
    """The champion among the candidates; TrivialPolicyWins when it does not beat the cheaper trivial policy
    (unless forced: then a warning, and the manifest records it)."""
    trivial = trivial_policies(y, fn_cost, fp_cost)
    champ, why = _champion({k: ev.results[k] for k in candidates}, min(trivial.values()))
    best_trivial = min(trivial, key=lambda k: (trivial[k], k))
    beats = ev.results[champ]["cost_per_client"] < trivial[best_trivial]
    if not beats:
        msg = (
            f"the champion ({champ}) does not beat the trivial policy honestly: cost per client "
            f"{ev.results[champ]['cost_per_client']:.4f} vs {trivial[best_trivial]:.4f} for "
            f"{best_trivial.replace('_', ' ')}"
        )
        if not force:
            raise TrivialPolicyWins(msg + "; nothing written (use --force to write this model anyway)")
        say("WARNING: " + msg + " (forced)")
    return _Choice(champ, why, trivial, bool(beats))


def _fit_final(
    plan: _Plan,
    ev: _Evaluation,
    champ: str,
    *,
    fn_cost: float,
    fp_cost: float,
    final_fit: Callable[[str, dict, dict, float], tuple[dict, dict]] | None,
) -> _Final:
    """The champion's procedure on all rows (or `final_fit`'s), its calibration and cost-minimising threshold."""
    import lightgbm as lgb

    t0 = time.perf_counter()
    y = plan.y
    cal = ev.results[champ]["calibration"]  # fitted on all the champion's out-of-fold margins (calibration.choose)
    p_oof = calibration.apply(ev.oof[champ], cal)
    threshold, _ = best_threshold(y, p_oof, fn_cost, fp_cost)
    _fn, det = _procedure(champ, plan.X_fit, y, np.arange(len(y)), plan.cfg, f"{champ} final")
    if champ == "blend":
        det["weight"] = ev.results["blend"]["weight"]
    distributed = None
    if final_fit is not None:
        det, distributed = final_fit(champ, det, cal, threshold)
    model_text = _model_text(champ, det, plan.names).encode("utf-8")
    booster = lgb.Booster(model_str=model_text.decode("utf-8"))
    n_final = distributed["final_rows"] if distributed else len(y)
    plan.say(
        f"final {champ} on all {n_final} clients: {booster.num_trees()} trees"
        f"{_trees_told(champ, det, booster.num_trees())}, {time.perf_counter() - t0:.1f} s"
    )
    return _Final(det, model_text, booster, cal, threshold, p_oof, distributed)


def _trees_told(champ: str, det: dict, n_trees: int) -> str:
    """How the final model's trees are made up, for the progress line (bagged seeds, the blend's two parts)."""
    bagged = f" (the mean of {det['bags']} seeds' {det['n_trees']} trees)" if det.get("bags", 1) > 1 else ""
    if champ != "blend":
        return bagged
    lgb_trees = det["n_trees"] * det["bags"] if det["weight"] else 0
    w = det["weight"]
    return f": the LightGBM's {lgb_trees}{bagged} × {w:g} and the scorecard's {n_trees - lgb_trees} × {1 - w:g}"


def _final_params(champ: str, det: dict) -> dict[str, Any]:
    """The manifest's `params`: the shipped model's parameters (LightGBM's, the scorecard's, or the blend's)."""
    params: dict[str, Any] = {}
    if champ in ("lightgbm", "blend"):
        params = {
            **{k: v for k, v in det["params"].items() if k != "metric"},
            "num_boost_round": det["n_trees"],
            "bags": det["bags"],
        }
    if champ == "scorecard":
        params = {"kind": "scorecard", **det["scorecard"].info}
    if champ == "blend":
        params = {**params, "kind": "blend", "lightgbm_weight": det["weight"], "scorecard": det["scorecard"].info}
    return params


def _reference(
    X: np.ndarray, names: list[str], final: _Final, seed: int
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, float]]]:
    """The drift reference rows (a seeded sample of the training rows), their scores, and the global importance
    (mean |SHAP| on the probability's log-odds scale, largest first)."""
    rng = np.random.default_rng(seed)
    ref_idx = np.sort(rng.choice(len(X), size=min(REFERENCE_ROWS, len(X)), replace=False))
    reference = X[ref_idx]
    booster, cal = final.booster, final.cal
    ref_scores = calibration.apply(booster.predict(reference, raw_score=True), cal)
    contrib = booster.predict(reference[: min(SHAP_ROWS, len(reference))], pred_contrib=True)[:, : len(names)]
    mean_abs = np.abs(contrib).mean(axis=0) * float(cal["a"])
    importance = sorted(zip(names, (float(v) for v in mean_abs), strict=True), key=lambda t: (-t[1], t[0]))
    return reference, ref_scores, importance


def _metrics(fig: dict, *, n_trees: int, y: np.ndarray, folds: int) -> dict[str, Any]:
    """The manifest's `metrics`: the champion's honest figures."""
    return {
        **{k: fig[k] for k in ("oof_auc", "auc_mean", "auc_std", "auc_folds", "cost_per_client", "confusion")},
        "brier": fig["calibrated"]["brier"],
        "log_loss": fig["calibrated"]["log_loss"],
        "ece": fig["calibrated"]["ece"],
        "honest": True,
        "n_estimators": int(n_trees),
        "n_train": len(y),
        "positives": int(y.sum()),
        "folds": folds,
    }


def _evaluation_section(
    ev: _Evaluation, choice: _Choice, final: _Final, y: np.ndarray, *, fn_cost: float, fp_cost: float, folds: int
) -> dict[str, Any]:
    """The manifest's `evaluation`: the procedure, the trivial policies, ROC, reliability, cost curve, bands."""
    champ, p_oof = choice.champ, final.p_oof
    return {
        "procedure": "nested cross-validation: search, early stopping and calibration fitted inside each outer "
        "fold's training part; threshold cross-fitted",
        "folds": folds,
        "trivial": choice.trivial,
        "beats_trivial": choice.beats,
        "roc": roc_points(y, ev.oof[champ]),
        "reliability": {
            "uncalibrated": reliability(y, calibration.sigmoid(ev.oof[champ])),
            "calibrated": reliability(y, ev.honest_p[champ]),
        },
        "cost_curve": cost_curve(y, p_oof, fn_cost, fp_cost),
        "chosen": {
            "threshold": final.threshold,
            "cost_per_client": business_cost(y, p_oof, final.threshold, fn_cost, fp_cost) / len(y),
        },
        "score_bands": score_bands(y, p_oof),
    }


def _build_manifest(
    plan: _Plan,
    ev: _Evaluation,
    choice: _Choice,
    final: _Final,
    *,
    reference: np.ndarray,
    ref_scores: np.ndarray,
    importance: list[tuple[str, float]],
    sensitive_record: dict[str, Any],
    fn_cost: float,
    fp_cost: float,
    seed: int,
    folds: int,
    force: bool,
    candidates: tuple[str, ...],
    budget_seconds: float | None,
    monotone: dict[str, int] | None,
    sources: dict[str, str | None],
    schema_fingerprint: str | None,
    seconds: float,
) -> Manifest:
    """The typed manifest of the trained model; its id is set when it is written (identify, last)."""
    import lightgbm as lgb
    import sklearn

    champ, names, y, cal, det = choice.champ, plan.names, plan.y, final.cal, final.det
    evaluation = _evaluation_section(ev, choice, final, y, fn_cost=fn_cost, fp_cost=fp_cost, folds=folds)
    evaluation["seconds"] = round(seconds, 1)
    return Manifest(
        model_id="",  # set by identify(), once everything that decides is in the manifest
        app_version=__version__,
        features=names,
        n_features=len(names),
        threshold=final.threshold,
        costs={"fn": float(fn_cost), "fp": float(fp_cost)},
        calibration=msgspec.convert({k: cal[k] for k in ("method", "a", "b", "honest_log_loss")}, Calibration),
        champion=Champion(kind=champ, why=choice.why, forced=bool(force and not choice.beats)),
        candidates={k: msgspec.convert(_public(ev.results[k]), Figures) for k in candidates},
        metrics=msgspec.convert(
            _metrics(ev.results[champ], n_trees=final.booster.num_trees(), y=y, folds=folds), Metrics
        ),
        baselines={k: msgspec.convert(_public(ev.results[k]), Figures) for k in BASELINES},
        sensitive=msgspec.convert(sensitive_record, Sensitive),
        evaluation=msgspec.convert(evaluation, Evaluation),
        search=Search(
            trials_per_search=plan.n_trials,
            bags=plan.cfg["bags"],
            budget_seconds=budget_seconds,
            threads=plan.threads,
            monotone={n: v for n, v in (monotone or {}).items() if v},
            final_trials=det.get("trials", []),
            stopped_by_time=bool(det.get("stopped_by_time", False)),
        ),
        trained_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        data_fingerprint=sources["data_fingerprint"] or fingerprint_arrays(plan.X, names),
        data_source=sources["data_source"],
        schema_fingerprint=schema_fingerprint,
        versions={
            "lightgbm": lgb.__version__,
            "numpy": np.__version__,
            "sklearn": sklearn.__version__,
            "app": __version__,
            "python": platform.python_version(),
        },
        params={**_final_params(champ, det), "seed": seed},
        reference=Reference(
            file=REFERENCE,
            rows=len(reference),
            scores_file=REFERENCE_SCORES,
            bins={name: psi_bins(reference[:, j]) for j, name in enumerate(names)},
            score_bins=psi_bins(ref_scores),
        ),
        global_importance=importance,
        distributed=None if final.distributed is None else msgspec.convert(final.distributed, Distributed),
    )


def _write_folder(
    model_dir: Path,
    manifest: dict[str, Any],
    final: _Final,
    reference: np.ndarray,
    ref_scores: np.ndarray,
    *,
    y: np.ndarray,
    sensitive: dict[str, np.ndarray] | None,
) -> None:
    """The model folder, each file written atomically; the model card; the stale library link removed."""
    model_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(model_dir / REFERENCE, npy_bytes(reference))
    atomic_write_bytes(model_dir / REFERENCE_SCORES, npy_bytes(ref_scores))
    atomic_write_bytes(model_dir / MODEL_TEXT, final.model_text)
    atomic_write_json(model_dir / MANIFEST, manifest)
    atomic_write_bytes(model_dir / TRAINING_REPORT, report.html(manifest).encode("utf-8"))
    # the model card and training-time fairness, on the honest out-of-fold probabilities (app.model.card)
    from app.model import card

    card.write_at_training(model_dir, manifest, y=y, oof=final.p_oof, sensitive=sensitive)
    # score.so would still point at the previous model's library: drop it until `credit compile`
    with contextlib.suppress(FileNotFoundError):
        (model_dir / SCORE_LINK).unlink()


def _search_details(fig: dict) -> dict:
    """The per-fold search details of a candidate's figures (n_trees, inner AUC, parameters)."""
    return {k: fig[k] for k in ("n_trees", "inner_auc", "_params") if k in fig}


def _public(fig: dict) -> dict:
    """A candidate's figures for the manifest (JSON only)."""
    out = {k: v for k, v in fig.items() if k != "calibration" and not k.startswith("_")}
    out["calibration"] = fig["calibration"]["method"]
    out["honest_log_loss"] = fig["calibration"]["honest_log_loss"]
    return out


def _sensitive_choice(names: list[str], attributes: tuple[str, ...] | None, exclude: bool | None) -> dict:
    """Which features derive from the sensitive attributes, and whether they are kept out of the model."""
    from app.scoring.fairness import derived_features, parse_attributes

    if attributes is None or exclude is None:  # the documented defaults; the CLI hands in the settings
        from app.config import Settings

        settings = Settings()
        attributes = parse_attributes(settings.sensitive) if attributes is None else attributes
        exclude = settings.exclude_sensitive if exclude is None else exclude
    derived = derived_features(names, tuple(attributes))
    feats = [n for n in names if any(n in v for v in derived.values())]
    return {
        "attributes": list(attributes),
        "derived": derived,
        "features": feats,
        "columns": [names.index(n) for n in feats],
        "excluded": bool(exclude),
    }


def _masked(X: np.ndarray, columns: list[int]) -> np.ndarray:
    """A copy of X with the columns missing for every row (a constant column: no tree splits on it, the
    scorecard's binning drops it, the logistic baseline's imputer makes it a constant)."""
    out = X.copy()
    out[:, columns] = np.nan
    return out


def _sensitive_effect(sens: dict, champ: str, fig: dict, X_other, y, fold_id, cfg: dict, fn_cost, fp_cost) -> dict:
    """The manifest's `sensitive` record: the choice and its effect on the champion's honest AUC and cost.

    The other choice refits the champion on the same outer folds with, in each fold, the parameters and
    tree count the search chose for that fold (no new search: one fit per fold, cheap at full scale); with
    them the configured choice's figures are exactly the ones reported, so the two rows differ only by the
    features (a scorecard champion is simply refitted: it has no search)."""
    record: dict[str, Any] = {
        "attributes": sens["attributes"],
        "excluded": sens["excluded"] and bool(sens["features"]),
        "features": sens["derived"],
    }
    if not sens["features"]:
        record["effect"] = None
        return record
    cfg["say"](f"sensitive features: the champion ({champ}) {'with' if sens['excluded'] else 'without'} them")
    margins, _extra = _nested_margins(champ, X_other, y, fold_id, cfg, fixed=fig.get("_params") or None)
    other, _ = honest_figures(y, margins, fold_id, fn_cost, fp_cost)
    keys = ("oof_auc", "auc_mean", "auc_std", "cost_per_client")
    this = {k: fig[k] for k in keys}
    that = {k: other[k] for k in keys}
    record["effect"] = {
        "with": that if sens["excluded"] else this,
        "without": this if sens["excluded"] else that,
        "candidate": champ,
        "procedure": "same outer folds; each fold's parameters and tree count as chosen for the configured choice",
    }
    return record


def _monotone_vector(monotone: dict[str, int] | None, names: list[str]) -> list[int] | None:
    if not monotone:
        return None
    unknown = sorted(set(monotone) - set(names))
    if unknown:
        raise ValueError(f"monotone constraint on unknown feature(s): {', '.join(unknown[:5])}")
    bad = {k: v for k, v in monotone.items() if v not in (-1, 0, 1)}
    if bad:
        raise ValueError(f"monotone constraints must be -1, 0 or +1: {bad}")
    return [int(monotone.get(n, 0)) for n in names]


def train(
    db_path: Path | str,
    model_dir: Path | str,
    *,
    progress: bool | Callable[[str], None] = True,
    sensitive_attributes: str | None = None,
    **kwargs: Any,
) -> dict:
    """Train from the database's labelled clients (app.data.features.load_matrix); kwargs as train_arrays.
    `sensitive_attributes`: the setting CREDIT_SENSITIVE (the model card's fairness; None: its default)."""
    from app.data.features import load_matrix
    from app.model.card import sensitive_for_training
    from app.scoring.db import read_meta
    from app.scoring.fairness import parse_attributes

    db_path = Path(db_path)
    refuse_direct_write(model_dir, "credit train")
    if not db_path.is_file():
        raise FileNotFoundError(f"{db_path}: database not found; run `credit ingest` first")
    conn = connect(db_path, readonly=True)
    try:
        t0 = time.perf_counter()
        ids, X, y, names = load_matrix(conn, labelled_only=True)
        meta = read_meta(conn)
        sensitive = sensitive_for_training(conn, ids, sensitive_attributes)
    finally:
        conn.close()
    _say(progress, f"loaded {X.shape[0]} x {X.shape[1]} features from {db_path} in {time.perf_counter() - t0:.1f} s")
    if y is None:
        raise ValueError(f"{db_path}: no labels")
    return train_arrays(
        X,
        y,
        names,
        model_dir,
        progress=progress,
        data_fingerprint=meta.get("data_fingerprint"),
        data_source=meta.get("source"),
        schema_fingerprint=meta.get("schema_fingerprint"),
        sensitive=sensitive,
        sensitive_attributes=None if sensitive_attributes is None else parse_attributes(sensitive_attributes),
        **kwargs,
    )
