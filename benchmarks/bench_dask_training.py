"""Training on Dask against one machine: the AUC noise, and the final fit's scaling from 1 to 2 workers.

python -m benchmarks.bench_dask_training noise --out DIR [--clients 20000] [--seeds 3] [--trials 3]
python -m benchmarks.bench_dask_training scaling --features FEATURES [--rounds 3] [--trees 200]
python -m benchmarks.bench_dask_training fit-noise --out DIR [--seed 0] [--fits 8]   (after a `noise` run)

noise: `credit generate` N clients into DIR (kept: a second run reuses it), `credit ingest` (the one-machine
    serving file), `credit partition` + `credit features` (2 workers). Then for each seed 0..K-1:
    - the one-machine `credit train` on all labelled clients: its nested out-of-fold AUC, the figure the
      product reports. Its spread over the seeds is the run-to-run noise (same data, seeds varied);
    - `credit train --workers 2` with the same seed: the same procedure on the stratified sample (at this size
      every client but the held-out slice), the final fit on the cluster, the held-out slice scored; beside it
      the sample's own one-machine fit scored on the same held-out clients (`sample_fit_auc`), so the paired
      difference (cluster fit - one-machine fit, same clients, same parameters) is set against the noise.
    Both trainings get the same candidates (LightGBM: a scorecard or blend champion is not refitted on the
    cluster, so there would be nothing to compare) and the same search budget (--trials).

scaling: the labelled clients of a `credit features` output, loaded once into a LocalCluster of 1 worker and
    one of 2 workers (one thread each; lightgbm.dask gives each worker num_threads = its threads, so each
    worker trains on one thread and the ratio is the data parallelism alone), persisted in worker memory;
    then, alternating in each round, the same `DaskLGBMClassifier` fit (fixed parameters and tree count) on
    each cluster, and a plain one-thread `lightgbm.train` on the same rows in this process (the floor: no
    Dask, no network). Figures: the median wall time per fit, the CPU seconds of each worker process over the
    fit, the speed-up 1 -> 2 workers, and Amdahl's serial share s = (2 T2 - T1) / T1 (the part of the fit the
    second worker does not shorten: the histogram all-reduce over the socket, the split finding that every
    worker repeats, Dask's start of the fit).

The machine's load average is printed with the figures (a shared machine: ratios measured in the same run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

FIXED_PARAMS = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 50,
                "colsample_bytree": 0.5, "subsample": 1.0, "reg_lambda": 1.0, "seed": 7, "verbose": -1}  # fmt: skip


def _prepare(root: Path, clients: int) -> None:
    from app.data.distributed import build_features_on_dask, partition_sources
    from app.data.ingest import ingest
    from app.data.synthetic import generate

    if not (root / "raw" / "bureau_balance.csv").is_file():
        generate(root / "raw", n_clients=clients, seed=42, progress=False)
    if not (root / "one.db").is_file():
        ingest(root / "raw", root / "one.db", progress=False)
    if not (root / "sources" / "_sources.json").is_file():
        partition_sources(root / "raw", root / "sources", clients_per_partition=max(1, clients // 8), progress=False)
    if not (root / "features" / "_manifest" / "_features.json").is_file():
        build_features_on_dask(root / "sources", root / "features", root / "dist.db", workers=2, progress=False)


def noise(args: argparse.Namespace) -> dict:
    from app.model.distributed import train_on_dask
    from app.model.train import train
    from app.scoring.bundle import as_manifest
    from app.scoring.sections import HeldOut

    root = args.out.resolve()
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    _prepare(root, args.clients)
    out: dict = {"clients": args.clients, "seeds": args.seeds, "trials": args.trials, "load_before": os.getloadavg()}
    out["prepare_seconds"] = round(time.perf_counter() - t0, 1)
    common = {"candidates": ("lightgbm",), "trials": args.trials, "progress": False}
    one, dask = [], []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        m = as_manifest(train(root / "one.db", root / f"model-one-{seed}", seed=seed, **common))
        one.append({"seed": seed, "oof_auc": m.metrics.oof_auc, "seconds": round(time.perf_counter() - t0, 1)})
        t0 = time.perf_counter()
        m = as_manifest(train_on_dask(root / "features", root / "dist.db", root / f"model-dask-{seed}", seed=seed,
                                      workers=2, **common))  # fmt: skip
        d = m.distributed
        h = d.held_out or HeldOut()
        dask.append({"seed": seed, "oof_auc_sample": m.metrics.oof_auc, "sample_rows": d.sample_rows,
                     "final_fit": d.final_fit, "held_out_rows": d.held_out_rows, "held_out_auc": h.auc,
                     "sample_fit_held_out_auc": h.sample_fit_auc,
                     "seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
        print(json.dumps({"one_machine": one[-1], "dask": dask[-1]}), flush=True)
    aucs = np.array([r["oof_auc"] for r in one])
    dask_oof = np.array([r["oof_auc_sample"] for r in dask])
    paired = np.array([r["held_out_auc"] - r["sample_fit_held_out_auc"] for r in dask if r["sample_fit_held_out_auc"]])
    held = np.array([r["held_out_auc"] for r in dask])
    out.update(
        one_machine=one,
        dask=dask,
        one_machine_oof_auc_mean=float(aucs.mean()),
        one_machine_oof_auc_std=float(aucs.std(ddof=1)) if len(aucs) > 1 else None,
        one_machine_oof_auc_range=float(aucs.max() - aucs.min()),
        dask_sample_oof_auc_mean=float(dask_oof.mean()),
        dask_held_out_auc_mean=float(held.mean()),
        paired_cluster_minus_one_machine_fit=[round(float(x), 5) for x in paired],
        paired_mean_abs=float(np.abs(paired).mean()) if len(paired) else None,
        load_after=os.getloadavg(),
    )
    std = out["one_machine_oof_auc_std"]
    if std is not None and len(paired):
        out["within_noise"] = bool(np.abs(paired).max() <= 2 * std and abs(dask_oof.mean() - aucs.mean()) <= 2 * std)
    return out


def _labelled(features: Path):
    from app.model.distributed import _labels
    from app.scoring.batch import read_export_manifest

    export = read_export_manifest(features)
    parts = _labels(features, export)
    y = np.concatenate([t for _p, _i, t in parts])
    bounds = np.cumsum([0] + [len(i) for _p, i, _y in parts])
    return export, parts, bounds, y


def _worker_cpu() -> float:
    return time.process_time()


def scaling(args: argparse.Namespace) -> dict:
    import contextlib

    import distributed
    import lightgbm as lgb
    from lightgbm.dask import DaskLGBMClassifier

    from app.cluster import dask_client
    from app.model.distributed import _dask_matrix

    features = args.features.resolve()
    export, parts, bounds, y = _labelled(features)
    p = len(export["features"])
    keep = np.ones(len(y), bool)
    out: dict = {"rows": int(len(y)), "features": p, "trees": args.trees, "tree_learner": args.tree_learner,
                 "params": FIXED_PARAMS,
                 "load_before": os.getloadavg()}  # fmt: skip
    with contextlib.ExitStack() as stack:
        clusters = {}
        for w in (1, 2):
            client = stack.enter_context(dask_client(workers=w, threads_per_worker=1, notify=lambda m: None))
            t0 = time.perf_counter()
            X, yy = _dask_matrix(features, parts, bounds, keep, y, p, ())
            X, yy = client.persist([X, yy])
            distributed.wait([X, yy])
            clusters[w] = (client, X, yy)
            out[f"load_{w}_workers_seconds"] = round(time.perf_counter() - t0, 1)
        Xn = clusters[1][1].compute()
        yn = clusters[1][2].compute()
        runs: dict[str, list] = {"1 worker": [], "2 workers": [], "no Dask, 1 thread": []}
        cpu: dict[str, list] = {"1 worker": [], "2 workers": []}
        floor_cpu: list[float] = []
        for _round in range(args.rounds):
            for w in (1, 2):
                client, X, yy = clusters[w]
                before = client.run(_worker_cpu)
                t0 = time.perf_counter()
                model = DaskLGBMClassifier(
                    client=client, n_estimators=args.trees, tree_learner=args.tree_learner, **FIXED_PARAMS
                )
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=r"Parameter (n_jobs|num_threads) will be ignored")
                    model.fit(X, yy)
                runs[f"{w} worker" + ("s" if w > 1 else "")].append(time.perf_counter() - t0)
                after = client.run(_worker_cpu)
                cpu[f"{w} worker" + ("s" if w > 1 else "")].append(sorted(after[a] - before[a] for a in after))
            t0, c0 = time.perf_counter(), time.thread_time()
            params = {k: v for k, v in FIXED_PARAMS.items()} | {"num_threads": 1}
            lgb.train(params, lgb.Dataset(Xn, yn), num_boost_round=args.trees)
            runs["no Dask, 1 thread"].append(time.perf_counter() - t0)
            floor_cpu.append(time.thread_time() - c0)
            print(json.dumps({k: round(v[-1], 1) for k, v in runs.items()}), flush=True)
    med = {k: statistics.median(v) for k, v in runs.items()}
    t1, t2 = med["1 worker"], med["2 workers"]
    # the CPU view (a loaded machine stretches wall time, not the work): the fit's critical path is its
    # busiest worker's CPU seconds, as if every worker had its own core
    c1 = statistics.median(max(r) for r in cpu["1 worker"])
    c2 = statistics.median(max(r) for r in cpu["2 workers"])
    out.update(
        seconds={k: [round(x, 2) for x in v] for k, v in runs.items()},
        median_seconds={k: round(v, 2) for k, v in med.items()},
        worker_cpu_seconds={k: [[round(x, 2) for x in r] for r in v] for k, v in cpu.items()},
        speedup_1_to_2=round(t1 / t2, 3),
        serial_share=round((2 * t2 - t1) / t1, 3),
        dask_overhead_1_worker=round(t1 / med["no Dask, 1 thread"], 3),
        floor_cpu_seconds=[round(x, 2) for x in floor_cpu],
        cpu_speedup_1_to_2=round(c1 / c2, 3),
        cpu_serial_share=round((2 * c2 - c1) / c1, 3),
        cpu_overhead_1_worker=round(c1 / statistics.median(floor_cpu), 3),
        load_after=os.getloadavg(),
    )
    return out


def fit_noise(args: argparse.Namespace) -> dict:
    """The final fit's own run-to-run noise on the held-out slice of a `noise` run's seed: the shipped model's
    parameters and tree count (from model-dask-SEED/manifest.json) refitted on the same sample with LightGBM
    seeds 0..K-1 (bagging and feature sampling vary), each scored on the same held-out clients. A lower bound
    of the run-to-run noise (the search is not rerun), cheap enough to measure on a loaded machine."""
    import lightgbm as lgb

    from app.model.distributed import load_rows, split_clients
    from app.model.evaluation import auc
    from app.scoring.bundle import read_manifest
    from app.scoring.sections import Sensitive

    root = args.out.resolve()
    m, _raw = read_manifest(root / f"model-dask-{args.seed}")
    export, parts, bounds, y = _labelled(root / "features")
    names = list(export["features"])
    sens = m.sensitive or Sensitive()
    masked = {f for fs in (sens.features or {}).values() for f in fs} if sens.excluded else set()
    missing = tuple(i for i, n in enumerate(names) if n in masked)
    held, sample = split_clients(y, m.distributed.held_out_rows / len(y), 50_000, args.seed)

    def rows(mask: np.ndarray) -> np.ndarray:
        return np.concatenate([
            load_rows(str(root / "features"), part["file"], pids[mask[a:b]], len(names), missing)
            for (part, pids, _t), a, b in zip(parts, bounds[:-1], bounds[1:], strict=True)
        ])  # fmt: skip

    Xs, Xh = rows(sample), rows(held)
    ys, yh = y[sample], y[held]
    params = {k: v for k, v in m.params.items() if k not in ("num_boost_round", "bags")} | {"num_threads": 1}
    aucs = []
    for seed in range(args.fits):
        b = lgb.train(params | {"seed": seed}, lgb.Dataset(Xs, ys), num_boost_round=int(m.params["num_boost_round"]))
        aucs.append(float(auc(yh, b.predict(Xh, raw_score=True))))
        print(json.dumps({"fit_seed": seed, "held_out_auc": aucs[-1]}), flush=True)
    a = np.array(aucs)
    h = m.distributed.held_out
    return {"seed": args.seed, "held_out_rows": int(held.sum()), "sample_rows": int(sample.sum()),
            "fit_seed_aucs": [round(x, 5) for x in aucs], "fit_noise_std": float(a.std(ddof=1)),
            "fit_noise_range": float(a.max() - a.min()), "cluster_fit_auc": h.auc,
            "one_machine_fit_auc": h.sample_fit_auc, "load": os.getloadavg()}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    n = sub.add_parser("noise")
    n.add_argument("--out", type=Path, required=True)
    n.add_argument("--clients", type=int, default=20_000)
    n.add_argument("--seeds", type=int, default=3)
    n.add_argument("--trials", type=int, default=3)
    s = sub.add_parser("scaling")
    s.add_argument("--features", type=Path, required=True)
    s.add_argument("--rounds", type=int, default=3)
    s.add_argument("--trees", type=int, default=200)
    s.add_argument("--tree-learner", default="data", choices=("data", "voting", "feature"),
                   help="LightGBM's distributed learner")  # fmt: skip
    f = sub.add_parser("fit-noise")
    f.add_argument("--out", type=Path, required=True, help="the folder of a `noise` run")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--fits", type=int, default=8)
    args = ap.parse_args(argv)
    out = {"noise": noise, "scaling": scaling, "fit-noise": fit_noise}[args.mode](args)
    print(json.dumps(out, indent=2, default=float))
    return out


if __name__ == "__main__":
    main()
