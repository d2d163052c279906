"""`credit train --scheduler ADDRESS | --workers N`: the one-machine procedure on a sample, the final fit on a cluster.

Design (every figure reported is still measured on clients the shipped model and its tuning never saw):

1. The labels of every client are read on the driver (16 bytes a client) from the `credit features` output
   (``FEATURES/_labels/``). A stratified **held-out slice** (``--held-out-share``, default 10 %) is set aside:
   nothing below sees it, neither the search nor any fit.
2. A stratified **sample** of the other clients (``--sample-rows``, default 50,000: one worker's memory) is
   gathered from the Parquet partitions (one task per partition) and given to the one-machine procedure
   unchanged (app.model.train.train_arrays): nested evaluation, search, champion by honest cost, calibration,
   cross-fitted threshold, scorecard, manifest. Its nested figures are the ones reported, as on one machine.
3. The **final fit**: when the champion is the tuned LightGBM, the parameters and tree count its final search
   chose are refitted on **all** labelled clients but the held-out slice, on the cluster (``lightgbm.dask``,
   data parallel, each worker reading its own partitions). A scorecard or blend champion keeps its fit on the
   sample (their fit is not distributed here; the manifest says so).
4. The shipped model (calibration map and threshold from the sample's out-of-fold margins, as on one machine)
   scores the held-out slice on the workers; its AUC and cost per client are written to the manifest
   (``distributed.held_out``) beside the nested figures, to confirm them on clients nobody saw.

The model text, the manifest's keys, `credit compile` and every entry point are those of one machine.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import CreditError

DEFAULT_SAMPLE_ROWS = 50_000
DEFAULT_HELD_OUT_SHARE = 0.10
LABELS_DIR = "_labels"


class DistributedTrainingError(CreditError, ValueError):
    """A distributed training run that cannot proceed (the message says why)."""


def _labels(features_dir: Path, export: dict[str, Any]) -> list[tuple[dict, np.ndarray, np.ndarray]]:
    import pyarrow.parquet as pq

    out = []
    for part in export["partitions"]:
        path = features_dir / LABELS_DIR / part["file"]
        if not path.is_file():
            raise DistributedTrainingError(
                f"{path} not found: training on a cluster reads the output of `credit features` (its {LABELS_DIR}/)"
            )
        t = pq.read_table(path, columns=["client_id", "target"])
        out.append((part, t.column("client_id").to_numpy(), t.column("target").to_numpy().astype(np.int8)))
    return out


def load_rows(
    features_dir: str, file: str, ids: np.ndarray, n_features: int, missing_columns: tuple[int, ...] = ()
) -> np.ndarray:
    """On a worker: the float32 rows of `ids` (sorted, all present) from one feature partition; the
    `missing_columns` set to NaN (features kept out of the model: the sensitive ones, as on one machine)."""
    import pyarrow.parquet as pq

    t = pq.read_table(Path(features_dir) / file, columns=["client_id", "x"])
    all_ids = t.column("client_id").to_numpy()
    X = t.column("x").combine_chunks().flatten().to_numpy().reshape(len(all_ids), n_features)
    pos = np.searchsorted(all_ids, ids)
    if len(ids) and (pos.max() >= len(all_ids) or not np.array_equal(all_ids[pos], ids)):
        raise DistributedTrainingError(f"{file}: labelled clients missing from the feature partition")
    out = np.ascontiguousarray(X[pos], dtype=np.float32)
    if missing_columns:
        out[:, list(missing_columns)] = np.nan
    return out


def margins_of(features_dir: str, file: str, ids: np.ndarray, n_features: int, model_text: str) -> np.ndarray:
    """On a worker: raw margins (log-odds) of the model for the rows of `ids` of one partition."""
    import lightgbm as lgb

    X = load_rows(features_dir, file, ids, n_features)
    if not len(ids):
        return np.empty(0)
    return lgb.Booster(model_str=model_text).predict(X, raw_score=True, num_threads=1)


def split_clients(y: np.ndarray, held_out_share: float, sample_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(held-out mask, sample mask) over the labelled clients: both stratified by the label, disjoint."""
    from sklearn.model_selection import train_test_split

    n = len(y)
    everyone = np.arange(n)
    held = np.zeros(n, bool)
    if held_out_share > 0:
        _rest, h = train_test_split(everyone, test_size=held_out_share, stratify=y, random_state=seed)
        held[h] = True
    rest = everyone[~held]
    sample = np.zeros(n, bool)
    if len(rest) <= sample_rows:
        sample[rest] = True
    else:
        s, _other = train_test_split(rest, train_size=sample_rows, stratify=y[rest], random_state=seed + 1)
        sample[s] = True
    return held, sample


def train_on_dask(
    features_dir: Path,
    db_path: Path | None,
    model_dir: Path,
    *,
    scheduler: str | None = None,
    workers: int = 2,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    held_out_share: float = DEFAULT_HELD_OUT_SHARE,
    seed: int = 42,
    fn_cost: float = 10.0,
    fp_cost: float = 1.0,
    progress: bool | Callable[[str], None] = True,
    sensitive_attributes: str | None = None,
    **kwargs: Any,
) -> dict:
    """Train as described in the module text; returns the manifest (with its `distributed` section)."""
    from app.cluster import dask_client, track
    from app.model.train import _sensitive_choice, train_arrays
    from app.progress import say as _say
    from app.scoring.batch import read_export_manifest

    say = lambda m: _say(progress, m)  # noqa: E731
    features_dir = Path(features_dir).resolve()
    if not 0 <= held_out_share < 0.5:
        raise DistributedTrainingError("--held-out-share must be in [0, 0.5)")
    if sample_rows < 100:
        raise DistributedTrainingError("--sample-rows must be at least 100")
    export = read_export_manifest(features_dir)
    names = list(export["features"])
    p = len(names)
    parts = _labels(features_dir, export)
    ids = np.concatenate([i for _p, i, _y in parts])
    y = np.concatenate([t for _p, _i, t in parts])
    if len(y) == 0:
        raise DistributedTrainingError(f"{features_dir}: no labelled clients")
    held, sample = split_clients(y, held_out_share, sample_rows, seed)
    bounds = np.cumsum([0] + [len(i) for _p, i, _y in parts])
    say(
        f"train on Dask: {len(y):,} labelled clients in {len(parts)} partitions; held out {int(held.sum()):,}, "
        f"search and nested evaluation on a stratified sample of {int(sample.sum()):,}, final fit on "
        f"{int((~held).sum()):,}"
    )
    notify = progress if callable(progress) else None
    with dask_client(scheduler=scheduler, workers=workers, notify=notify or (lambda m: say(m))) as client:
        t0 = time.perf_counter()
        futures = {
            client.submit(load_rows, str(features_dir), part["file"], pids[sample[a:b]], p, pure=False): k
            for k, ((part, pids, _t), a, b) in enumerate(zip(parts, bounds[:-1], bounds[1:], strict=True))
        }
        done, failed = track(futures, desc="sample", progress=bool(progress))
        if failed:
            raise DistributedTrainingError(f"reading the sample failed: {failed[0][1]}")
        by_part = dict((k, X) for k, X in done)
        X_s = np.concatenate([by_part[k] for k in range(len(parts))])
        y_s = y[sample]
        sample_seconds = time.perf_counter() - t0
        sensitive = _sensitive(db_path, ids[sample], sensitive_attributes)
        meta = {k: export.get(k) for k in ("data_fingerprint", "schema_fingerprint", "source")}
        attributes = None if sensitive_attributes is None else _parse(sensitive_attributes)
        sens = _sensitive_choice(names, attributes, kwargs.get("exclude_sensitive"))
        missing = tuple(sens["columns"]) if sens["excluded"] else ()  # the one-machine rule (train._masked)

        def final_fit(champ: str, det: dict, cal: dict, threshold: float) -> tuple[dict, dict]:
            record: dict[str, Any] = {
                "design": "search, nested evaluation, champion, calibration and threshold on a stratified sample; "
                "final LightGBM fit on every labelled client but a stratified held-out slice, on a Dask cluster; "
                "the held-out slice scored by the shipped model",
                "clients": int(len(y)),
                "sample_rows": int(sample.sum()),
                "held_out_rows": int(held.sum()),
                "workers": len(client.scheduler_info(n_workers=-1)["workers"]),
                "sample_seconds": round(sample_seconds, 1),
            }
            sample_fit = None
            if champ == "lightgbm":
                sample_fit = det
                t1 = time.perf_counter()
                det = {
                    **det,
                    "booster": _fit_on_cluster(client, features_dir, parts, bounds, ~held, y, p, det, names, missing),
                    "bags": 1,
                }
                record.update(
                    final_fit="cluster", final_rows=int((~held).sum()), final_seconds=round(time.perf_counter() - t1, 1)
                )
            else:
                record.update(final_fit="sample", final_rows=int(sample.sum()), why=f"the champion is the {champ}")
            say(f"final fit: {record['final_fit']} ({record['final_rows']:,} clients)")
            if held.any():
                record["held_out"] = _score_held_out(
                    client, features_dir, parts, bounds, held, y, p, det, champ, names, cal, threshold, fn_cost,
                    fp_cost, sample_fit=sample_fit,
                )  # fmt: skip
                h = record["held_out"]
                say(
                    f"held-out slice ({h['rows']:,} clients nobody saw): AUC {h['auc']:.4f}, "
                    f"cost/client {h['cost_per_client']:.4f}"
                    + (f"; the sample's own fit: AUC {h['sample_fit_auc']:.4f}" if "sample_fit_auc" in h else "")
                )
            return det, record

        manifest = train_arrays(
            X_s,
            y_s,
            names,
            model_dir,
            seed=seed,
            fn_cost=fn_cost,
            fp_cost=fp_cost,
            progress=progress,
            data_fingerprint=meta["data_fingerprint"],
            data_source=meta["source"],
            schema_fingerprint=meta["schema_fingerprint"],
            sensitive=sensitive,
            sensitive_attributes=attributes,
            final_fit=final_fit,
            **kwargs,
        )
    return manifest


def _parse(text: str):
    from app.scoring.fairness import parse_attributes

    return parse_attributes(text)


def _sensitive(db_path: Path | None, ids: np.ndarray, attributes: str | None):
    """The sensitive attributes of the sample's clients from the serving file (the model card), if there."""
    if db_path is None or not Path(db_path).is_file():
        return None
    from app.model.card import sensitive_for_training
    from app.scoring.db import connect

    conn = connect(db_path, readonly=True)
    try:
        return sensitive_for_training(conn, ids, attributes)
    finally:
        conn.close()


def _dask_matrix(features_dir: Path, parts, bounds, keep: np.ndarray, y: np.ndarray, p: int, missing: tuple):
    import dask
    import dask.array as da

    xs, ys = [], []
    for (part, pids, _t), a, b in zip(parts, bounds[:-1], bounds[1:], strict=True):
        mine = keep[a:b]
        n = int(mine.sum())
        if n == 0:
            continue
        rows = dask.delayed(load_rows, pure=True)(str(features_dir), part["file"], pids[mine], p, missing)
        xs.append(da.from_delayed(rows, shape=(n, p), dtype=np.float32))
        ys.append(da.from_array(y[a:b][mine].astype(np.int32), chunks=n))
    return da.concatenate(xs), da.concatenate(ys)


def _fit_on_cluster(client, features_dir, parts, bounds, keep, y, p, det, names, missing):
    import lightgbm as lgb
    from lightgbm.dask import DaskLGBMClassifier

    from app.model.artifacts import lgb_names

    X, yy = _dask_matrix(features_dir, parts, bounds, keep, y, p, missing)
    # num_threads: lightgbm.dask gives each worker its own threads (the worker's nthreads)
    params = {k: v for k, v in det["params"].items() if k not in ("metric", "num_threads", "n_estimators")}
    model = DaskLGBMClassifier(client=client, n_estimators=int(det["n_trees"]), **params)
    with warnings.catch_warnings():  # lightgbm.dask sets each worker's threads itself (its nthreads) and says so
        warnings.filterwarnings("ignore", message=r"Parameter (n_jobs|num_threads) will be ignored")
        model.fit(X, yy, feature_name=lgb_names(names))
    return lgb.Booster(model_str=model.booster_.model_to_string())


def _held_out_margins(client, features_dir, parts, bounds, held, p, text: str) -> np.ndarray:
    shipped = client.scatter(text, broadcast=True)
    futures = [
        client.submit(margins_of, str(features_dir), part["file"], pids[held[a:b]], p, shipped, pure=False)
        for (part, pids, _t), a, b in zip(parts, bounds[:-1], bounds[1:], strict=True)
    ]
    return np.concatenate([f.result() for f in futures])


def _score_held_out(
    client, features_dir, parts, bounds, held, y, p, det, champ, names, cal, threshold, fn_cost, fp_cost,
    sample_fit: dict | None = None,
):  # fmt: skip
    """The shipped model's figures on the held-out slice; with `sample_fit` (the one-machine procedure's own
    final fit on the sample, which the cluster fit replaced), that fit's AUC on the same clients beside them."""
    from app.model import calibration
    from app.model.evaluation import auc, business_cost
    from app.model.train import _model_text

    margins = _held_out_margins(client, features_dir, parts, bounds, held, p, _model_text(champ, det, names))
    yh = np.concatenate([y[a:b][held[a:b]] for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    prob = calibration.apply(margins, cal)
    out = {
        "rows": int(len(yh)),
        "positives": int(yh.sum()),
        "auc": float(auc(yh, prob)),
        "cost_per_client": float(business_cost(yh, prob, threshold, fn_cost, fp_cost) / len(yh)),
        "brier": float(np.mean((prob - yh) ** 2)),
    }
    if sample_fit is not None:
        text = _model_text(champ, sample_fit, names)
        out["sample_fit_auc"] = float(auc(yh, _held_out_margins(client, features_dir, parts, bounds, held, p, text)))
    return out
