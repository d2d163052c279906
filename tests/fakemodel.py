"""A small LightGBM model folder and prediction log built from synthetic numpy data.

Used by test_explain / test_drift / test_traffic so they do not depend on the full pipeline:
model.txt + manifest.json (features, threshold, reference bins, global importance, model_id) +
reference.npy + reference_scores.npy, and a `features`/`feature_names`/`prediction_log` database
that follows docs/contracts.md.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import uuid
from pathlib import Path

import apsw
import numpy as np

BASE_NAMES = [
    "EXT_SOURCE_1",
    "EXT_SOURCE_2",
    "EXT_SOURCE_3",
    "EXT_SOURCE_MEAN",
    "DAYS_BIRTH",
    "AGE_YEARS",
    "DAYS_EMPLOYED",
    "AMT_INCOME_TOTAL",
    "AMT_CREDIT",
    "AMT_ANNUITY",
    "CREDIT_INCOME_RATIO",
    "ANNUITY_INCOME_RATIO",
    "INCOME_PER_PERSON",
    "CNT_FAM_MEMBERS",
    "INST_DPD_MAX",
    "INST_PAYMENT_PERC_MEAN",
    "BUREAU_AMT_CREDIT_SUM_DEBT_SUM",
    "BUREAU_COUNT",
    "PREV_REFUSED_COUNT",
    "PREV_NAME_CONTRACT_STATUS_Refused_SHARE",
    "NAME_EDUCATION_TYPE_Higher_education",
    "CODE_GENDER_M",
]


def make_names(p: int) -> list[str]:
    names = list(BASE_NAMES[:p])
    i = 0
    while len(names) < p:
        names.append(f"CC_AMT_BALANCE_{i}_MEAN" if i % 2 else f"POS_SK_DPD_{i}_MAX")
        i += 1
    return names


def sample(n: int, names: list[str], rng: np.random.Generator) -> np.ndarray:
    """Rows with plausible Home-Credit-like values (NaN for some EXT_SOURCE_1)."""
    cols = {}
    cols["EXT_SOURCE_1"] = np.where(rng.random(n) < 0.4, np.nan, rng.beta(4, 4, n))
    cols["EXT_SOURCE_2"] = rng.beta(5, 3, n)
    cols["EXT_SOURCE_3"] = rng.beta(5, 3, n)
    cols["EXT_SOURCE_MEAN"] = np.nanmean(np.c_[cols["EXT_SOURCE_1"], cols["EXT_SOURCE_2"], cols["EXT_SOURCE_3"]], 1)
    cols["DAYS_BIRTH"] = -rng.uniform(21 * 365, 68 * 365, n).round()
    cols["AGE_YEARS"] = -cols["DAYS_BIRTH"] / 365.25
    cols["DAYS_EMPLOYED"] = -rng.exponential(2000, n).round()
    cols["AMT_INCOME_TOTAL"] = np.exp(rng.normal(12, 0.5, n)).round(-2)
    cols["AMT_CREDIT"] = np.exp(rng.normal(13, 0.6, n)).round(-2)
    cols["AMT_ANNUITY"] = (cols["AMT_CREDIT"] / rng.uniform(10, 30, n)).round()
    cols["CNT_FAM_MEMBERS"] = rng.integers(1, 6, n).astype(float)
    cols["CREDIT_INCOME_RATIO"] = cols["AMT_CREDIT"] / cols["AMT_INCOME_TOTAL"]
    cols["ANNUITY_INCOME_RATIO"] = cols["AMT_ANNUITY"] / cols["AMT_INCOME_TOTAL"]
    cols["INCOME_PER_PERSON"] = cols["AMT_INCOME_TOTAL"] / cols["CNT_FAM_MEMBERS"]
    cols["INST_DPD_MAX"] = np.where(rng.random(n) < 0.8, 0, rng.exponential(10, n).round())
    cols["INST_PAYMENT_PERC_MEAN"] = np.clip(rng.normal(0.97, 0.05, n), 0, 1.2)
    cols["BUREAU_AMT_CREDIT_SUM_DEBT_SUM"] = np.exp(rng.normal(11, 1.5, n))
    cols["BUREAU_COUNT"] = rng.poisson(4, n).astype(float)
    cols["PREV_REFUSED_COUNT"] = rng.poisson(0.7, n).astype(float)
    cols["PREV_NAME_CONTRACT_STATUS_Refused_SHARE"] = rng.beta(1, 5, n)
    cols["NAME_EDUCATION_TYPE_Higher_education"] = (rng.random(n) < 0.25).astype(float)
    cols["CODE_GENDER_M"] = (rng.random(n) < 0.35).astype(float)
    X = np.empty((n, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        X[:, j] = cols[name] if name in cols else rng.normal(0, 1, n)
    return X


def risk(X: np.ndarray, names: list[str]) -> np.ndarray:
    ix = {n: i for i, n in enumerate(names)}
    m = -2.0 - 4.0 * (X[:, ix["EXT_SOURCE_2"]] - 0.6) - 3.0 * (X[:, ix["EXT_SOURCE_3"]] - 0.6)
    m += 0.5 * np.log(X[:, ix["CREDIT_INCOME_RATIO"]] + 0.1)
    m += 0.02 * (X[:, ix["DAYS_BIRTH"]] / 365.25 + 45)
    m += 0.05 * np.minimum(X[:, ix["INST_DPD_MAX"]], 30)
    return 1 / (1 + np.exp(-m))


def train_model(X, y, names, n_trees: int = 50, seed: int = 0, num_leaves: int = 15):
    import lightgbm as lgb

    params = {
        "objective": "binary",
        "num_leaves": num_leaves,
        "learning_rate": 0.05,
        "min_data_in_leaf": 20,
        "verbose": -1,
        "seed": seed,
        "num_threads": 1,
        "deterministic": True,
    }
    ds = lgb.Dataset(X, y, feature_name=names, free_raw_data=False)
    return lgb.train(params, ds, num_boost_round=n_trees)


def write_model_dir(model_dir: Path, booster, names, X_ref, threshold: float = 0.3, compiled: bool = True) -> dict:
    from app.monitoring.drift import reference_bins_all

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(model_dir / "model.txt"))
    model_id = hashlib.sha256((model_dir / "model.txt").read_bytes()).hexdigest()
    scores = booster.predict(X_ref.astype(np.float64))
    np.save(model_dir / "reference.npy", X_ref.astype(np.float32), allow_pickle=False)
    np.save(model_dir / "reference_scores.npy", scores.astype(np.float64), allow_pickle=False)
    bins, score_bins = reference_bins_all(X_ref, names, scores)
    contrib = booster.predict(X_ref[:500].astype(np.float64), pred_contrib=True)[:, :-1]
    imp = np.abs(contrib).mean(0)
    manifest = {
        "model_id": model_id,
        "features": list(names),
        "n_features": len(names),
        "threshold": threshold,
        "reference": {
            "file": "reference.npy",
            "rows": len(X_ref),
            "scores_file": "reference_scores.npy",
            "bins": bins,
            "score_bins": score_bins,
        },
        "global_importance": sorted(([n, float(v)] for n, v in zip(names, imp, strict=True)), key=lambda t: -t[1]),
    }
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    if compiled and shutil.which("gcc"):  # a served model is always compiled (app.scoring.bundle verifies the library)
        from app.model.compile import compile_model

        manifest["library"] = compile_model(model_dir, progress=False, tl2cgen_reference=False)
    return manifest


def make_model_dir(
    model_dir: Path, p: int = 22, n: int = 4000, n_trees: int = 50, seed: int = 0, compiled: bool = True
):
    """Train a small model on synthetic data; returns (manifest, X, names)."""
    rng = np.random.default_rng(seed)
    names = make_names(p)
    X = sample(n, names, rng)
    y = (rng.random(n) < risk(X, names)).astype(int)
    booster = train_model(X, y, names, n_trees=n_trees, seed=seed)
    ref = X[rng.choice(n, min(n, 2000), replace=False)]
    manifest = write_model_dir(model_dir, booster, names, ref, compiled=compiled)
    return manifest, X, names


PREDLOG_SQL = """
CREATE TABLE IF NOT EXISTS prediction_log(
  id INTEGER PRIMARY KEY, ts REAL NOT NULL, request_id TEXT NOT NULL UNIQUE, client_id INTEGER,
  features BLOB NOT NULL, probability REAL NOT NULL, decision TEXT NOT NULL, model_id TEXT NOT NULL,
  latency_ms REAL NOT NULL, role TEXT NOT NULL, endpoint TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS prediction_log_ts ON prediction_log(ts);
"""


def make_db(db_path: Path, X: np.ndarray, names: list[str]) -> apsw.Connection:
    """features + feature_names tables (client ids 100000+i) and an empty prediction_log."""
    conn = apsw.Connection(str(db_path))
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS features(client_id INTEGER PRIMARY KEY, x BLOB NOT NULL);"
        "CREATE TABLE IF NOT EXISTS feature_names(idx INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    )
    conn.execute(PREDLOG_SQL)
    with conn:
        conn.executemany("INSERT INTO feature_names VALUES (?, ?)", list(enumerate(names)))
        conn.executemany(
            "INSERT INTO features VALUES (?, ?)",
            ((100000 + i, X[i].astype("<f4").tobytes()) for i in range(len(X))),
        )
    return conn


def log_predictions(conn, X: np.ndarray, probs: np.ndarray, model_id: str, ts0: float | None = None, dt=1.0):
    ts0 = time.time() - len(X) * dt if ts0 is None else ts0
    rows = (
        (
            ts0 + i * dt,
            uuid.uuid4().hex,
            None,
            X[i].astype("<f4").tobytes(),
            float(probs[i]),
            "refuse" if probs[i] >= 0.3 else "accept",
            model_id,
            1.0,
            "officer",
            "/score",
        )
        for i in range(len(X))
    )
    with conn:
        conn.executemany(
            "INSERT INTO prediction_log(ts, request_id, client_id, features, probability, decision, model_id,"
            " latency_ms, role, endpoint) VALUES (?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
