"""HTTP in the quick pass: a correctness round, not a load test. Every server of benchmarks/bench_http.py is
started as in the full run (the two floors, our API with 1 and 2 workers at both durabilities, the FastAPI
baseline), and each one answers and is checked:

- every server: GET /clients/{id}/score for CHECKED clients, 32 at a time over 32 connections, all 200;
- ours: the probabilities of GET score, POST /score (the features of a known client) and POST /score/batch equal
  the calibrated reference (Booster.predict and the model's calibration map, what the SQL part checks score()
  against);
- the baseline: its probabilities equal Booster.predict on the same stored vectors;
- wrk itself: one one-second run at 32 connections against ours (1 worker, durable log), with no non-2xx answer,
  so the tool the full run measures with is known to work here.

The full run's timed rounds (`benchmarks/bench_http.py`: wrk rounds at 32 and 1 connections per server and
route, ratios to the floors) are left to `python -m benchmarks.run --only http`: a quick pass checks answers,
not speeds (docs/tests.md).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from benchmarks import bench_http
from benchmarks.common import calibrated_reference
from benchmarks.models import bench_pipeline

CHECKED = 64  # clients scored through each server (32 at a time)
CONNECTIONS = 32
AUTH = {"Authorization": f"Bearer {bench_http.KEY}"}


def _get_scores(url: str, ids: list[int]) -> list[dict]:
    """GET score of every id, CONNECTIONS at a time, each on a connection of its own; any non-200 is an error."""
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    with httpx.Client(base_url=url, headers=AUTH, limits=limits, timeout=60) as http:

        def one(cid: int) -> dict:
            r = http.get(f"/clients/{cid}/score")
            if r.status_code != 200:
                raise RuntimeError(f"{url}/clients/{cid}/score answered {r.status_code}: {r.text[:300]}")
            return r.json()

        with ThreadPoolExecutor(CONNECTIONS) as pool:
            return list(pool.map(one, ids))


def _post(url: str, path: str, body: dict) -> dict:
    r = httpx.post(url + path, json=body, headers=AUTH, timeout=60)
    if r.status_code != 200:
        raise RuntimeError(f"{url}{path} answered {r.status_code}: {r.text[:300]}")
    return r.json()


def _diff(got: list[float], expected: list[float]) -> float:
    return float(np.max(np.abs(np.asarray(got, dtype=float) - np.asarray(expected, dtype=float))))


def run(quick: bool = True) -> list[dict]:
    import apsw
    import lightgbm as lgb

    pipe = bench_pipeline(True)
    work = Path(tempfile.mkdtemp(prefix="bench-http-quick-"))
    try:
        shutil.copy(pipe.db, work / "credit.db")
        conn = apsw.Connection(str(work / "credit.db"))
        ids = [r[0] for r in conn.execute("SELECT client_id FROM features ORDER BY client_id LIMIT ?", (CHECKED,))]
        vectors = {
            cid: np.frombuffer(x, "<f4")
            for cid, x in conn.execute(
                f"SELECT client_id, x FROM features WHERE client_id IN ({','.join('?' * len(ids))})", ids
            )
        }
        names = [r[0] for r in conn.execute("SELECT name FROM feature_names ORDER BY idx")]
        conn.close()
        booster = lgb.Booster(model_file=str(pipe.model_dir / "model.txt"))
        X = np.stack([vectors[c] for c in ids])
        raw = booster.predict(X, num_threads=1)
        expected = calibrated_reference(booster, X, pipe.model_dir)
        applicant = {
            n: (None if np.isnan(v) else float(v)) for n, v in zip(names, vectors[ids[0]].tolist(), strict=True)
        }
        return _check_servers(work, pipe, ids, list(expected), list(raw), applicant)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_servers(
    work: Path, pipe, ids: list[int], expected: list[float], raw: list[float], applicant: dict
) -> list[dict]:
    rows = []
    servers = bench_http.start_servers(work, pipe, None)
    try:
        for s in servers:
            got = _get_scores(s.url, ids)
            row = {"name": s.name, "route": "GET /clients/{id}/score", "connections": CONNECTIONS}
            row |= {"requests": len(got), "non_2xx": 0}
            if s.kind == "ours":
                row["max_abs_diff"] = _diff([g["probability"] for g in got], expected)
            elif s.kind == "baseline":
                row["max_abs_diff"] = _diff([g["probability"] for g in got], raw)
            rows.append(row)
            if s.kind != "ours":
                continue
            one = _post(s.url, "/score", {"features": applicant})
            rows.append({"name": s.name, "route": "POST /score (applicant)", "requests": 1, "non_2xx": 0,
                         "max_abs_diff": _diff([one["probability"]], expected[:1])})  # fmt: skip
            batch = _post(s.url, "/score/batch", {"client_ids": ids})["results"]
            if [b["client_id"] for b in batch] != ids:
                raise RuntimeError(f"{s.name}: POST /score/batch answered other clients or another order")
            rows.append({"name": s.name, "route": f"POST /score/batch ({len(ids)} ids)", "requests": 1, "non_2xx": 0,
                         "max_abs_diff": _diff([b["probability"] for b in batch], expected)})  # fmt: skip
        ours = next(s for s in servers if s.name == bench_http.OURS)
        res = bench_http.wrk(ours.url, bench_http.lua_script(work, "get", ids), CONNECTIONS, 1)
        if res["non_2xx"] or not res["requests"]:
            raise RuntimeError(f"wrk against {ours.name}: {json.dumps(res)}")
        rows.append({"name": ours.name, "route": "GET /clients/{id}/score (wrk, 1 s)", "connections": CONNECTIONS,
                     "requests": res["requests"], "non_2xx": res["non_2xx"]})  # fmt: skip
    finally:
        for s in servers:
            s.stop()
    return rows
