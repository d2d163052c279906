"""Honest figures: business cost, exact threshold, cross-fitted threshold, trivial policies, calibration metrics.

Business cost: a false negative (accepting a client who defaults) costs fn_cost, a false positive
(refusing a client who would repay) costs fp_cost. A client is refused when p >= threshold.

"Honest" means that nothing counted on a fold was chosen with that fold: the threshold reported
for fold k is the cost minimiser over the other folds' out-of-fold probabilities
(`cross_fitted_cost`), and the out-of-fold probabilities themselves come from models that never saw
fold k (app/model/train.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.scoring.bundle import refuses

# ---------------------------------------------------------------- business cost and threshold


def confusion(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, int]:
    y = np.asarray(y).astype(bool)
    refuse = refuses(np.asarray(p, dtype=np.float64), threshold)
    return {
        "tn": int(np.sum(~y & ~refuse)),
        "fp": int(np.sum(~y & refuse)),
        "fn": int(np.sum(y & ~refuse)),
        "tp": int(np.sum(y & refuse)),
    }


def business_cost(y: np.ndarray, p: np.ndarray, threshold: float, fn_cost: float, fp_cost: float) -> float:
    """Total cost of the decisions `refuse when p >= threshold`."""
    c = confusion(y, p, threshold)
    return fn_cost * c["fn"] + fp_cost * c["fp"]


def best_threshold(y: np.ndarray, p: np.ndarray, fn_cost: float, fp_cost: float) -> tuple[float, float]:
    """(threshold, total cost) minimising the business cost, by exact search.

    Candidates are every distinct probability u (refuse all clients with p >= u) plus one value above
    the largest probability (accept everybody). Ties go to the highest threshold (fewest refusals).
    """
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=np.float64)
    if len(p) == 0:
        return 0.5, 0.0
    if not np.all(np.isfinite(p)):
        raise ValueError("probabilities must be finite")
    uniq, inverse = np.unique(p, return_inverse=True)  # ascending
    pos_at = np.bincount(inverse, weights=y, minlength=len(uniq))
    neg_at = np.bincount(inverse, weights=~y, minlength=len(uniq))
    pos_refused = np.cumsum(pos_at[::-1])[::-1]
    neg_refused = np.cumsum(neg_at[::-1])[::-1]
    total_pos = float(y.sum())
    costs = fn_cost * (total_pos - pos_refused) + fp_cost * neg_refused
    thresholds = np.append(uniq, np.nextafter(uniq[-1], np.inf))
    costs = np.append(costs, fn_cost * total_pos)
    best = np.flatnonzero(costs == costs.min())[-1]
    return float(thresholds[best]), float(costs[best])


def cross_fitted_cost(
    y: np.ndarray, p: np.ndarray, fold_id: np.ndarray, fn_cost: float, fp_cost: float
) -> dict[str, Any]:
    """Cost of thresholds chosen on the other folds and counted on the held one, pooled per client.

    Returns {"cost_per_client", "fold_thresholds", "fold_costs" (per client of each fold), "confusion",
    "client_costs" (float64[n]: each client's cost under its fold's threshold)}.
    """
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=np.float64)
    fold_id = np.asarray(fold_id)
    total = 0.0
    thresholds, fold_costs = [], []
    conf = {"tn": 0, "fp": 0, "fn": 0, "tp": 0}
    client_costs = np.zeros(len(y), dtype=np.float64)
    for k in np.unique(fold_id):
        held = fold_id == k
        t, _ = best_threshold(y[~held], p[~held], fn_cost, fp_cost)
        c = business_cost(y[held], p[held], t, fn_cost, fp_cost)
        total += c
        thresholds.append(t)
        fold_costs.append(c / max(int(held.sum()), 1))
        for key, v in confusion(y[held], p[held], t).items():
            conf[key] += v
        refused = refuses(p[held], t)
        client_costs[held] = np.where(y[held], np.where(refused, 0.0, fn_cost), np.where(refused, fp_cost, 0.0))
    return {
        "cost_per_client": total / max(len(y), 1),
        "fold_thresholds": thresholds,
        "fold_costs": fold_costs,
        "confusion": conf,
        "client_costs": client_costs,
    }


def same_cost(a: np.ndarray, b: np.ndarray, z: float = 2.0) -> tuple[bool, float, float]:
    """Whether two policies' per-client costs on the same clients differ by no more than z paired standard
    errors: (indistinct, mean difference b - a, its standard error)."""
    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    se = float(np.std(d, ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
    mean = float(d.mean()) if len(d) else 0.0
    return abs(mean) <= z * se, mean, se


def trivial_policies(y: np.ndarray, fn_cost: float, fp_cost: float) -> dict[str, float]:
    """Cost per client of accepting everybody and of refusing everybody (nothing fitted: honest as is)."""
    y = np.asarray(y).astype(bool)
    n = max(len(y), 1)
    return {"accept_all": fn_cost * float(y.sum()) / n, "refuse_all": fp_cost * float((~y).sum()) / n}


# ---------------------------------------------------------------- ranking and calibration metrics


def auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, p))


def fold_aucs(y: np.ndarray, s: np.ndarray, fold_id: np.ndarray) -> list[float]:
    return [auc(y[fold_id == k], s[fold_id == k]) for k in np.unique(fold_id)]


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((np.asarray(p, dtype=np.float64) - np.asarray(y, dtype=np.float64)) ** 2))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-15, 1 - 1e-15)
    y = np.asarray(y, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Equal-count bins of p: mean predicted, observed default rate, count (empty bins dropped)."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    out = []
    for chunk in np.array_split(order, bins):
        if len(chunk):
            out.append({"predicted": float(p[chunk].mean()), "observed": float(y[chunk].mean()), "n": int(len(chunk))})
    return out


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-count bins: sum_b n_b/n |mean p_b - default rate_b|."""
    rel = reliability(y, p, bins)
    n = sum(r["n"] for r in rel) or 1
    return float(sum(r["n"] / n * abs(r["predicted"] - r["observed"]) for r in rel))


def calibration_figures(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {"brier": brier(y, p), "log_loss": log_loss(y, p), "ece": ece(y, p)}


# ---------------------------------------------------------------- curves for the report and the dashboard


def roc_points(y: np.ndarray, s: np.ndarray, max_points: int = 101) -> list[list[float]]:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, s)
    idx = np.unique(np.linspace(0, len(fpr) - 1, min(max_points, len(fpr))).round().astype(int))
    return [[round(float(fpr[i]), 5), round(float(tpr[i]), 5)] for i in idx]


def cost_curve(y: np.ndarray, p: np.ndarray, fn_cost: float, fp_cost: float, points: int = 60) -> list[list[float]]:
    """[threshold, cost per client] over quantiles of p (plus 0 and 1)."""
    p = np.asarray(p, dtype=np.float64)
    grid = np.unique(np.concatenate([[0.0, 1.0], np.quantile(p, np.linspace(0, 1, points))]))
    n = max(len(y), 1)
    return [[round(float(t), 6), business_cost(y, p, float(t), fn_cost, fp_cost) / n] for t in grid]


def score_bands(y: np.ndarray, p: np.ndarray, bands: int = 10) -> list[dict[str, float]]:
    """Deciles of the score: lowest and highest probability, clients, observed default rate."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    out = []
    for chunk in np.array_split(order, bands):
        if len(chunk):
            out.append(
                {
                    "low": float(p[chunk].min()),
                    "high": float(p[chunk].max()),
                    "n": int(len(chunk)),
                    "default_rate": float(y[chunk].mean()),
                }
            )
    return out
