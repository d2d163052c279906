"""GET score answers while `credit outcomes import` writes a large file into the store a running `credit serve`
logs into: the import writes in short transactions (app.monitoring.outcomes.WRITE_BATCH rows, then a pause), so
the answers should be delayed by at most one batch.

One run measures, against the same server: an idle baseline (no import), then the same requests during the
import of ROWS outcomes, and reports p50 / p99 / max latency of each phase, the import's wall time and its peak
RSS (os.wait4 of the import process). One client, one connection, requests back to back.

    .venv/bin/python -m benchmarks.bench_outcomes_import [--rows 1000000] [--baseline-s 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from benchmarks.bench_http import free_port, wait_ready
from benchmarks.common import CACHE, ROOT

KEY = "bench-outcomes-officer-key"


def pipeline(n_clients: int = 2000, seed: int = 7) -> tuple[Path, Path]:
    """A small quick-trained pipeline, cached: (database, model folder)."""
    from app.data.ingest import ingest
    from app.data.synthetic import generate
    from app.model.compile import compile_model
    from app.model.train import train

    root = CACHE / f"outcomes-pipeline-{n_clients}-{seed}"
    db, model_dir = root / "credit.db", root / "model"
    if not (root / "done").exists():
        root.mkdir(parents=True, exist_ok=True)
        generate(root / "raw", n_clients=n_clients, seed=seed, progress=False)
        ingest(root / "raw", db, progress=False)
        train(db, model_dir, seed=seed, quick=True, progress=False)
        compile_model(model_dir, progress=False)
        (root / "done").write_text("ok")
    return db, model_dir


def write_outcomes(path: Path, rows: int) -> None:
    with open(path, "w") as f:
        f.write("client_id,defaulted,observed_at\n")
        f.writelines(f"{1_000_000 + i},{i % 13 == 0:d},2026-{1 + i % 11:02d}-{1 + i % 28:02d}\n" for i in range(rows))


def latencies(url: str, ids: list[int], stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as http:
        i = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            r = http.get(f"/clients/{ids[i % len(ids)]}/score")
            out.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
            i += 1


def summary(xs: list[float]) -> dict:
    xs = sorted(xs)
    return {
        "requests": len(xs),
        "p50_ms": round(1000 * xs[len(xs) // 2], 2),
        "p99_ms": round(1000 * xs[int(len(xs) * 0.99)], 2),
        "max_ms": round(1000 * xs[-1], 2),
    }


def run(rows: int, baseline_s: float) -> dict:
    db, model_dir = pipeline()
    import apsw

    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    ids = [r[0] for r in conn.execute("SELECT client_id FROM features ORDER BY client_id LIMIT 200")]
    conn.close()
    work = Path(tempfile.mkdtemp(prefix="bench-outcomes-"))
    try:
        shutil.copy(db, work / "credit.db")
        csv_path = work / "outcomes.csv"
        write_outcomes(csv_path, rows)
        env = {
            **os.environ,
            "CREDIT_DB": str(work / "credit.db"),
            "CREDIT_LOG_DB": str(work / "log.db"),
            "CREDIT_MODEL_DIR": str(model_dir),
            "CREDIT_API_KEYS": f"{KEY}:officer",
            "CREDIT_KEYS_FILE": str(work / "no-keys"),
        }
        port = free_port()
        bindir = Path(sys.executable).parent
        server = subprocess.Popen([str(bindir / "credit"), "serve", "--port", str(port)], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url + "/readyz", server)
            phases: dict[str, list[float]] = {"idle": [], "import": []}
            stop = threading.Event()
            thread = threading.Thread(target=latencies, args=(url, ids, stop, phases["idle"]))
            thread.start()
            time.sleep(baseline_s)
            stop.set()
            thread.join()
            stop = threading.Event()
            thread = threading.Thread(target=latencies, args=(url, ids, stop, phases["import"]))
            thread.start()
            t0 = time.monotonic()
            child = subprocess.Popen([str(bindir / "credit"), "outcomes", "import", str(csv_path)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
            _pid, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
            import_s = time.monotonic() - t0
            stop.set()
            thread.join()
            out = child.stdout.read().decode().strip()
            assert child.returncode == 0, child.stderr.read().decode()
        finally:
            server.terminate()
            server.wait(timeout=60)
        load = os.getloadavg()
        return {
            "rows": rows,
            "import_s": round(import_s, 1),
            "import_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "import_cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "import_output": out,
            "idle": summary(phases["idle"]),
            "during_import": summary(phases["import"]),
            "load_average": [round(x, 1) for x in load],
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--baseline-s", type=float, default=20.0)
    args = ap.parse_args()
    print(json.dumps(run(args.rows, args.baseline_s), indent=2))


if __name__ == "__main__":
    main()
