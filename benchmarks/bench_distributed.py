"""Features (and optionally training) on Dask against one machine, as ratios measured in one run.

python -m benchmarks.bench_distributed [--clients N] [--clients-per-partition N] [--train --seeds K]

1. `credit generate` N clients; `credit ingest` (one process: the one-machine features) timed.
2. `credit partition`, then `credit features` on a LocalCluster of 1 and of 2 worker processes (one thread
   each): wall time of the cluster part (submit -> last partition; start-up apart), CPU seconds summed over
   the tasks, the largest worker RSS. Fails if the serving file's data_fingerprint differs from the one of
   `credit ingest` (the features are not bit-for-bit equal).
3. --train: one-machine `credit train` with K seeds (the run-to-run noise of the out-of-fold AUC), then the
   Dask training (2 workers) with the same seeds: its nested AUC on the sample and its held-out AUC.
The machine's load (os.getloadavg) is printed with the figures: on a shared machine, wall-time ratios
understate what a quiet machine gives; the CPU seconds show the work done.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def _features(root: Path, workers: int) -> dict:
    from app.data.distributed import build_features_on_dask

    return build_features_on_dask(
        root / "sources", root / f"features-{workers}", root / f"dist-{workers}.db", workers=workers, progress=False
    )


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=20_000)
    ap.add_argument("--clients-per-partition", type=int, default=None)
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="keep the data here (default: a temporary folder)")
    args = ap.parse_args(argv)
    from app.data.ingest import ingest
    from app.data.synthetic import generate
    from app.scoring.db import connect, read_meta

    root = args.out or Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    root.mkdir(parents=True, exist_ok=True)
    per = args.clients_per_partition or max(1, args.clients // 8)
    out: dict = {"clients": args.clients, "clients_per_partition": per, "load_before": os.getloadavg()}
    if not (root / "raw" / "bureau.csv").is_file():
        generate(root / "raw", n_clients=args.clients, seed=42, progress=False)
    t0, c0 = time.perf_counter(), time.process_time()
    ingest(root / "raw", root / "one.db", progress=False)
    out["ingest_one_process"] = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}
    from app.data.distributed import partition_sources

    t0 = time.perf_counter()
    partition_sources(root / "raw", root / "sources", clients_per_partition=per, progress=False)
    out["partition_seconds"] = time.perf_counter() - t0
    conn = connect(root / "one.db", readonly=True)
    one = read_meta(conn)["data_fingerprint"]
    conn.close()
    for workers in (1, 2):
        s = _features(root, workers)
        if s["data_fingerprint"] != one:
            raise SystemExit(f"features with {workers} workers differ from credit ingest's")
        out[f"features_{workers}_workers"] = {
            k: s[k] for k in ("seconds", "startup_seconds", "write_seconds", "cpu_seconds", "worker_peak_rss_mb")
        }
    out["features_speedup_1_to_2"] = out["features_1_workers"]["seconds"] / out["features_2_workers"]["seconds"]
    out["features_equal_bit_for_bit"] = True
    if args.train:
        out["train"] = _train(root, args.seeds)
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=2))
    return out


def _train(root: Path, seeds: int) -> dict:
    import numpy as np

    from app.model.distributed import train_on_dask
    from app.model.train import train
    from app.scoring.bundle import as_manifest

    one, dist = [], []
    for seed in range(seeds):
        t0 = time.perf_counter()
        m = as_manifest(train(root / "one.db", root / f"model-one-{seed}", seed=seed, progress=False))
        one.append({"oof_auc": m.metrics.oof_auc, "seconds": time.perf_counter() - t0})
        t0 = time.perf_counter()
        m = as_manifest(train_on_dask(root / "features-2", root / "dist-2.db", root / f"model-dask-{seed}",
                                      seed=seed, workers=2, progress=False))  # fmt: skip
        d = m.distributed
        dist.append(
            {
                "oof_auc_sample": m.metrics.oof_auc,
                "held_out_auc": d.held_out.auc if d.held_out is not None else None,
                "final_fit": d.final_fit,
                "seconds": time.perf_counter() - t0,
            }
        )
    aucs = np.array([r["oof_auc"] for r in one])
    return {"one_machine": one, "dask": dist, "one_machine_auc_mean": aucs.mean(), "one_machine_auc_std": aucs.std()}


if __name__ == "__main__":
    main()
