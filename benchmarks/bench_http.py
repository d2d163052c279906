"""HTTP: our API against the FastAPI + pydantic + Booster.predict baseline, loopback, wrk in a
second process at 1 and 32 connections. Latency p50/p99, throughput, server RSS."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from benchmarks.common import ROOT
from benchmarks.models import project_pipeline

KEY = "bench-officer-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def tree_rss_mb(pid: int) -> float:
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 1e6


def parse_unit(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def wrk(url: str, ids: list[int], connections: int, seconds: int) -> dict:
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
    script.write("ids = {" + ",".join(map(str, ids)) + "}\n")
    script.write(
        "request = function()\n  local id = ids[math.random(#ids)]\n"
        '  return wrk.format("GET", "/clients/" .. id .. "/score")\nend\n'
    )
    script.close()
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        script.name,
        "-H",
        f"Authorization: Bearer {KEY}",
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    p50 = parse_unit(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = parse_unit(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"p50_ms": p50, "p99_ms": p99, "rps": rps, "non_2xx": int(non2xx.group(1)) if non2xx else 0}


def serve(cmd: list[str], env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_ready(
        f"http://127.0.0.1:{port}/docs" if "baseline" in " ".join(cmd) else f"http://127.0.0.1:{port}/readyz", proc
    )
    return proc


def run(quick: bool) -> list[dict]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk; `just system-deps` does it)")
    pipe = project_pipeline(3000 if quick else 20000)
    work = Path(tempfile.mkdtemp(prefix="bench-http-"))
    db = work / "credit.db"
    shutil.copy(pipe.db, db)
    import apsw

    conn = apsw.Connection(str(db))
    ids = [r[0] for r in conn.execute("SELECT client_id FROM features ORDER BY random() LIMIT 2000")]
    conn.close()
    env = {
        **os.environ,
        "CREDIT_DB": str(db),
        "CREDIT_MODEL_DIR": str(pipe.model_dir),
        "CREDIT_API_KEYS": f"{KEY}:officer",
    }
    bindir = Path(sys.executable).parent

    def credit_serve(port: int, workers: int) -> list[str]:
        return [str(bindir / "credit"), "serve", "--port", str(port), "--workers", str(workers)]

    def uvicorn(target: str, port: int) -> list[str]:
        return [str(bindir / "uvicorn"), target, "--port", str(port), "--log-level", "warning", "--no-access-log"]

    servers = {
        "ours (Litestar + msgspec + SQL score())": lambda port: credit_serve(port, 1),
        "ours, 2 workers": lambda port: credit_serve(port, 2),
        "floor (Litestar hello world, no database, no log)": lambda port: uvicorn(
            "benchmarks.floor_litestar:app", port
        ),
        "baseline (FastAPI + pydantic + Booster.predict)": lambda port: uvicorn(
            "benchmarks.baseline_fastapi:app", port
        ),
    }
    seconds = 2 if quick else 10
    rows = []
    for name, cmd in servers.items():
        port = free_port()
        proc = serve(cmd(port), env, port)
        try:
            url = f"http://127.0.0.1:{port}"
            check = httpx.get(f"{url}/clients/{ids[0]}/score", headers={"Authorization": f"Bearer {KEY}"})
            check.raise_for_status()
            for connections in (1, 32):
                row = {"name": name, "connections": connections, **wrk(url, ids, connections, seconds)}
                row["server_rss_mb"] = tree_rss_mb(proc.pid)
                rows.append(row)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    for row in rows:
        base = next(r for r in rows if r["name"].startswith("baseline") and r["connections"] == row["connections"])
        row["throughput_ratio_vs_baseline"] = row["rps"] / base["rps"]
    shutil.rmtree(work, ignore_errors=True)
    return rows
