"""/healthz and GET score latency while the heavy monitoring reports are built, against idle.

    python -m benchmarks.bench_report_isolation [--seconds 10] [--requests 2000]

A real `credit serve` (1 worker) over the detection benchmark's pipeline (3,000 clients); `credit traffic`
scores --requests stored clients by id and `credit outcomes simulate` gives them outcomes. Then one client,
sequential requests on one connection, alternates GET /healthz and GET /clients/{id}/score for --seconds:
once idle, once while other threads keep asking for the Evidently report (GET /monitoring/drift/report) and
fairness over the whole log (GET /monitoring/fairness), each request for a new window so that no cache
answers. Both reports run in a worker process (app.monitoring.worker). Goal: p99 at most 50 ms above idle.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from benchmarks.bench_drift_detection import pipeline
from benchmarks.bench_http import free_port, wait_ready
from benchmarks.common import ROOT

KEY = "bench-admin-key-5b1e"


def probe(url: str, client_id: int, seconds: float) -> dict:
    lat: dict[str, list[float]] = {"healthz": [], "score": []}
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for name, path in (("healthz", "/healthz"), ("score", f"/clients/{client_id}/score")):
                t = time.perf_counter()
                r = c.get(path)
                lat[name].append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.text
    return {
        name: {"n": len(v), "p50_ms": float(np.percentile(v, 50)), "p99_ms": float(np.percentile(v, 99))}
        for name, v in lat.items()
    }


def reports(url: str, stop: threading.Event, done: list, k: int) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    i = 0
    with httpx.Client(base_url=url, headers=headers, timeout=600) as c:
        while not stop.is_set():
            i += 1
            t = time.perf_counter()
            path, params = (
                ("/monitoring/drift/report", {"since": i * 0.001})
                if (i + k) % 2
                else ("/monitoring/fairness", {"min_group": 30 + i})
            )
            try:
                status = c.get(path, params=params).status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            done.append((path, status, time.perf_counter() - t))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--requests", type=int, default=2000)
    args = ap.parse_args()
    db0, model0 = pipeline(3000, 7, quick=True)
    work = Path(tempfile.mkdtemp(prefix="bench-isolation-"))
    shutil.copy(db0, work / "credit.db")
    shutil.copytree(model0, work / "model")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_")}
    env.update(CREDIT_API_KEYS=f"{KEY}:admin", CREDIT_KEYS_FILE=str(work / "none"))
    cmd = [sys.executable, "-m", "app.cli.main", "serve", "--db", str(work / "credit.db"), "--model",
           str(work / "model"), "--port", str(port), "--workers", "1"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        wait_ready(url + "/readyz", proc)
        from app.monitoring.traffic import run_traffic

        sent = run_traffic(work / "credit.db", url, n=args.requests, key=KEY, concurrency=4, seed=1)
        where = ["--db", str(work / "credit.db")]
        subprocess.run([sys.executable, "-m", "app.cli.main", "outcomes", "simulate", *where], env=env, check=True)
        log = httpx.get(url + "/monitoring/log", params={"limit": 1}, headers={"Authorization": f"Bearer {KEY}"})
        cid = int(log.json()["rows"][0]["client_id"])
        idle = probe(url, cid, args.seconds)
        stop, done = threading.Event(), []
        threads = [threading.Thread(target=reports, args=(url, stop, done, k), daemon=True) for k in range(2)]
        for t in threads:
            t.start()
        time.sleep(1.0)  # the first workers are under way
        busy = probe(url, cid, args.seconds)
        stop.set()
        for t in threads:
            t.join(1.0)  # a report still being built is left to the server's end
        load = os.getloadavg()
        out = {
            "traffic_ok": sent["ok"],
            "idle": idle,
            "while_reports": busy,
            "reports_built": [(p, s, round(sec, 2)) for p, s, sec in done],
            "p99_increase_ms": {k: busy[k]["p99_ms"] - idle[k]["p99_ms"] for k in idle},
            "loadavg": load,
        }
        print(json.dumps(out, indent=2))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its report workers (its own session)
        proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
