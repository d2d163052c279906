"""Generate and ingest + features, wall time and peak RSS of each step (run as a child process)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FULL_KAGGLE_CLIENTS = 307_511


def measured(cmd: list[str], env: dict) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-2000:]}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024}


def run(quick: bool, clients: int | None = None) -> list[dict]:
    clients = clients or (2000 if quick else 20000)
    credit = str(Path(sys.executable).parent / "credit")
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    env = {**os.environ, "CREDIT_DB": str(work / "credit.db"), "CREDIT_MODEL_DIR": str(work / "model")}
    try:
        rows = []
        gen = measured([credit, "generate", "--clients", str(clients), "--out", str(work / "raw")], env)
        rows.append({"name": f"generate {clients:,} clients", **gen})
        ing = measured([credit, "ingest", str(work / "raw"), "--db", str(work / "credit.db")], env)
        rows.append({"name": f"ingest + features {clients:,} clients", **ing})
        rows.append({"name": "database size", "mb": (work / "credit.db").stat().st_size / 1e6})
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_full() -> list[dict]:
    return run(quick=False, clients=FULL_KAGGLE_CLIENTS)
