"""Drift summary over 100,000 logged predictions: the PSI path and the Evidently report."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from benchmarks.models import bench_pipeline


def fill_log(db: Path, model_dir: Path, n: int) -> Path:
    """n prediction_log rows, in the operational store beside `db` (returned), with real feature vectors of
    `db` and their compiled-model scores."""
    import apsw

    from app import store
    from app.scoring.bundle import ModelBundle

    model = ModelBundle.load(model_dir)
    data = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    blobs = [r[0] for r in data.execute("SELECT x FROM features")]
    data.close()
    log_db = store.default_path(db)
    conn = store.open_store(log_db)
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(blobs), n)
    X = np.frombuffer(b"".join(blobs[i] for i in picks), dtype="<f4").reshape(n, -1)
    probs = model.predict(np.ascontiguousarray(X))
    now = time.time()
    with conn:
        conn.executemany(
            "INSERT INTO prediction_log (ts, request_id, client_id, features, probability, decision, model_id,"
            " latency_ms, role, endpoint) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                (
                    now - (n - i),
                    str(uuid.uuid4()),
                    None,
                    blobs[picks[i]],
                    float(probs[i]),
                    model.decide(float(probs[i])),
                    model.model_id,
                    1.0,
                    "officer",
                    "POST /score",
                )
                for i in range(n)
            ),
        )
    conn.close()
    return log_db


def run(quick: bool) -> list[dict]:
    from app.monitoring.drift import evidently_report, psi_report
    from app.scoring.db import connect

    pipe = bench_pipeline(quick)
    n = 2_000 if quick else 100_000
    work = Path(tempfile.mkdtemp(prefix="bench-drift-"))
    db = work / "credit.db"
    shutil.copy(pipe.db, db)
    try:
        log_db = fill_log(db, pipe.model_dir, n)
        manifest = json.loads((pipe.model_dir / "manifest.json").read_text())
        conn = connect(log_db, readonly=True)
        t0 = time.perf_counter()
        psi = psi_report(conn, manifest)
        psi_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        evidently_report(conn, pipe.model_dir, html_path=work / "drift.html")
        ev_s = time.perf_counter() - t0
        conn.close()
        return [
            {
                "name": f"PSI summary over {n:,} logged predictions",
                "seconds": psi_s,
                "dataset_drift": psi["dataset_drift"],
            },
            {"name": f"Evidently report over {n:,} logged predictions", "seconds": ev_s},
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
