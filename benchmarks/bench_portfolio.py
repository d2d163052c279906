"""The dashboard's landing worklist on a full-scale portfolio: GET /portfolio, /portfolio/borderline and
/portfolio/recent over HTTP on loopback, against a database of 307,511 clients (quick: 10,000).

The database is the demo-size pipeline's, its features rows replicated under new client ids up to the
size (the model and the scoring are the real ones; only the number of rows matters here). The API
scores the portfolio once in the background at start ("warm" row: seconds until the first call answers);
after that every call answers from memory. Budget: <= 200 ms per call.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import httpx
import numpy as np

from benchmarks.common import CACHE
from benchmarks.models import bench_pipeline

FULL_CLIENTS = 307_511
KEY = "bench-officer-key"


def _portfolio_db(pipe, n_clients: int):
    import apsw

    db = CACHE / f"portfolio-{n_clients}-{pipe.root.name}.db"  # per pipeline folder: its model and version of app/
    if db.exists():
        return db
    tmp = db.with_suffix(".tmp")
    shutil.copy(pipe.db, tmp)
    conn = apsw.Connection(str(tmp))
    base = have = conn.execute("SELECT count(*) FROM features").fetchone()[0]
    conn.execute("BEGIN")
    k = 1
    while have < n_clients:
        take = min(base, n_clients - have)
        conn.execute(
            "INSERT INTO features(client_id, x) SELECT client_id + ?, x FROM features WHERE client_id < 1000000 "
            "ORDER BY client_id LIMIT ?",
            (k * 1_000_000, take),
        )
        have += take
        k += 1
    conn.execute("COMMIT")
    conn.close()
    os.replace(tmp, db)
    for old in [*CACHE.glob(f"portfolio-{n_clients}-*.db"), CACHE / f"portfolio-{n_clients}.db"]:
        if old != db and old.exists():  # the copies made for older pipelines
            old.unlink()
    return db


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(quick: bool) -> list[dict]:
    pipe = bench_pipeline(quick)
    n_clients = 10_000 if quick else FULL_CLIENTS
    db = _portfolio_db(pipe, n_clients)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_")}
    env.update(CREDIT_API_KEYS=f"{KEY}:officer", CREDIT_KEYS_FILE="/nonexistent")
    work = CACHE / "portfolio-run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    run_db = work / "credit.db"
    shutil.copy(db, run_db)
    cmd = [sys.executable, "-m", "app.cli.main", "serve", "--db", str(run_db), "--model", str(pipe.model_dir)]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    t_start = time.perf_counter()
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows: list[dict] = []
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {KEY}"})
        deadline = time.monotonic() + 300
        while True:
            try:
                if client.get("/portfolio", timeout=120).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the API did not answer /portfolio")
            time.sleep(0.2)
        warm = time.perf_counter() - t_start
        summary = client.get("/portfolio").json()
        rows.append(
            {
                "name": "API start until /portfolio answers (process start, then every client scored once)",
                "clients": summary["clients"],
                "seconds": warm,
            }
        )
        rows.append(
            {
                "name": "scoring the whole portfolio, inside the API (once per model and data)",
                "clients": summary["clients"],
                "seconds": summary["scoring_seconds"],
            }
        )
        ids = [r["client_id"] for r in client.get("/portfolio/borderline", params={"limit": 50}).json()["rows"]]
        for cid in ids:
            client.get(f"/clients/{cid}/score")
        repeat = 5 if quick else 100
        for path, params in (
            ("/portfolio", {}),
            ("/portfolio/borderline", {"limit": 10}),
            ("/portfolio/recent", {"limit": 10}),
        ):
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                r = client.get(path, params=params)
                times.append((time.perf_counter() - t0) * 1e3)
                assert r.status_code == 200, r.text
            rows.append(
                {
                    "name": f"GET {path}",
                    "clients": summary["clients"],
                    "ms_median": float(np.median(times)),
                    "ms_p99": float(np.percentile(times, 99)),
                    "ms_max": float(max(times)),
                    "budget_ms": 200,
                }
            )
        client.close()
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)
    return rows
