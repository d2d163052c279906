"""LightGBM training time with 1 thread against 2, by data size: where more threads start to pay.

Each shape is a random matrix with a binary target; 50 rounds with the project's default parameters
(app.model.search.base_params), OpenMP waiting passively as in `credit train`; the minimum of
`--repeats` fits for each thread count, alternated. The ratio is 2 threads / 1 thread (below 1: the
second thread helps). `app.model.search.fit_threads` gives a fit 1 thread plus one per CELLS_PER_THREAD cells.

Run: python -m benchmarks.lgb_threads [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as app.model.train sets it, before LightGBM loads

import numpy as np  # noqa: E402

from app.model import search  # noqa: E402

SHAPES = [(1_000, 20), (4_000, 26), (4_000, 400), (16_000, 400), (64_000, 400), (250_000, 400)]
ROUNDS = 50


def run(repeats: int = 3) -> list[dict]:
    import lightgbm as lgb

    rng = np.random.default_rng(0)
    out = []
    for rows, features in SHAPES:
        X = rng.normal(size=(rows, features)).astype(np.float32)
        y = (X[:, 0] + rng.normal(size=rows) > 1).astype(np.int32)
        ds = lgb.Dataset(X, y, params={"max_bin": 127, "feature_pre_filter": False}, free_raw_data=False).construct()
        best = {1: float("inf"), 2: float("inf")}
        for _ in range(repeats):
            for threads in (1, 2):
                t0 = time.perf_counter()
                lgb.train(search.base_params(0, False, threads), ds, num_boost_round=ROUNDS)
                best[threads] = min(best[threads], time.perf_counter() - t0)
        out.append(
            {
                "rows": rows,
                "features": features,
                "s_1_thread": best[1],
                "s_2_threads": best[2],
                "ratio_2_over_1": best[2] / best[1],
                "fit_threads": search.fit_threads(rows, features, 2),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for row in run(args.repeats):
        print(" | ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
