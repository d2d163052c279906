"""Realised performance and fairness over a large operational store (issue 19 budgets: each <= 2 s over
1,000,000 log rows with 100,000 outcomes).

The store is filled directly (no model needed): 307,511 clients (the Kaggle size) with gender, age and family
status in a data file; log rows with feature blobs of the project's size (416 float32, so the log's pages are
as large as the API's), a probability, the decision at the threshold and one of two model ids, spread over 90
days; outcomes for random scored clients, observed after their decisions. Correctness in the same run: the
realised AUC equals sklearn's on the rows the report joined (max_abs_diff, checked by the quick pass too).
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

N_CLIENTS = 307_511
N_FEATURES = 416
THRESHOLD = 0.3
DAY = 86400.0


def fill(work: Path, n_log: int, n_outcomes: int, n_clients: int, seed: int = 0) -> tuple[Path, Path]:
    """(store path, data path), filled as the module text says."""
    import apsw

    from app.store import open_store

    rng = np.random.default_rng(seed)
    data_path, store_path = work / "data.db", work / "store.db"
    data = apsw.Connection(str(data_path))
    data.execute(
        "CREATE TABLE clients (client_id INTEGER PRIMARY KEY, gender TEXT, age_years REAL, family_status TEXT)"
    )
    ids = 100_000 + np.arange(n_clients)
    gender = rng.choice(["F", "M", "XNA"], size=n_clients, p=[0.65, 0.3499, 0.0001])
    age = np.round(rng.uniform(20, 70, n_clients), 1)
    family = rng.choice(["Married", "Single / not married", "Civil marriage", "Separated", "Widow"], size=n_clients)
    with data:
        data.executemany(
            "INSERT INTO clients VALUES (?, ?, ?, ?)",
            zip(ids.tolist(), gender.tolist(), age.tolist(), family.tolist(), strict=True),
        )
    data.close()

    store = open_store(store_path)
    t_end = time.time() - 30 * DAY
    who = rng.integers(0, n_clients, n_log)
    ts = np.sort(rng.uniform(t_end - 90 * DAY, t_end, n_log))
    risk = rng.beta(1.2, 10, n_clients)  # each client's true default probability
    prob = np.clip(risk[who] + rng.normal(0, 0.03, n_log), 0, 1)
    models = np.where(rng.uniform(size=n_log) < 0.5, "a" * 64, "b" * 64)
    blob = np.full(N_FEATURES, 0.5, dtype="<f4").tobytes()
    batch = 100_000
    for lo in range(0, n_log, batch):
        hi = min(lo + batch, n_log)
        with store:
            store.executemany(
                "INSERT INTO prediction_log (ts, request_id, client_id, features, probability, decision, model_id,"
                " latency_ms, role, endpoint) VALUES (?, ?, ?, ?, ?, ?, ?, 1.0, 'officer', 'GET /clients/{id}/score')",
                (
                    (
                        float(ts[i]),
                        str(uuid.uuid4()),
                        int(ids[who[i]]),
                        blob,
                        float(prob[i]),
                        "refuse" if prob[i] >= THRESHOLD else "accept",
                        str(models[i]),
                    )
                    for i in range(lo, hi)
                ),
            )
    scored = np.unique(who)
    chosen = rng.choice(scored, size=min(n_outcomes, len(scored)), replace=False)
    defaulted = (rng.uniform(size=len(chosen)) < risk[chosen]).astype(int)
    with store:
        store.executemany(
            "INSERT INTO outcomes (client_id, defaulted, observed_at, source, recorded_at)"
            " VALUES (?, ?, ?, 'bench', ?)",
            ((int(ids[c]), int(d), t_end + DAY, t_end + DAY) for c, d in zip(chosen, defaulted, strict=True)),
        )
    store.execute("ANALYZE")
    store.close()
    return store_path, data_path


def best_of(fn, repeat: int) -> tuple[float, float, object]:
    """(minimum wall seconds, minimum CPU seconds of this process, last result) over `repeat` warm calls. The
    CPU figure is what the call costs on a quiet machine; the wall figure also holds waiting for the cores when
    other work shares them."""
    fn()  # warm-up: imports (fairlearn, pandas) and the page cache
    out, wall, cpu = None, float("inf"), float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    return wall, cpu, out


def run(quick: bool) -> list[dict]:
    import apsw
    from sklearn.metrics import roc_auc_score

    from app.monitoring import fairness, performance

    n_log, n_outcomes, n_clients = (5_000, 1_000, 3_000) if quick else (1_000_000, 100_000, N_CLIENTS)
    work = Path(tempfile.mkdtemp(prefix="bench-monitoring-"))
    try:
        t0 = time.perf_counter()
        store_path, data_path = fill(work, n_log, n_outcomes, n_clients)
        fill_s = time.perf_counter() - t0
        store = apsw.Connection(str(store_path), flags=apsw.SQLITE_OPEN_READONLY)
        repeat = 1 if quick else 3
        perf_s, perf_cpu, rep = best_of(lambda: performance.report(store, fn_cost=10, fp_cost=1, period="week"), repeat)
        fair_s, fair_cpu, fair = best_of(lambda: fairness.live_report(store_path, data_path), repeat)
        j = performance.join(store)
        auc_diff = abs(rep["overall"]["auc"] - roc_auc_score(j.defaulted, j.probability))
        store.close()
        size_mb = store_path.stat().st_size / 2**20
        label = f"{n_log:,} log rows, {rep['matched']:,} outcomes joined"
        return [
            {
                "name": f"realised performance: {label} (per model and week)",
                "seconds": perf_s,
                "cpu_seconds": perf_cpu,
                "budget_s": 2.0,
                "max_abs_diff": auc_diff,
                "auc": rep["overall"]["auc"],
                "store_mb": round(size_mb, 1),
                "fill_s": round(fill_s, 1),
            },
            {
                "name": f"fairness of live decisions: {fair['clients']:,} clients, {fair['outcomes']:,} with outcomes",
                "seconds": fair_s,
                "cpu_seconds": fair_cpu,
                "budget_s": 2.0,
                "flagged": fair["flagged"],
            },
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
