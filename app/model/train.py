"""`credit train`: stratified k-fold LightGBM with early stopping, business-cost threshold, baselines.

train() reads the labelled feature matrix from the database (app.data.features.load_matrix) and
calls train_arrays(), which does the work and writes model_dir/{model.txt, manifest.json,
reference.npy, reference_scores.npy} atomically (temp file + os.replace). No pickle anywhere.

Business cost: a false negative (accepting a client who defaults) costs fn_cost, a false positive
(refusing a client who would repay) costs fp_cost. A client is refused when p >= threshold; the
threshold is the exact minimiser of the total cost over the out-of-fold probabilities.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import click
import numpy as np

from app import __version__
from app.db import connect
from app.files import atomic_write_bytes, atomic_write_json
from app.options import db_option, model_option

IMBALANCE_STRATEGIES = ("none", "is_unbalance")
REFERENCE_ROWS = 5000
SHAP_ROWS = 2000


# ---------------------------------------------------------------- business cost and threshold


def confusion(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, int]:
    y = np.asarray(y).astype(bool)
    refuse = np.asarray(p) >= threshold
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
    # refused when p >= uniq[k]: suffix sums
    pos_refused = np.cumsum(pos_at[::-1])[::-1]
    neg_refused = np.cumsum(neg_at[::-1])[::-1]
    total_pos = float(y.sum())
    costs = fn_cost * (total_pos - pos_refused) + fp_cost * neg_refused
    accept_all_cost = fn_cost * total_pos
    thresholds = np.append(uniq, np.nextafter(uniq[-1], np.inf))
    costs = np.append(costs, accept_all_cost)
    best = np.flatnonzero(costs == costs.min())[-1]
    return float(thresholds[best]), float(costs[best])


def _summary(y: np.ndarray, p: np.ndarray, threshold: float, fn_cost: float, fp_cost: float) -> dict[str, Any]:
    n = max(len(y), 1)
    return {
        "cost_per_client": business_cost(y, p, threshold, fn_cost, fp_cost) / n,
        "cost_per_client_at_0_5": business_cost(y, p, 0.5, fn_cost, fp_cost) / n,
        "confusion": confusion(y, p, threshold),
        "confusion_at_0_5": confusion(y, p, 0.5),
    }


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, p))


# ---------------------------------------------------------------- PSI bins


def psi_bins(values: np.ndarray) -> dict[str, list[float]]:
    """Decile edges of the finite values and the fraction per bin.

    Bins: (-inf, e0], (e0, e1], ..., (ek, +inf), then NaN; index = searchsorted(edges, v, 'left'),
    NaN -> len(edges) + 1. So len(fractions) == len(edges) + 2 and they sum to 1.
    """
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    deciles = np.quantile(finite, np.linspace(0.1, 0.9, 9)) if len(finite) else np.array([], dtype=np.float64)
    edges = np.unique(deciles)
    idx = np.searchsorted(edges, v, side="left")
    idx[np.isnan(v)] = len(edges) + 1
    counts = np.bincount(idx, minlength=len(edges) + 2).astype(np.float64)
    fractions = counts / max(len(v), 1) if len(v) else counts
    return {"edges": [float(e) for e in edges], "fractions": [float(f) for f in fractions]}


# ---------------------------------------------------------------- LightGBM


def lgb_params(seed: int, quick: bool, num_threads: int) -> dict[str, Any]:
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
        "num_threads": num_threads,
        "verbosity": -1,
    }
    if quick:
        params.update(learning_rate=0.2, num_leaves=7, min_child_samples=10, max_bin=63)
    return params


def _strategy_params(strategy: str, y: np.ndarray) -> dict[str, Any]:
    if strategy == "none":
        return {}
    if strategy == "is_unbalance":
        return {"is_unbalance": True}
    if strategy == "scale_pos_weight":
        pos = max(int(y.sum()), 1)
        return {"scale_pos_weight": float((len(y) - pos) / pos)}
    raise ValueError(f"unknown imbalance strategy {strategy!r}")


def _say(progress: bool, msg: str) -> None:
    if progress:
        click.echo(msg, err=True)


def _cv_lightgbm(X, y, folds, params, rounds, stopping, progress, label):
    import lightgbm as lgb

    oof = np.zeros(len(y), dtype=np.float64)
    aucs, iters = [], []
    for k, (tr, va) in enumerate(folds):
        t0 = time.perf_counter()
        dtr = lgb.Dataset(X[tr], y[tr], free_raw_data=True)
        dva = lgb.Dataset(X[va], y[va], reference=dtr)
        booster = lgb.train(
            params,
            dtr,
            num_boost_round=rounds,
            valid_sets=[dva],
            callbacks=[lgb.early_stopping(stopping, verbose=False)],
        )
        best = booster.best_iteration or rounds
        oof[va] = booster.predict(X[va], num_iteration=best)
        aucs.append(_auc(y[va], oof[va]))
        iters.append(int(best))
        _say(
            progress,
            f"  [{label}] fold {k + 1}/{len(folds)}: AUC {aucs[-1]:.4f}, best iteration {best}, "
            f"{time.perf_counter() - t0:.1f} s",
        )
    return oof, aucs, iters


def _cv_baseline(kind, X, y, folds, seed):
    from sklearn.dummy import DummyClassifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    Xc = np.where(np.isfinite(X), X, np.nan).astype(np.float64)  # +-inf -> missing
    oof = np.zeros(len(y), dtype=np.float64)
    aucs = []
    for tr, va in folds:
        if kind == "dummy":
            model = DummyClassifier(strategy="most_frequent")
        else:
            model = make_pipeline(
                SimpleImputer(strategy="median", keep_empty_features=True),
                StandardScaler(),
                LogisticRegression(max_iter=500, random_state=seed),
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            model.fit(Xc[tr], y[tr])
            oof[va] = model.predict_proba(Xc[va])[:, 1]
        aucs.append(_auc(y[va], oof[va]))
    return oof, aucs


def _evaluate(y, oof, aucs, fn_cost, fp_cost) -> dict[str, Any]:
    threshold, _ = best_threshold(y, oof, fn_cost, fp_cost)
    out = {
        "auc_mean": float(np.mean(aucs)),
        "auc_std": float(np.std(aucs)),
        "auc_folds": [float(a) for a in aucs],
        "oof_auc": _auc(y, oof),
        "threshold": threshold,
    }
    out.update(_summary(y, oof, threshold, fn_cost, fp_cost))
    return out


def _line(name: str, m: dict[str, Any]) -> str:
    c = m["confusion"]
    return (
        f"{name:<22s} AUC {m['auc_mean']:.4f} ± {m['auc_std']:.4f} | cost/client {m['cost_per_client']:.4f} "
        f"at t={m['threshold']:.4f}, {m['cost_per_client_at_0_5']:.4f} at 0.5 | "
        f"tn={c['tn']} fp={c['fp']} fn={c['fn']} tp={c['tp']}"
    )


# ---------------------------------------------------------------- atomic files


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def fingerprint_arrays(X: np.ndarray, names: list[str]) -> str:
    h = hashlib.sha256()
    h.update("\n".join(names).encode("utf-8"))
    h.update(np.ascontiguousarray(X, dtype="<f4").tobytes())
    return h.hexdigest()


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
    progress: bool = True,
    data_fingerprint: str | None = None,
    data_source: str | None = None,
    schema_fingerprint: str | None = None,
    strategies: tuple[str, ...] = IMBALANCE_STRATEGIES,
    num_threads: int = 1,
    max_rounds: int | None = None,
    sensitive: dict[str, np.ndarray] | None = None,
) -> dict:
    """Cross-validate, pick the imbalance strategy and threshold, refit, write the model folder."""
    import lightgbm as lgb
    import sklearn
    from sklearn.model_selection import StratifiedKFold

    t_start = time.perf_counter()
    model_dir = Path(model_dir)
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

    rounds = max_rounds or (40 if quick else 1500)
    stopping = 10 if quick else 30
    base = lgb_params(seed, quick, num_threads)
    splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(X, y))
    _say(progress, f"train: {len(y)} labelled clients, {X.shape[1]} features, {n_pos} defaults ({n_pos / len(y):.1%})")

    comparison: dict[str, dict[str, Any]] = {}
    runs: dict[str, tuple[np.ndarray, list[int]]] = {}
    for strategy in strategies:
        params = {**base, **_strategy_params(strategy, y)}
        oof, aucs, iters = _cv_lightgbm(X, y, splits, params, rounds, stopping, progress, strategy)
        m = _evaluate(y, oof, aucs, fn_cost, fp_cost)
        m["best_iterations"] = iters
        comparison[strategy] = m
        runs[strategy] = (oof, iters)
        _say(progress, _line(f"lightgbm[{strategy}]", m))
    chosen = min(strategies, key=lambda s: (comparison[s]["cost_per_client"], strategies.index(s)))
    oof, iters = runs[chosen]
    metrics = dict(comparison[chosen])
    threshold = metrics.pop("threshold")
    n_trees = max(1, int(round(float(np.mean(iters)))))
    metrics.update(
        imbalance=chosen,
        imbalance_comparison=comparison,
        n_estimators=n_trees,
        n_train=len(y),
        positives=n_pos,
        folds=folds,
    )

    baselines: dict[str, Any] = {}
    for kind, label in (("dummy", "dummy_majority"), ("logreg", "logistic_regression")):
        t0 = time.perf_counter()
        b_oof, b_aucs = _cv_baseline(kind, X, y, splits, seed)
        baselines[label] = _evaluate(y, b_oof, b_aucs, fn_cost, fp_cost)
        baselines[label]["seconds"] = round(time.perf_counter() - t0, 2)
        _say(progress, _line(label, baselines[label]))

    t0 = time.perf_counter()
    final_params = {**base, **_strategy_params(chosen, y)}
    final_params.pop("metric", None)
    booster = lgb.train(final_params, lgb.Dataset(X, y, feature_name=_lgb_names(names)), num_boost_round=n_trees)
    model_text = booster.model_to_string().encode("utf-8")
    model_id = hashlib.sha256(model_text).hexdigest()
    _say(progress, f"refit on all {len(y)} clients: {n_trees} trees, {time.perf_counter() - t0:.1f} s")

    rng = np.random.default_rng(seed)
    ref_idx = np.sort(rng.choice(len(y), size=min(REFERENCE_ROWS, len(y)), replace=False))
    reference = X[ref_idx]
    ref_scores = booster.predict(reference).astype(np.float64)
    shap_rows = reference[: min(SHAP_ROWS, len(reference))]
    contrib = booster.predict(shap_rows, pred_contrib=True)[:, : len(names)]
    mean_abs = np.abs(contrib).mean(axis=0)
    importance = sorted(zip(names, (float(v) for v in mean_abs), strict=True), key=lambda t: (-t[1], t[0]))

    manifest = {
        "model_id": model_id,
        "app_version": __version__,
        "features": names,
        "n_features": len(names),
        "threshold": threshold,
        "costs": {"fn": float(fn_cost), "fp": float(fp_cost)},
        "metrics": metrics,
        "baselines": baselines,
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
        "params": {**final_params, "num_boost_round": n_trees, "seed": seed},
        "reference": {
            "file": "reference.npy",
            "rows": len(reference),
            "scores_file": "reference_scores.npy",
            "bins": {name: psi_bins(reference[:, j]) for j, name in enumerate(names)},
            "score_bins": psi_bins(ref_scores),
        },
        "global_importance": [[n, v] for n, v in importance],
    }
    model_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(model_dir / "reference.npy", _npy_bytes(reference))
    atomic_write_bytes(model_dir / "reference_scores.npy", _npy_bytes(ref_scores))
    atomic_write_bytes(model_dir / "model.txt", model_text)
    atomic_write_json(model_dir / "manifest.json", manifest)
    # score.so would still point at the previous model's library: drop it until `credit compile`
    with contextlib.suppress(FileNotFoundError):
        (model_dir / "score.so").unlink()
    # ---- issue 19: model card + training-time fairness on the out-of-fold predictions (app.model.card)
    from app.model import card

    card.write_at_training(model_dir, manifest, y=y, oof=oof, sensitive=sensitive)
    # ---- end issue 19
    _say(
        progress,
        f"model {model_id[:12]} ({chosen}): threshold {threshold:.4f}, cost/client "
        f"{metrics['cost_per_client']:.4f} (vs {metrics['cost_per_client_at_0_5']:.4f} at 0.5), "
        f"written to {model_dir} in {time.perf_counter() - t_start:.1f} s",
    )
    return manifest


def _lgb_names(names: list[str]) -> list[str]:
    """LightGBM refuses some characters in feature names; the manifest keeps the real names."""
    bad = set('[]{}":,')
    return ["".join("_" if ch in bad or ch.isspace() else ch for ch in n) for n in names]


def train(
    db_path: Path | str,
    model_dir: Path | str,
    *,
    fn_cost: float = 10.0,
    fp_cost: float = 1.0,
    seed: int = 42,
    folds: int = 5,
    quick: bool = False,
    progress: bool = True,
) -> dict:
    """Train from the database's labelled clients (app.data.features.load_matrix)."""

    from app.data.features import load_matrix
    from app.db import read_meta

    db_path = Path(db_path)
    if not db_path.is_file():
        raise FileNotFoundError(f"{db_path}: database not found; run `credit ingest` first")
    conn = connect(db_path, readonly=True)
    try:
        t0 = time.perf_counter()
        _ids, X, y, names = load_matrix(conn, labelled_only=True)
        meta = read_meta(conn)
        from app.model.card import sensitive_for_training  # issue 19: fairness at training

        sensitive = sensitive_for_training(conn, _ids)
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
        fn_cost=fn_cost,
        fp_cost=fp_cost,
        seed=seed,
        folds=folds,
        quick=quick,
        progress=progress,
        data_fingerprint=meta.get("data_fingerprint"),
        data_source=meta.get("source"),
        schema_fingerprint=meta.get("schema_fingerprint"),
        sensitive=sensitive,
    )


@click.command("train")
@db_option
@model_option
@click.option("--fn-cost", type=float, default=None, help="cost of accepting a defaulter [env CREDIT_FN_COST, 10]")
@click.option("--fp-cost", type=float, default=None, help="cost of refusing a good client [env CREDIT_FP_COST, 1]")
@click.option("--seed", type=int, default=None, help="random seed [env CREDIT_SEED, 42]")
@click.option("--folds", type=click.IntRange(2, 20), default=5, show_default=True, help="cross-validation folds")
@click.option("--quick", is_flag=True, help="few small trees (tests, smoke runs)")
def train_command(
    db: str | None,
    model_dir: str | None,
    fn_cost: float | None,
    fp_cost: float | None,
    seed: int | None,
    folds: int,
    quick: bool,
) -> None:
    """Cross-validate and train LightGBM; pick the cost-minimising threshold."""
    from app.config import load_settings

    s = load_settings(db=db, model_dir=model_dir, fn_cost=fn_cost, fp_cost=fp_cost, seed=seed)
    try:
        m = train(
            s.db_path,
            s.model_path,
            fn_cost=s.fn_cost,
            fp_cost=s.fp_cost,
            seed=s.seed,
            folds=folds,
            quick=quick,
            progress=True,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(_line("lightgbm (chosen)", {**m["metrics"], "threshold": m["threshold"]}))
    for name, b in m["baselines"].items():
        click.echo(_line(name, b))
    click.echo(f"model_id {m['model_id']} -> {s.model_path}", file=sys.stdout)
