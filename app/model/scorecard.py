"""A logistic scorecard (binned features, weight of evidence, L2 logistic regression) written as LightGBM text.

A binned logistic regression is a sum of per-feature step functions, so it IS a tree ensemble with
one tree per used feature: every split is on that feature, a leaf holds coef * WoE of its bin and
the intercept is folded into the first tree. Written as a LightGBM text model, it goes through
everything a tree champion goes through unchanged: model id = sha256(model.txt), `credit compile`
and its parity gate, SQL score(), TreeSHAP explanations (a one-feature tree's SHAP value is exactly
its leaf minus its mean leaf, so contributions add up to the log-odds), drift and batch scoring.

Bins of feature j: edges e_0 < ... < e_{m-1} (quantiles of the finite training values), bin
b = #{e : e < v} (so v <= e_0 is bin 0, +inf the last finite bin, -inf bin 0) and NaN its own bin.
As in LightGBM, a float32 value with |v| <= 1e-35 reads as 0.0. Tree layout: the root splits
`v <= +inf` with NaN sent right (missing type NaN, default right): left is a balanced binary tree
over the finite bins, right is the NaN leaf.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

K_ZERO = float(np.float32(1e-35))  # LightGBM kZeroThreshold
MAX_BINS = 8
MIN_IV = 0.02
WOE_ALPHA = 0.5


def _clean(col: np.ndarray) -> np.ndarray:
    v = np.asarray(col, dtype=np.float32).astype(np.float64)
    return np.where(np.abs(v) <= K_ZERO, 0.0, v)


def bin_index(col: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of every value: searchsorted(edges, v, 'left') for non-NaN values, len(edges) + 1 for NaN."""
    v = _clean(col)
    idx = np.searchsorted(edges, v, side="left")
    idx[np.isnan(v)] = len(edges) + 1
    return idx


@dataclass
class Scorecard:
    """Per used feature: edges, leaf value per bin (coef * WoE, NaN bin last); plus the intercept."""

    n_features: int
    intercept: float
    features: list[int] = field(default_factory=list)
    edges: list[np.ndarray] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)  # len(edges) + 2 each
    counts: list[np.ndarray] = field(default_factory=list)  # training rows per bin (TreeSHAP cover)
    info: dict[str, Any] = field(default_factory=dict)

    def margin(self, X: np.ndarray) -> np.ndarray:
        """Log-odds, float64: the reference implementation of the LightGBM text model below."""
        X = np.asarray(X, dtype=np.float32)
        out = np.full(X.shape[0], self.intercept, dtype=np.float64)
        for j, e, v in zip(self.features, self.edges, self.values, strict=True):
            out += v[bin_index(X[:, j], e)]
        return out

    def to_lightgbm_text(self, names: list[str]) -> str:
        return _model_text(self, names)


def fit(X: np.ndarray, y: np.ndarray, *, c: float = 0.5, max_bins: int = MAX_BINS, seed: int = 0) -> Scorecard:
    """Quantile bins, WoE per bin (smoothed), features with information value >= MIN_IV, L2 logistic regression."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y).astype(np.float64)
    n, p = X.shape
    pos, neg = float(y.sum()), float(n - y.sum())
    prior = np.log((pos + WOE_ALPHA) / (neg + WOE_ALPHA))
    cand: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, float]] = []
    qs = np.linspace(0, 1, max_bins + 1)[1:-1]
    for j in range(p):
        v = _clean(X[:, j])
        finite = v[np.isfinite(v)]
        edges = np.unique(np.quantile(finite, qs)) if len(finite) else np.array([], dtype=np.float64)
        idx = bin_index(X[:, j], edges)
        nb = len(edges) + 2
        bp = np.bincount(idx, weights=y, minlength=nb)
        bc = np.bincount(idx, minlength=nb).astype(np.float64)
        bn = bc - bp
        woe = np.log((bp + WOE_ALPHA) / (bn + WOE_ALPHA)) - prior
        woe[bc == 0] = 0.0
        iv = float(np.sum(((bp + WOE_ALPHA) / (pos + WOE_ALPHA) - (bn + WOE_ALPHA) / (neg + WOE_ALPHA)) * woe))
        if len(np.unique(idx)) > 1:
            cand.append((j, edges, woe, bc, iv))
    keep = [c_ for c_ in cand if c_[4] >= MIN_IV] or sorted(cand, key=lambda t: -t[4])[:1]
    if not keep:
        return Scorecard(p, float(np.log(pos / neg)) if pos and neg else 0.0, info={"used": 0})
    W = np.column_stack([woe[bin_index(X[:, j], edges)] for j, edges, woe, _, _ in keep])
    model = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(W, y.astype(np.int32))
    coef = model.coef_[0]
    sc = Scorecard(p, float(model.intercept_[0]))
    for (j, edges, woe, bc, _iv), w in zip(keep, coef, strict=True):
        if w != 0.0:
            sc.features.append(j)
            sc.edges.append(edges)
            sc.values.append(w * woe)
            sc.counts.append(bc)
    sc.info = {"used": len(sc.features), "candidates": len(cand), "C": c, "max_bins": max_bins, "min_iv": MIN_IV}
    return sc


# ---------------------------------------------------------------- LightGBM text


def _fmt(v: float) -> str:
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(float(v))


def _tree(j: int, edges: np.ndarray, values: np.ndarray, counts: np.ndarray) -> dict[str, list]:
    """Arrays of one LightGBM tree (preorder nodes; a child < 0 is leaf ~child)."""
    nodes: dict[str, list] = {k: [] for k in ("feature", "threshold", "decision", "left", "right", "count")}
    leaf_values: list[float] = []
    leaf_counts: list[float] = []
    cnt = np.maximum(counts, 1.0)  # TreeSHAP divides by node counts: never 0

    def leaf(b: int) -> tuple[int, float]:
        leaf_values.append(float(values[b]))
        leaf_counts.append(float(cnt[b]))
        return ~(len(leaf_values) - 1), float(cnt[b])

    def node(threshold: float, default_left: bool) -> int:
        i = len(nodes["feature"])
        nodes["feature"].append(j)
        nodes["threshold"].append(threshold)
        nodes["decision"].append((2 << 2) | (2 if default_left else 0))  # missing type NaN
        nodes["left"].append(0)
        nodes["right"].append(0)
        nodes["count"].append(0.0)
        return i

    def finite(lo: int, hi: int) -> tuple[int, float]:
        if lo == hi:
            return leaf(lo)
        mid = (lo + hi) // 2  # bins lo..mid go left: v <= edges[mid]
        i = node(float(edges[mid]), False)
        left, cl = finite(lo, mid)
        right, cr = finite(mid + 1, hi)
        nodes["left"][i], nodes["right"][i], nodes["count"][i] = left, right, cl + cr
        return i, cl + cr

    root = node(float("inf"), False)
    left, cl = finite(0, len(edges))
    right, cr = leaf(len(edges) + 1)
    nodes["left"][root], nodes["right"][root], nodes["count"][root] = left, right, cl + cr
    nodes["leaf_value"] = leaf_values
    nodes["leaf_count"] = leaf_counts
    return nodes


def _model_text(sc: Scorecard, names: list[str]) -> str:
    from app.model.artifacts import lgb_names

    trees = []
    if not sc.features:  # a constant model: one tree on feature 0 with the intercept in every leaf
        trees.append(_tree(0, np.array([]), np.array([sc.intercept, sc.intercept]), np.array([1.0, 1.0])))
    for k, (j, e, v, c) in enumerate(zip(sc.features, sc.edges, sc.values, sc.counts, strict=True)):
        trees.append(_tree(j, e, v + (sc.intercept if k == 0 else 0.0), c))
    blocks = []
    for i, t in enumerate(trees):
        n_leaves = len(t["leaf_value"])
        lines = [
            f"Tree={i}",
            f"num_leaves={n_leaves}",
            "num_cat=0",
            "split_feature=" + " ".join(str(f) for f in t["feature"]),
            "split_gain=" + " ".join("1" for _ in t["feature"]),
            "threshold=" + " ".join(_fmt(x) for x in t["threshold"]),
            "decision_type=" + " ".join(str(d) for d in t["decision"]),
            "left_child=" + " ".join(str(c) for c in t["left"]),
            "right_child=" + " ".join(str(c) for c in t["right"]),
            "leaf_value=" + " ".join(_fmt(x) for x in t["leaf_value"]),
            "leaf_weight=" + " ".join(_fmt(x) for x in t["leaf_count"]),
            "leaf_count=" + " ".join(str(int(x)) for x in t["leaf_count"]),
            "internal_value=" + " ".join("0" for _ in t["feature"]),
            "internal_weight=" + " ".join(_fmt(x) for x in t["count"]),
            "internal_count=" + " ".join(str(int(x)) for x in t["count"]),
            "is_linear=0",
            "shrinkage=1",
            "",
            "",
        ]
        blocks.append("\n".join(lines))
    header = [
        "tree",
        "version=v4",
        "num_class=1",
        "num_tree_per_iteration=1",
        "label_index=0",
        f"max_feature_idx={sc.n_features - 1}",
        "objective=binary sigmoid:1",
        "feature_names=" + " ".join(lgb_names(names)),
        "feature_infos=" + " ".join("none" for _ in names),
        "",
        "",
    ]
    return (
        "\n".join(header)
        + "".join(blocks)
        + "end of trees\n\nparameters:\nend of parameters\n\npandas_categorical:null\n"
    )
