"""HTTP: our API against its floors (benchmarks/floor_litestar.py: a Litestar hello world, and
benchmarks/floor_bare.py: a bare ASGI app returning a fixed JSON, both served by the same uvicorn) and the
FastAPI + pydantic + Booster.predict baseline, loopback, wrk (one thread) in a second process.

The machine is shared and loaded, so absolute figures drift by 30 % between minutes: every server is started
once, then ROUNDS rounds run wrk against each of them in turn (the order rotates each round), and each figure
is reported as the median over rounds of its ratio to the floor measured in the same round.

Budget (docs/performance.md): GET /clients/{id}/score at >= 0.8 of the Litestar floor's throughput and >= 0.4 of
the bare floor's at 32 connections, and a p50 at 1 connection <= 2x the Litestar floor's, with durable logging
(CREDIT_LOG_DURABILITY=full); the FastAPI baseline stays >= 10x slower. Also: durability `normal`, 2 workers,
POST /score (an applicant) and POST /score/batch (per row), and where the time goes: CPU seconds of the
event-loop thread and of the other threads per request (1 worker). With a durable log a request alone waits for
one fdatasync, so each round also probes that floor on the log's disk (benchmarks/bench_predlog.py) and the p50 at
one connection is also reported less it (`p50_less_fdatasync_ratio_vs_floor`).

Run alone: `python -m benchmarks.bench_http --rounds 5 --seconds 5` (prints the table and the budget check).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from benchmarks.common import ROOT
from benchmarks.models import bench_pipeline

KEY = "bench-officer-key"
BATCH = 100  # client ids per POST /score/batch
BUDGET_RPS_RATIO = 0.8  # GET score / floor at 32 connections, at least
BUDGET_BARE_RATIO = 0.4  # GET score / bare floor at 32 connections, at least
BUDGET_P50_RATIO = 2.0  # GET score / floor p50 at 1 connection, at most
FLOOR = "floor (Litestar hello world, no database, no log)"
BARE = "bare floor (plain ASGI app, fixed JSON)"
BASELINE = "baseline (FastAPI + pydantic + Booster.predict)"
OURS = "ours, 1 worker, durability full"
FSYNC = ("fdatasync of one 4 KiB page in the log's folder", "", 0)  # samples key: one probe a round


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
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


def lua_script(work: Path, kind: str, ids: list[int], body: bytes = b"") -> Path:
    """A wrk script: GET score of a random known client, or a fixed POST body."""
    path = work / f"{kind}.lua"
    if kind == "get":
        text = (
            "ids = {" + ",".join(map(str, ids)) + "}\n"
            "request = function()\n  local id = ids[math.random(#ids)]\n"
            '  return wrk.format("GET", "/clients/" .. id .. "/score")\nend\n'
        )
    else:
        route = {"post": "/score", "batch": "/score/batch"}[kind]
        text = (
            f'wrk.method = "POST"\nwrk.path = "{route}"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(body.decode())}\n"
        )
    path.write_text(text)
    return path


def wrk(url: str, script: Path, connections: int, seconds: float) -> dict:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(script)]
    cmd += ["-H", f"Authorization: Bearer {KEY}", url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    p50 = parse_unit(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = parse_unit(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    bad = int(non2xx.group(1)) if non2xx else 0
    return {"p50_ms": p50, "p99_ms": p99, "rps": rps, "requests": total, "non_2xx": bad}


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of the server's event-loop thread (the main one) and of its other threads."""
    out = {"loop": 0.0, "other": 0.0}
    for t in psutil.Process(pid).threads():
        out["loop" if t.id == pid else "other"] += t.user_time + t.system_time
    return out


class Server:
    def __init__(self, name: str, cmd: list[str], env: dict, ready_path: str, kind: str, workers: int = 1):
        self.name, self.kind, self.workers = name, kind, workers
        self.port = free_port()
        cmd = [c.replace("{port}", str(self.port)) for c in cmd]
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_ready(self.url + ready_path, self.proc)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_servers(
    work: Path, pipe, only: str | None, granian: str | None = None, baseline: bool = True
) -> list[Server]:
    bindir = Path(sys.executable).parent
    base_env = {
        **os.environ,
        "CREDIT_DB": str(work / "credit.db"),
        "CREDIT_MODEL_DIR": str(pipe.model_dir),
        "CREDIT_API_KEYS": f"{KEY}:officer",
    }
    uvicorn = [str(bindir / "uvicorn"), "--port", "{port}", "--log-level", "warning", "--no-access-log"]
    specs = [
        (FLOOR, [*uvicorn, "benchmarks.floor_litestar:app"], {}, "/readyz", "floor", 1),
        (BARE, [*uvicorn, "benchmarks.floor_bare:app"], {}, "/readyz", "floor", 1),
        (OURS, None, {"CREDIT_LOG_DURABILITY": "full"}, "/readyz", "ours", 1),
        ("ours, 1 worker, durability normal", None, {"CREDIT_LOG_DURABILITY": "normal"}, "/readyz", "ours", 1),
        ("ours, 2 workers, durability full", None, {"CREDIT_LOG_DURABILITY": "full"}, "/readyz", "ours", 2),
        ("ours, 2 workers, durability normal", None, {"CREDIT_LOG_DURABILITY": "normal"}, "/readyz", "ours", 2),
        (BASELINE, [*uvicorn, "benchmarks.baseline_fastapi:app"], {}, "/docs", "baseline", 1),
    ]
    if granian is not None:  # an experiment: granian (not a dependency) from `granian` (a folder on PYTHONPATH)
        gr = [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", "{port}"]
        gr += ["--workers", "1", "--log-level", "warning", "--no-ws"]
        path = {"PYTHONPATH": os.pathsep.join([granian, str(ROOT)])}
        specs.insert(1, ("floor under granian", [*gr, "benchmarks.floor_litestar:app"], path, "/readyz", "floor2", 1))
        ours = [*gr, "--factory", "app.service.api:app_from_env"]
        extra = {**path, "CREDIT_LOG_DURABILITY": "full"}
        specs.insert(3, ("ours under granian (no draining, no guards)", ours, extra, "/readyz", "ours", 1))
    servers = []
    try:
        for i, (name, cmd, extra, ready, kind, workers) in enumerate(specs):
            if only and kind == "ours" and only not in name and "granian" not in name:
                continue
            if kind == "baseline" and not baseline:
                continue
            if cmd is None:
                cmd = [str(bindir / "credit"), "serve", "--port", "{port}", "--workers", str(workers)]
            env = {**base_env, "CREDIT_LOG_DB": str(work / f"log-{i}.db"), **extra}
            servers.append(Server(name, cmd, env, ready, kind, workers))
    except BaseException:  # one server never came up: stop the ones already running
        for s in servers:
            s.stop()
        raise
    return servers


def run(
    quick: bool,
    rounds: int | None = None,
    seconds: float | None = None,
    only: str | None = None,
    granian: str | None = None,
    baseline: bool = True,
) -> list[dict]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk; `just system-deps` does it)")
    rounds = rounds or (2 if quick else 5)
    seconds = seconds or (2 if quick else 5)
    pipe = bench_pipeline(quick)
    work = Path(tempfile.mkdtemp(prefix="bench-http-"))
    shutil.copy(pipe.db, work / "credit.db")
    import apsw
    import numpy as np

    conn = apsw.Connection(str(work / "credit.db"))
    ids = [r[0] for r in conn.execute("SELECT client_id FROM features ORDER BY random() LIMIT 2000")]
    names = [r[0] for r in conn.execute("SELECT name FROM feature_names ORDER BY idx")]
    x = np.frombuffer(conn.execute("SELECT x FROM features WHERE client_id = ?", (ids[0],)).fetchall()[0][0], "<f4")
    conn.close()
    applicant = {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, x.tolist(), strict=True)}
    scripts = {
        "get": lua_script(work, "get", ids),
        "post": lua_script(work, "post", ids, json.dumps({"features": applicant}).encode()),
        "batch": lua_script(work, "batch", ids, json.dumps({"client_ids": ids[:BATCH]}).encode()),
    }
    servers = start_servers(work, pipe, only, granian, baseline)
    samples: dict[tuple[str, str, int], list[dict]] = {}
    try:
        for s in servers:  # warm up and check every route answers 200
            httpx.get(f"{s.url}/clients/{ids[0]}/score", headers={"Authorization": f"Bearer {KEY}"}).raise_for_status()
            wrk(s.url, scripts["get"], 4, 1)
        for r in range(rounds):
            order = servers[r % len(servers) :] + servers[: r % len(servers)]
            for s in order:
                for connections in (32, 1):
                    cpu0 = thread_cpu(s.proc.pid) if s.kind in ("ours", "floor", "floor2") and s.workers == 1 else None
                    res = wrk(s.url, scripts["get"], connections, seconds)
                    if cpu0 is not None and connections == 32:
                        cpu1 = thread_cpu(s.proc.pid)
                        for k in cpu0:
                            res[f"{k}_thread_us_per_request"] = (cpu1[k] - cpu0[k]) * 1e6 / max(res["requests"], 1)
                    res["server_rss_mb"] = tree_rss_mb(s.proc.pid)
                    samples.setdefault((s.name, "GET /clients/{id}/score", connections), []).append(res)
                if s.kind == "ours":
                    if s.name == OURS:  # one probe a round, beside the durable server
                        samples.setdefault(FSYNC, []).append(fdatasync_p50_ms(work))
                    posts = (("post", "POST /score (applicant)"), ("batch", f"POST /score/batch ({BATCH} ids)"))
                    for kind, route in posts:
                        res = wrk(s.url, scripts[kind], 32, seconds)
                        samples.setdefault((s.name, route, 32), []).append(res)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)
    return summarise(samples, rounds)


def fdatasync_p50_ms(folder: Path, n: int = 200) -> dict:
    """The floor of a durable commit on the log's disk, now (benchmarks/bench_predlog.py's probe): p50 of n."""
    from benchmarks.bench_predlog import fdatasync_floor

    return {"p50_ms": fdatasync_floor(folder, n)["p50_us"] / 1000.0}


def summarise(samples: dict, rounds: int) -> list[dict]:
    """One row per (server, route, connections): medians over rounds, ratios to the floor per round. With a
    durable log, the p50 at one connection is also given less the fdatasync floor measured in the same round."""
    get = "GET /clients/{id}/score"
    rows = []
    samples = dict(samples)
    syncs = samples.pop(FSYNC, [])
    for (name, route, connections), runs in samples.items():
        floor = samples.get((FLOOR, get, connections), [])
        bare = samples.get((BARE, get, connections), [])
        base = samples.get((BASELINE, get, connections), [])
        row = {
            "name": name,
            "route": route,
            "connections": connections,
            "rounds": len(runs),
            "rps": statistics.median(r["rps"] for r in runs),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "non_2xx": sum(r["non_2xx"] for r in runs),
        }
        if route == get and len(floor) == len(runs):
            ratios = [r["rps"] / f["rps"] for r, f in zip(runs, floor, strict=True)]
            row["rps_ratio_vs_floor"] = statistics.median(ratios)
            row["rps_ratio_vs_floor_per_round"] = [round(v, 3) for v in ratios]
            p50s = [r["p50_ms"] / f["p50_ms"] for r, f in zip(runs, floor, strict=True)]
            row["p50_ratio_vs_floor"] = statistics.median(p50s)
            if "durability full" in name and connections == 1 and len(syncs) == len(runs):
                less = [(r["p50_ms"] - y["p50_ms"]) / f["p50_ms"] for r, f, y in zip(runs, floor, syncs, strict=True)]
                row["p50_less_fdatasync_ratio_vs_floor"] = statistics.median(less)
                row["fdatasync_p50_ms"] = statistics.median(y["p50_ms"] for y in syncs)
        if route == get and len(bare) == len(runs):
            ratios = [r["rps"] / f["rps"] for r, f in zip(runs, bare, strict=True)]
            row["rps_ratio_vs_bare"] = statistics.median(ratios)
            row["rps_ratio_vs_bare_per_round"] = [round(v, 3) for v in ratios]
            row["p50_ratio_vs_bare"] = statistics.median(
                r["p50_ms"] / f["p50_ms"] for r, f in zip(runs, bare, strict=True)
            )
        if route == get and len(base) == len(runs):
            row["throughput_ratio_vs_baseline"] = statistics.median(
                r["rps"] / b["rps"] for r, b in zip(runs, base, strict=True)
            )
        if route.startswith("POST /score/batch"):
            row["rows_per_s"] = row["rps"] * BATCH
            row["us_per_row"] = 1e6 / row["rows_per_s"]
        for k in ("loop_thread_us_per_request", "other_thread_us_per_request"):
            if all(k in r for r in runs):
                row[k] = statistics.median(r[k] for r in runs)
        if "server_rss_mb" in runs[0]:
            row["server_rss_mb"] = max(r["server_rss_mb"] for r in runs)
        rows.append(row)
    return rows


def budget(rows: list[dict]) -> dict[str, object]:
    """The budget checks on OURS (1 worker, durable log)."""
    get = "GET /clients/{id}/score"
    at32 = next(r for r in rows if r["name"] == OURS and r["route"] == get and r["connections"] == 32)
    at1 = next(r for r in rows if r["name"] == OURS and r["route"] == get and r["connections"] == 1)
    out: dict[str, object] = {
        "rps_ratio_vs_floor_32": at32.get("rps_ratio_vs_floor"),
        "rps_ratio_vs_bare_32": at32.get("rps_ratio_vs_bare"),
        "p50_ratio_vs_floor_1": at1.get("p50_ratio_vs_floor"),
        "p50_less_fdatasync_ratio_vs_floor_1": at1.get("p50_less_fdatasync_ratio_vs_floor"),
        "fdatasync_p50_ms": at1.get("fdatasync_p50_ms"),
        "baseline_ratio_32": at32.get("throughput_ratio_vs_baseline"),
    }
    out["rps_ok"] = (out["rps_ratio_vs_floor_32"] or 0) >= BUDGET_RPS_RATIO
    out["bare_ok"] = (out["rps_ratio_vs_bare_32"] or 0) >= BUDGET_BARE_RATIO
    out["p50_ok"] = (out["p50_ratio_vs_floor_1"] or 1e9) <= BUDGET_P50_RATIO
    out["baseline_ok"] = (out["baseline_ratio_32"] or 0) >= 10
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3,000 clients instead of 20,000")
    parser.add_argument("--only", help="run only our servers whose name contains this (plus floor and baseline)")
    parser.add_argument("--granian", help="also serve the floor and ours with granian installed in this folder")
    parser.add_argument("--no-baseline", action="store_true", help="leave out the FastAPI baseline (slow to start)")
    args = parser.parse_args()
    rows = run(args.quick, args.rounds, args.seconds, args.only, args.granian, not args.no_baseline)
    cols = ["name", "route", "connections", "rps", "p50_ms", "p99_ms", "rps_ratio_vs_floor", "p50_ratio_vs_floor",
            "rps_ratio_vs_bare",
            "throughput_ratio_vs_baseline", "us_per_row", "loop_thread_us_per_request", "other_thread_us_per_request",
            "non_2xx", "server_rss_mb"]  # fmt: skip
    print("| " + " | ".join(cols) + " |")
    print("|" + " --- |" * len(cols))
    for r in rows:
        cells = [r.get(c, "") for c in cols]
        print("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in cells) + " |")
    for r in rows:
        if "rps_ratio_vs_floor_per_round" in r:
            print(f"{r['name']} @ {r['connections']}: ratio per round {r['rps_ratio_vs_floor_per_round']}")
        if "rps_ratio_vs_bare_per_round" in r:
            print(f"{r['name']} @ {r['connections']}: to the bare floor per round {r['rps_ratio_vs_bare_per_round']}")
    print(f"load {os.getloadavg()[0]:.1f} (1 min) at the end of the run")
    if any(r["name"] == OURS for r in rows):
        print("budget:", json.dumps(budget(rows)))


if __name__ == "__main__":
    main()
