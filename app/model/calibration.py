"""Platt calibration of the model's margin: p = sigmoid(a * margin + b), a > 0.

Why Platt and not isotonic: a strictly increasing map keeps the ranking (AUC identical), keeps the
explanations exact (contributions scale by a, the base value becomes a * base + b) and is one line
in the generated C link function (app/model/codegen.py). Isotonic regression is piecewise constant:
its plateaus tie clients that the model ranks apart, which changes the AUC.

The choice between "none" (a = 1, b = 0: the model's own sigmoid) and "platt" is made on honest
log-loss: for each outer fold, the map is fitted on the other folds' out-of-fold margins and
applied to the held fold (`cross_fit`). The manifest's "calibration" entry is the one owner of the
map: compile, explain and anything else read (a, b) from it and never refit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.model.evaluation import log_loss

IDENTITY = {"method": "none", "a": 1.0, "b": 0.0}


def sigmoid(z: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(np.asarray(z, dtype=np.float64))


def apply(margin: np.ndarray, cal: dict[str, Any]) -> np.ndarray:
    """Calibrated probability of default from the raw margin (log-odds of the model), float64.

    The same expression, in the same order, as credit_link() in the generated C.
    """
    m = np.asarray(margin, dtype=np.float64)
    with np.errstate(over="ignore"):  # exp overflow -> inf -> p = 0, as in C
        return 1.0 / (1.0 + np.exp(-(float(cal["a"]) * m + float(cal["b"]))))


def fit_platt(margin: np.ndarray, y: np.ndarray, iters: int = 100) -> dict[str, Any]:
    """Maximum-likelihood (a, b) by Newton's method, with Platt's target smoothing; a > 0 enforced.

    Deterministic (no random state). If the fitted slope is not positive (no signal), the identity map
    is returned: a calibration must never reverse or flatten the ranking.
    """
    m = np.asarray(margin, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n_pos, n_neg = float(y.sum()), float(len(y) - y.sum())
    # Platt (1999): targets (n_pos + 1) / (n_pos + 2) and 1 / (n_neg + 2) instead of 1 and 0
    t = np.where(y > 0, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def loss(a: float, b: float) -> float:
        z = a * m + b
        return float(np.sum(np.logaddexp(0.0, z) - t * z))

    a, b = 1.0, 0.0
    current = loss(a, b)
    for _ in range(iters):
        p = sigmoid(a * m + b)
        w = np.maximum(p * (1 - p), 1e-12)
        g = np.array([np.sum((p - t) * m), np.sum(p - t)])
        h = np.array([[np.sum(w * m * m), np.sum(w * m)], [np.sum(w * m), np.sum(w)]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(h, g)
        scale = 1.0  # backtracking: never increase the loss (separable data would diverge)
        while scale > 1e-10 and loss(a - scale * step[0], b - scale * step[1]) > current:
            scale /= 2
        a, b = a - scale * step[0], b - scale * step[1]
        new = loss(a, b)
        if abs(current - new) <= 1e-12 * max(1.0, abs(current)) or np.max(np.abs(scale * step)) < 1e-12:
            break
        current = new
    if not (np.isfinite(a) and np.isfinite(b)) or a <= 0:
        return dict(IDENTITY)
    return {"method": "platt", "a": float(a), "b": float(b)}


def cross_fit(margin: np.ndarray, y: np.ndarray, fold_id: np.ndarray, method: str) -> np.ndarray:
    """Out-of-fold calibrated probabilities: fold k through a map fitted on the other folds only."""
    margin = np.asarray(margin, dtype=np.float64)
    out = np.empty(len(margin), dtype=np.float64)
    for k in np.unique(fold_id):
        held = fold_id == k
        cal = fit_platt(margin[~held], y[~held]) if method == "platt" else IDENTITY
        out[held] = apply(margin[held], cal)
    return out


def choose(margin: np.ndarray, y: np.ndarray, fold_id: np.ndarray) -> tuple[dict[str, Any], np.ndarray, dict]:
    """(final map fitted on all out-of-fold margins, honest calibrated probabilities, honest log-losses).

    The method with the lower cross-fitted log-loss wins (ties: none).
    """
    honest = {method: cross_fit(margin, y, fold_id, method) for method in ("none", "platt")}
    losses = {method: log_loss(y, p) for method, p in honest.items()}
    method = "platt" if losses["platt"] < losses["none"] else "none"
    final = fit_platt(margin, y) if method == "platt" else dict(IDENTITY)
    if final["method"] != method:  # the fit on all margins degenerated: keep the identity
        method = "none"
    return {**final, "honest_log_loss": losses}, honest[method], losses
