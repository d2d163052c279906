"""Drift monitoring over the prediction log: the readings (the window, PSI, Evidently). The verdict drawn from
them (stable / watch / act) is app.monitoring.verdict's, and app.monitoring.drift_check runs the steps.

Two reports over a window of `prediction_log` (in the operational store, app.store; the float32 feature
vectors actually scored and the probabilities returned):

* `psi_report` (fast path, numpy only): Population Stability Index of every feature and of the score
  against the training reference bins stored in the manifest:
      manifest["reference"]["bins"][feature] = {"edges": [e0 < e1 < ...], "fractions": [...]}
      manifest["reference"]["score_bins"]    = {"edges": [...], "fractions": [...]}
  bin index of a value v = np.searchsorted(edges, v, side="left") (so len(edges)+1 value bins) and
  NaN goes to the last bin: `fractions` has len(edges)+2 entries, the last one the share of NaN
  (a list of len(edges)+1 fractions is accepted too: NaN then shares the last value bin).
  PSI = sum((a - e) * ln(a / e)) with empty bins floored at EPS. A feature drifts when
  PSI > psi_threshold; the data set drifts when the share of drifted features > drift_share.
  `reference_bins` builds that structure (the training step can use it).

* `evidently_report`: Evidently 0.7 `DataDriftPreset` comparing the reference sample
  (model_dir/reference.npy + reference_scores.npy) with the window (features + "score"), with the
  per-column test Evidently picks (K-S / chi-square on small samples, Wasserstein / Jensen-Shannon
  above 1,000 rows); writes an HTML file and returns a JSON-able summary. Evidently's cost is
  mostly building plotly figures, about the same for every column whatever the number of rows
  (measured: ~0.1 s a column on an idle core, 0.5 s under heavy load, plus a few seconds to import
  evidently). To stay within the 30 s budget the window is subsampled (uniformly at random, seed 0)
  to at most `max_current_rows` (default 10,000) rows, and the columns compared are the
  `max_columns` (default 20) most important features by manifest["global_importance"] (the share of
  drifted features and `dataset_drift` are computed over these), plus up to `max_extra` (default 5)
  other features the PSI flags (highest PSI first; shown with "counted": false), plus the score.
  The PSI report always covers every feature. The summary says what was subsampled
  ("subsampled", "window.rows_compared", "columns_not_compared", "extra_psi_flagged_columns") and
  how long each step took ("timings").
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from app import vectors
from app.errors import CreditError
from app.scoring.bundle import Manifest, ModelError, as_manifest, document_manifest
from app.scoring.filenames import REFERENCE, REFERENCE_SCORES

EPS = 1e-4
DEFAULT_BINS = 10
SCORE_COLUMN = "score"
EXIT_DRIFT = 1  # with --fail-on-drift
EXIT_ERROR = 2  # no reference in the manifest, unreadable log
EXIT_NO_VERDICT = 3  # fewer scored rows in the window than the minimum: no verdict either way


class DriftError(CreditError, RuntimeError):
    exit_code = 2  # EXIT_ERROR: `credit drift` keeps 1 for "act"


class EmptyWindow(DriftError):
    """No logged prediction in the window (no verdict, rather than an error, for `credit drift`)."""


# --------------------------------------------------------------------------------------- window


def parse_time(text: str | float | datetime | None) -> float | None:
    """ISO 8601 (naive = UTC), unix seconds, or a relative duration like 30m, 24h, 7d -> unix seconds."""
    if text is None or text == "":
        return None
    if isinstance(text, datetime):
        dt = text if text.tzinfo else text.replace(tzinfo=UTC)
        return dt.timestamp()
    if isinstance(text, int | float):
        return float(text)
    s = str(text).strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if len(s) >= 2 and s[-1] in units and s[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(s[:-1]) * units[s[-1]]
    try:
        return float(s)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise DriftError(f"not a date/time: {s!r} (use ISO 8601 like 2025-01-31T12:00, or 24h / 7d)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def load_window(conn, n_features: int, *, since=None, until=None, last: int | None = None, model_id=None):
    """(X float32[n, p], scores float64[n], window dict) for the logged predictions in the window.

    since <= ts < until; `last` keeps the most recent N of those. Rows whose feature vector does not
    have n_features values (another model's log) are skipped and counted.
    """
    X, scores, _refused, window = load_window_decisions(
        conn, n_features, since=since, until=until, last=last, model_id=model_id
    )
    return X, scores, window


def load_window_decisions(conn, n_features: int, *, since=None, until=None, last=None, model_id=None):
    """load_window plus each row's served decision: (X, scores, refused bool[n], window)."""
    from app.store.predlog import scored_vectors

    t0, t1 = parse_time(since), parse_time(until)
    try:  # the exact scored vector: in the row, or kept once per data version (sql/store/003_compact_rows.sql)
        source, vector = scored_vectors(conn)
    except Exception:  # noqa: BLE001 - an unreadable store fails below with its own message
        source, vector = "prediction_log l", "l.features"
    where, params = [f"length({vector}) = ?"], [4 * n_features]
    if t0 is not None:
        where.append("l.ts >= ?")
        params.append(t0)
    if t1 is not None:
        where.append("l.ts < ?")
        params.append(t1)
    if model_id:
        where.append("l.model_id = ?")
        params.append(model_id)
    sql = f"SELECT {vector}, l.probability, l.ts, l.decision FROM {source} WHERE {' AND '.join(where)}"
    sql += " ORDER BY l.ts DESC, l.id DESC"
    if last is not None:
        if last <= 0:
            raise DriftError("--last must be a positive number of predictions")
        sql += " LIMIT ?"
        params.append(int(last))
    try:
        rows = conn.execute(sql, params).fetchall()
    except Exception as e:  # apsw.SQLError: no such table
        if "no such table" in str(e):
            raise EmptyWindow("no predictions logged yet (the prediction_log table does not exist)") from None
        raise
    window = {"since": _iso(t0), "until": _iso(t1), "last": last, "rows": len(rows)}
    if not rows:
        what = []
        if t0 is not None:
            what.append(f"since {_iso(t0)}")
        if t1 is not None:
            what.append(f"until {_iso(t1)}")
        if last is not None:
            what.append(f"last {last}")
        raise EmptyWindow(
            f"no predictions logged in the window ({', '.join(what) or 'whole log'}) "
            f"with {n_features} features: score some clients first (e.g. `credit traffic`)"
        )
    X = vectors.matrix((r[0] for r in rows), n_features)
    scores = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
    ts = [r[2] for r in rows]
    window["first_ts"], window["last_ts"] = _iso(min(ts)), _iso(max(ts))
    refused = np.fromiter((r[3] == "refuse" for r in rows), dtype=bool, count=len(rows))
    return X.astype(np.float32, copy=False), scores, refused, window


# ------------------------------------------------------------------------------------------ PSI


def reference_bins(values: np.ndarray, n_bins: int = DEFAULT_BINS) -> dict:
    """{"edges", "fractions"} of one column: quantile edges, len(edges)+1 value bins + a NaN bin."""
    v = np.asarray(values, dtype=np.float64)
    finite = v[~np.isnan(v)]
    if finite.size:
        qs = np.quantile(finite, np.linspace(0, 1, n_bins + 1)[1:-1])
        edges = np.unique(qs)
    else:
        edges = np.array([], dtype=np.float64)
    fractions = bin_fractions(v, edges, len(edges) + 2)
    return {"edges": [float(e) for e in edges], "fractions": [float(f) for f in fractions]}


def reference_bins_all(X: np.ndarray, names: list[str], scores: np.ndarray | None = None, n_bins=DEFAULT_BINS):
    """(bins per feature, score bins) for the manifest's "reference" entry."""
    bins = {n: reference_bins(X[:, j], n_bins) for j, n in enumerate(names)}
    score_bins = reference_bins(scores, n_bins) if scores is not None else None
    return bins, score_bins


def bin_fractions(values: np.ndarray, edges, n_bins: int) -> np.ndarray:
    """Share of values per bin: searchsorted(edges, v, 'left'); NaN -> last bin."""
    v = np.asarray(values)
    e = np.asarray(edges, dtype=v.dtype if v.dtype.kind == "f" else np.float64)
    idx = np.searchsorted(e, v, side="left")
    idx = np.minimum(idx, n_bins - 1)
    idx[np.isnan(v)] = n_bins - 1
    counts = np.bincount(idx, minlength=n_bins).astype(np.float64)
    return counts / max(len(v), 1)


def _round_down_f32(e: np.ndarray) -> np.ndarray:
    """Largest float32 <= e: for a float32 v, v > e  <=>  v > _round_down_f32(e) (exact binning in float32)."""
    e = np.asarray(e, dtype=np.float64)
    e32 = e.astype(np.float32)
    too_big = e32.astype(np.float64) > e
    e32[too_big] = np.nextafter(e32[too_big], np.float32(-np.inf))
    return e32


def fractions_matrix(X: np.ndarray, specs: list[dict], chunk: int = 16384) -> list[np.ndarray]:
    """bin_fractions of every column of X (float32 [n, p]) at once; specs[j] = {"edges", "fractions"}.

    Same bins as bin_fractions (index = number of edges < v, NaN -> last bin) without an index array:
    G[r, j] = #{v in column j : v > edge_r}, so bin 0 holds (non-NaN - G[0]), bin r holds G[r-1] - G[r],
    the last value bin G[k-1], and the NaN bin the NaN count. One float32 comparison pass per edge rank.
    """
    n, p = X.shape
    k = max((len(s["edges"]) for s in specs), default=0)
    E = np.full((k, p), np.inf, dtype=np.float32)  # padded with +inf: never < v
    for j, s in enumerate(specs):
        if s["edges"]:
            E[: len(s["edges"]), j] = _round_down_f32(s["edges"])
    G = np.zeros((k, p), dtype=np.int64)
    nan = np.zeros(p, dtype=np.int64)
    for start in range(0, n, chunk):
        C = np.asarray(X[start : start + chunk], dtype=np.float32)
        for r in range(k):
            G[r] += np.count_nonzero(E[r] < C, axis=0)
        nan += np.count_nonzero(np.isnan(C), axis=0)
    out = []
    for j, s in enumerate(specs):
        kj, nb = len(s["edges"]), len(s["fractions"])
        g = G[:kj, j]
        c = np.zeros(max(nb, kj + 1), dtype=np.float64)
        c[0] = (n - nan[j]) - (g[0] if kj else 0)
        if kj:
            c[1:kj] = g[:-1] - g[1:]
            c[kj] = g[-1]
        if nb >= kj + 2:
            c[nb - 1] += nan[j]
            c = c[:nb]
        else:  # no separate NaN bin: NaN and values above the last edge share the last bin
            extra = c[nb:].sum()
            c = c[:nb]
            c[nb - 1] += extra + nan[j]
        out.append(c / max(n, 1))
    return out


def psi(expected, actual, eps: float = EPS) -> float:
    e = np.maximum(np.asarray(expected, dtype=np.float64), eps)
    a = np.maximum(np.asarray(actual, dtype=np.float64), eps)
    return float(np.sum((a - e) * np.log(a / e)))


def _psi_of(values: np.ndarray, spec: dict) -> float:
    fractions = spec["fractions"]
    actual = bin_fractions(values.astype(np.float64), np.asarray(spec["edges"], dtype=np.float64), len(fractions))
    return psi(fractions, actual)


def psi_report(
    conn,
    manifest: Manifest | dict,
    *,
    since=None,
    until=None,
    last: int | None = None,
    psi_threshold: float = 0.2,
    drift_share: float = 0.3,
) -> dict:
    """PSI of every feature and of the score over a window of the log, against the reference bins."""
    t_start = time.perf_counter()
    manifest = _typed(manifest)
    if manifest.reference is None or not manifest.reference.bins:
        raise DriftError("the model manifest has no reference bins (manifest.reference.bins): re-run `credit train`")
    X, scores, window = load_window(conn, len(manifest.features), since=since, until=until, last=last)
    return psi_summary(X, scores, window, manifest, psi_threshold=psi_threshold, drift_share=drift_share, t0=t_start)


def psi_summary(
    X,
    scores,
    window: dict,
    manifest: Manifest | dict,
    *,
    psi_threshold: float,
    drift_share: float,
    t0: float | None = None,
) -> dict:
    """The PSI report of a window already read (X in the manifest's feature order)."""
    t_start = time.perf_counter() if t0 is None else t0
    manifest = _typed(manifest)
    names = list(manifest.features)
    ref = manifest.reference
    bins = ref.bins if ref is not None else {}
    cols = [j for j, name in enumerate(names) if name in bins]
    specs = [bins[names[j]] for j in cols]
    actual = fractions_matrix(X if len(cols) == len(names) else X[:, cols], specs)
    features = []
    for j, spec, fr in zip(cols, specs, actual, strict=True):
        value = psi(spec["fractions"], fr)
        features.append({"feature": names[j], "psi": value, "drifted": value > psi_threshold})
    features.sort(key=lambda f: -f["psi"])
    n_drifted = sum(f["drifted"] for f in features)
    share = n_drifted / len(features) if features else 0.0
    score_spec = ref.score_bins if ref is not None else None
    score_psi = _psi_of(scores, score_spec) if score_spec else None
    return {
        "method": "psi",
        "model_id": manifest.model_id,
        "window": window,
        "psi_threshold": psi_threshold,
        "drift_share": drift_share,
        "features": features,
        "n_features": len(features),
        "n_drifted": n_drifted,
        "share_drifted": share,
        "dataset_drift": share > drift_share,
        "score_psi": score_psi,
        "score_drifted": bool(score_psi is not None and score_psi > psi_threshold),
        "seconds": time.perf_counter() - t_start,
    }


# ------------------------------------------------------------------------------------ Evidently


def _import_evidently():
    """Import Evidently 0.7, patching the one pandas-3 incompatibility its import hits.

    evidently 0.7.x imports `pandas.core.dtypes.common.infer_dtype_from_object`, removed in pandas 3;
    it is only used by a data-integrity test we never run, so a small equivalent is installed.
    """
    import pandas as pd
    import pandas.core.dtypes.common as pd_common

    if not hasattr(pd_common, "infer_dtype_from_object"):

        def infer_dtype_from_object(dtype):
            try:
                return pd.api.types.pandas_dtype(dtype).type
            except TypeError:
                return np.object_

        pd_common.infer_dtype_from_object = infer_dtype_from_object
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation noise from plotly/pandas at import
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset
    return Report, Dataset, DataDefinition, DataDriftPreset


def model_manifest(model_dir: Path) -> Manifest:
    """The model's manifest, parsed and typed by its owner (app.scoring.bundle)."""
    from app.scoring.bundle import read_manifest

    try:
        return read_manifest(Path(model_dir))[0]
    except ModelError as exc:
        raise DriftError(str(exc)) from None


def _typed(manifest: Manifest | dict) -> Manifest:
    """The typed manifest (app.scoring.bundle.as_manifest), DriftError when a raw one does not parse."""
    try:
        return as_manifest(manifest)
    except ModelError as exc:
        raise DriftError(str(exc)) from None


def _choose_columns(names, manifest, flagged: list[str], max_columns: int, max_extra: int) -> tuple[list, list]:
    """(counted, extra): the max_columns most important features (by the manifest's global_importance: typed, or
    a raw manifest's list; then feature order) and up to max_extra PSI-flagged features outside them (shown, not
    counted)."""
    if len(names) <= max_columns:
        return list(names), []
    counted: list[str] = []
    known = set(names)
    importance = document_manifest(manifest).global_importance
    for item in importance or []:
        f = item[0]
        if len(counted) >= max_columns:
            break
        if f in known and f not in counted:
            counted.append(f)
    for f in names:
        if len(counted) >= max_columns:
            break
        if f not in counted:
            counted.append(f)
    extra = [f for f in flagged if f in known and f not in counted][:max_extra]
    order = {n: i for i, n in enumerate(names)}
    return sorted(counted, key=order.__getitem__), sorted(extra, key=order.__getitem__)


def evidently_report(
    conn,
    model_dir,
    *,
    since=None,
    until=None,
    last: int | None = None,
    html_path=None,
    drift_share: float = 0.3,
    psi_threshold: float = 0.2,
    max_current_rows: int = 10_000,
    max_columns: int = 20,
    max_extra: int = 5,
    seed: int = 0,
) -> dict:
    """Evidently DataDriftPreset: reference sample vs the window (features + score). JSON-able summary."""
    import pandas as pd

    t_start = time.perf_counter()
    model_dir = Path(model_dir)
    manifest = model_manifest(model_dir)
    names = list(manifest.features)
    ref = manifest.reference
    ref_file = model_dir / (ref.file if ref is not None and ref.file else REFERENCE)
    if not ref_file.exists():
        raise DriftError(f"{ref_file}: reference sample not found (re-run `credit train`)")
    X_ref = np.load(ref_file, allow_pickle=False)
    scores_file = model_dir / (ref.scores_file if ref is not None and ref.scores_file else REFERENCE_SCORES)
    s_ref = np.load(scores_file, allow_pickle=False) if scores_file.exists() else None
    X, scores, window = load_window(conn, len(names), since=since, until=until, last=last)
    timings = {"read": time.perf_counter() - t_start}
    rows_window = len(X)
    if rows_window > max_current_rows:
        pick = np.sort(np.random.default_rng(seed).choice(rows_window, max_current_rows, replace=False))
        X, scores = X[pick], scores[pick]
    flagged: list[str] = []
    if ref is not None and ref.bins and len(names) > max_columns:
        bins = ref.bins
        cols = [j for j, n in enumerate(names) if n in bins]
        actual = fractions_matrix(X[:, cols], [bins[names[j]] for j in cols])
        psis = [(names[j], psi(bins[names[j]]["fractions"], a)) for j, a in zip(cols, actual, strict=True)]
        flagged = [n for n, v in sorted(psis, key=lambda t: -t[1]) if v > psi_threshold]
    counted, extra = _choose_columns(names, manifest, flagged, max_columns, max_extra)
    columns = counted + extra
    idx = [names.index(c) for c in columns]
    ref_df = pd.DataFrame(X_ref[:, idx].astype(np.float64), columns=columns)
    cur_df = pd.DataFrame(X[:, idx].astype(np.float64), columns=columns)
    numerical = list(columns)
    if s_ref is not None:
        ref_df[SCORE_COLUMN] = np.asarray(s_ref, dtype=np.float64)
        cur_df[SCORE_COLUMN] = scores
        numerical.append(SCORE_COLUMN)
    # columns entirely NaN on one side make Evidently fail: leave them out and say so
    skipped = [c for c in numerical if ref_df[c].isna().all() or cur_df[c].isna().all()]
    numerical = [c for c in numerical if c not in skipped]

    t = time.perf_counter()
    Report, Dataset, DataDefinition, DataDriftPreset = _import_evidently()
    timings["import_evidently"] = time.perf_counter() - t
    t = time.perf_counter()
    definition = DataDefinition(numerical_columns=numerical)
    report = Report([DataDriftPreset(columns=numerical, drift_share=drift_share)], include_tests=True)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = report.run(
            Dataset.from_pandas(cur_df[numerical], data_definition=definition),
            Dataset.from_pandas(ref_df[numerical], data_definition=definition),
        )
        timings["run"] = time.perf_counter() - t
        t = time.perf_counter()
        if html_path is not None:
            Path(html_path).parent.mkdir(parents=True, exist_ok=True)
            snapshot.save_html(str(html_path))
        timings["html"] = time.perf_counter() - t
        data = snapshot.dict()
    summary = _summarise(data, drift_share, set(extra))
    summary.update(
        {
            "method": "evidently",
            "model_id": manifest.model_id,
            "window": {**window, "rows_compared": len(cur_df)},
            "reference_rows": len(ref_df),
            "subsampled": rows_window > max_current_rows,
            "columns_compared": len(numerical),
            "columns_skipped_all_missing": skipped,
            "columns_not_compared": len(names) - len(columns),
            "extra_psi_flagged_columns": extra,
            "html": str(html_path) if html_path is not None else None,
            "seconds": time.perf_counter() - t_start,
            "timings": timings,
        }
    )
    return summary


def too_few_rows(rows: int, min_rows: int) -> str | None:
    """The "no verdict" message when a window has fewer than `min_rows` scored rows, else None."""
    if rows >= min_rows:
        return None
    return (
        f"not enough traffic to judge drift ({rows:,} scored row{'s' if rows != 1 else ''} in the window, "
        f"at least {min_rows:,} needed); run `credit traffic` or wait"
    )


def json_summary(report: dict, limit: int) -> dict:
    """A report with its per-feature list cut to the `limit` first rows (highest PSI / drifted first)."""
    out = dict(report)
    out["features"] = report["features"][:limit]
    out["features_shown"] = len(out["features"])
    return out


def _summarise(data: dict, drift_share: float, extra: set[str] = frozenset()) -> dict:
    metrics = {m["id"]: m for m in data.get("metrics", [])}
    status = {}
    count = None
    for t in data.get("tests", []):
        fp = (t.get("bound_test") or {}).get("metric_fingerprint") or t.get("metric_config", {}).get("metric_id")
        st = t.get("status")
        st = getattr(st, "value", st)
        status[fp] = st
    columns = []
    for mid, m in metrics.items():
        cfg = m.get("config", {})
        kind = cfg.get("type", "")
        if kind.endswith("DriftedColumnsCount"):
            count = m.get("value")
        elif kind.endswith("ValueDrift"):
            value = m.get("value")
            columns.append(
                {
                    "column": cfg.get("column"),
                    "test": cfg.get("method"),
                    "threshold": cfg.get("threshold"),
                    "score": None if value is None or math.isnan(float(value)) else float(value),
                    "drifted": status.get(mid) == "FAIL",
                    "counted": cfg.get("column") not in extra,
                }
            )
    features = [c for c in columns if c["column"] != SCORE_COLUMN]
    score = next((c for c in columns if c["column"] == SCORE_COLUMN), None)
    features.sort(key=lambda c: (not c["drifted"], c["column"]))
    counted = [c for c in features if c["counted"]]
    n_drifted = sum(c["drifted"] for c in counted)
    # Evidently's own share counts the score column and the extra PSI-flagged columns too;
    # ours is over the counted (most important) features only
    share = n_drifted / len(counted) if counted else 0.0
    extra_rows = [c for c in features if not c["counted"]]
    return {
        "features": features,
        "n_features": len(counted),
        "n_drifted": n_drifted,
        "n_extra": len(extra_rows),
        "n_extra_drifted": sum(c["drifted"] for c in extra_rows),
        "share_drifted": share,
        "drift_share": drift_share,
        "dataset_drift": share >= drift_share,
        "evidently_drifted_columns": count,
        "score": score,
        "score_drifted": bool(score and score["drifted"]),
    }


__all__ = [
    "DriftError",
    "bin_fractions",
    "evidently_report",
    "load_window",
    "parse_time",
    "psi",
    "psi_report",
    "reference_bins",
    "reference_bins_all",
]
