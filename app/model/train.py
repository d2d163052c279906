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
from pathlib import Path
from typing import Any

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
from app.scoring.bundle import MANIFEST, identify
from app.scoring.db import connect
from app.scoring.filenames import SCORE_LINK
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
        LogisticRegression(max_iter=300, random_state=seed),
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
    margins = np.empty(len(y), dtype=np.float64)
    extra: dict[str, Any] = {"n_trees": [], "inner_auc": [], "seconds": 0.0, "_params": []}
    t0 = time.perf_counter()
    for k in range(int(fold_id.max()) + 1):
        tr, te = np.flatnonzero(fold_id != k), np.flatnonzero(fold_id == k)
        if kind == "logistic_regression":
            margins[te] = _logistic_margin(X, y, tr, te, cfg["seed"])
            continue
        fn, det = _procedure(kind, X, y, tr, cfg, f"{kind} fold {k + 1}", fixed[k] if fixed else None)
        margins[te] = fn(X[te])
        if kind == "lightgbm":
            extra["n_trees"].append(det["n_trees"])
            extra["inner_auc"].append(det["inner_auc"])
            extra["_params"].append({"params": det["params"], "n_trees": det["n_trees"]})
        cfg["say"](f"  [{kind}] fold {k + 1}: held-out AUC {auc(y[te], margins[te]):.4f}")
    extra["seconds"] = round(time.perf_counter() - t0, 2)
    return margins, extra


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
    import lightgbm as lgb
    import sklearn
    from sklearn.model_selection import StratifiedKFold

    t_start = time.perf_counter()
    model_dir = Path(model_dir)
    refuse_direct_write(model_dir, "credit train")  # before minutes of training, not after
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
    mono = _monotone_vector(monotone, names)
    sens = _sensitive_choice(names, sensitive_attributes, exclude_sensitive)
    X_other = _masked(X, sens["columns"]) if not sens["excluded"] and sens["columns"] else X
    X_fit = _masked(X, sens["columns"]) if sens["excluded"] and sens["columns"] else X
    threads = int(num_threads or os.cpu_count() or 1)
    n_trials = int(trials) if trials is not None else default_trials(len(y), quick)
    say = lambda m: _say(progress, m)  # noqa: E731
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
    verb = "excluded" if sens["excluded"] else "used"
    say(
        f"train: {len(y)} labelled clients, {X.shape[1]} features, {n_pos} defaults ({n_pos / len(y):.1%}); "
        f"{folds} outer folds, {n_trials} search trials per search, {threads} threads; sensitive features "
        + (f"{verb}: {', '.join(sens['features'])}" if sens["features"] else "none")
    )

    results: dict[str, dict] = {}
    oof: dict[str, np.ndarray] = {}
    honest_p: dict[str, np.ndarray] = {}
    fitted = [k for k in CANDIDATES if k in candidates or ("blend" in candidates and k in BLEND_PARTS)]
    for kind in (*fitted, *BASELINES):
        if kind == "blend":  # the same folds' fits as its parts: their out-of-fold margins, blended
            margins, fold_weights = cross_fitted_blend(y, oof["lightgbm"], oof["scorecard"], fold_id)
            extra = {
                **_search_details(results["lightgbm"]),
                "seconds": sum(results[k]["seconds"] for k in BLEND_PARTS),
                "fold_weights": fold_weights,
                "weight": blend_weight(y, oof["lightgbm"], oof["scorecard"]),
            }
        else:
            margins, extra = _nested_margins(kind, X_fit, y, fold_id, cfg)
        figures, p_h = honest_figures(y, margins, fold_id, fn_cost, fp_cost)
        figures.update(extra)
        results[kind], oof[kind], honest_p[kind] = figures, margins, p_h
        say(report.line(kind, figures))
    trivial = trivial_policies(y, fn_cost, fp_cost)
    champ, why = _champion({k: results[k] for k in candidates}, min(trivial.values()))
    best_trivial = min(trivial, key=lambda k: (trivial[k], k))
    beats = results[champ]["cost_per_client"] < trivial[best_trivial]
    if not beats:
        msg = (
            f"the champion ({champ}) does not beat the trivial policy honestly: cost per client "
            f"{results[champ]['cost_per_client']:.4f} vs {trivial[best_trivial]:.4f} for "
            f"{best_trivial.replace('_', ' ')}"
        )
        if not force:
            raise TrivialPolicyWins(msg + "; nothing written (use --force to write this model anyway)")
        say("WARNING: " + msg + " (forced)")

    sensitive_record = _sensitive_effect(sens, champ, results[champ], X_other, y, fold_id, cfg, fn_cost, fp_cost)

    # ------------------------------------------------------------ final model: the champion's procedure on all rows
    t0 = time.perf_counter()
    cal = results[champ]["calibration"]  # fitted on all the champion's out-of-fold margins (calibration.choose)
    p_oof = calibration.apply(oof[champ], cal)
    threshold, _ = best_threshold(y, p_oof, fn_cost, fp_cost)
    everyone = np.arange(len(y))
    _fn, det = _procedure(champ, X_fit, y, everyone, cfg, f"{champ} final")
    if champ == "blend":
        det["weight"] = results["blend"]["weight"]
    distributed = None
    if final_fit is not None:
        det, distributed = final_fit(champ, det, cal, threshold)
    model_text = _model_text(champ, det, names).encode("utf-8")
    booster = lgb.Booster(model_str=model_text.decode("utf-8"))
    n_trees = booster.num_trees()
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
    bagged = f" (the mean of {det['bags']} seeds' {det['n_trees']} trees)" if det.get("bags", 1) > 1 else ""
    if champ == "blend":
        lgb_trees = det["n_trees"] * det["bags"] if det["weight"] else 0
        w = det["weight"]
        bagged = f": the LightGBM's {lgb_trees}{bagged} × {w:g} and the scorecard's {n_trees - lgb_trees} × {1 - w:g}"
    n_final = distributed["final_rows"] if distributed else len(y)
    say(f"final {champ} on all {n_final} clients: {n_trees} trees{bagged}, {time.perf_counter() - t0:.1f} s")

    rng = np.random.default_rng(seed)
    ref_idx = np.sort(rng.choice(len(y), size=min(REFERENCE_ROWS, len(y)), replace=False))
    reference = X[ref_idx]
    ref_scores = calibration.apply(booster.predict(reference, raw_score=True), cal)
    contrib = booster.predict(reference[: min(SHAP_ROWS, len(reference))], pred_contrib=True)[:, : len(names)]
    mean_abs = np.abs(contrib).mean(axis=0) * float(cal["a"])
    importance = sorted(zip(names, (float(v) for v in mean_abs), strict=True), key=lambda t: (-t[1], t[0]))

    champ_fig = results[champ]
    metrics = {
        **{k: champ_fig[k] for k in ("oof_auc", "auc_mean", "auc_std", "auc_folds", "cost_per_client", "confusion")},
        "brier": champ_fig["calibrated"]["brier"],
        "log_loss": champ_fig["calibrated"]["log_loss"],
        "ece": champ_fig["calibrated"]["ece"],
        "honest": True,
        "n_estimators": int(n_trees),
        "n_train": len(y),
        "positives": n_pos,
        "folds": folds,
    }
    evaluation = {
        "procedure": "nested cross-validation: search, early stopping and calibration fitted inside each outer "
        "fold's training part; threshold cross-fitted",
        "folds": folds,
        "trivial": trivial,
        "beats_trivial": bool(beats),
        "roc": roc_points(y, oof[champ]),
        "reliability": {
            "uncalibrated": reliability(y, calibration.sigmoid(oof[champ])),
            "calibrated": reliability(y, honest_p[champ]),
        },
        "cost_curve": cost_curve(y, p_oof, fn_cost, fp_cost),
        "chosen": {
            "threshold": threshold,
            "cost_per_client": business_cost(y, p_oof, threshold, fn_cost, fp_cost) / len(y),
        },
        "score_bands": score_bands(y, p_oof),
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    manifest = {
        "model_id": "",  # set by identify() below, once everything that decides is in the manifest
        "app_version": __version__,
        "features": names,
        "n_features": len(names),
        "threshold": threshold,
        "costs": {"fn": float(fn_cost), "fp": float(fp_cost)},
        "calibration": {
            "method": cal["method"],
            "a": cal["a"],
            "b": cal["b"],
            "honest_log_loss": cal["honest_log_loss"],
        },
        "champion": {"kind": champ, "why": why, "forced": bool(force and not beats)},
        "candidates": {k: _public(results[k]) for k in candidates},
        "metrics": metrics,
        "baselines": {k: _public(results[k]) for k in BASELINES},
        "sensitive": sensitive_record,
        "evaluation": evaluation,
        "search": {
            "trials_per_search": n_trials,
            "bags": cfg["bags"],
            "budget_seconds": budget_seconds,
            "threads": threads,
            "monotone": {n: v for n, v in (monotone or {}).items() if v},
            "final_trials": det.get("trials", []),
            "stopped_by_time": bool(det.get("stopped_by_time", False)),
        },
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "data_fingerprint": data_fingerprint or fingerprint_arrays(X, names),
        "data_source": data_source,
        "schema_fingerprint": schema_fingerprint,
        "versions": {
            "lightgbm": lgb.__version__,
            "numpy": np.__version__,
            "sklearn": sklearn.__version__,
            "app": __version__,
            "python": platform.python_version(),
        },
        "params": {**params, "seed": seed},
        "reference": {
            "file": "reference.npy",
            "rows": len(reference),
            "scores_file": "reference_scores.npy",
            "bins": {name: psi_bins(reference[:, j]) for j, name in enumerate(names)},
            "score_bins": psi_bins(ref_scores),
        },
        "global_importance": [[n, v] for n, v in importance],
        **({"distributed": distributed} if distributed is not None else {}),
    }
    model_id = identify(manifest, model_text)
    model_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(model_dir / "reference.npy", npy_bytes(reference))
    atomic_write_bytes(model_dir / "reference_scores.npy", npy_bytes(ref_scores))
    atomic_write_bytes(model_dir / "model.txt", model_text)
    atomic_write_json(model_dir / MANIFEST, manifest)
    atomic_write_bytes(model_dir / "report.html", report.html(manifest).encode("utf-8"))
    # the model card and training-time fairness, on the honest out-of-fold probabilities (app.model.card)
    from app.model import card

    card.write_at_training(model_dir, manifest, y=y, oof=p_oof, sensitive=sensitive)
    # score.so would still point at the previous model's library: drop it until `credit compile`
    with contextlib.suppress(FileNotFoundError):
        (model_dir / SCORE_LINK).unlink()
    say(
        f"model {model_id[:12]} ({champ}, calibration {cal['method']}): threshold {threshold:.4f}, honest cost/client "
        f"{metrics['cost_per_client']:.4f}, written to {model_dir} in {time.perf_counter() - t_start:.1f} s"
    )
    return manifest


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
