"""Shadow scoring's cost: GET /clients/{id}/score on `credit serve` without and with a challenger installed, in
the same run, wrk at 1 and 32 connections, the two servers measured in alternation (ROUNDS short rounds). On a
shared machine the rounds disturbed by other processes are the slow ones, so the ratios use the least
disturbed round of each (lowest p50, highest throughput; medians are reported beside them). A noise-free
figure beside it: the scoring statement itself in process (`score_features(x)` vs `score_features(x),
challenger_score_features(x)` on one connection, minimum over repetitions).

Budgets (issue 19): with a challenger, p50 at 1 connection <= 1.10x and throughput at 32 connections
>= 0.85x of the same server without one. The challenger is the champion with the first tree's leaves changed
(`perturbed_copy`): a different model of the same size, so it costs what a real retrained challenger costs,
compiled through the same parity gates.

The quick pass (`--quick`) times nothing over HTTP: both servers answer GET score for 64 clients, the answers
with a challenger equal those without one, and each request's logged challenger_score equals the challenger's
own prediction of the logged features (`shadow_check`; the challenger is compiled at -O1).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

from app.scoring.bundle import identify
from benchmarks.bench_http import KEY, Server, lua_script, wrk
from benchmarks.models import bench_pipeline

ROUNDS = 7
QUICK_CHECKED = 64  # clients scored through both servers in the quick pass
P50_BUDGET = 1.10  # p50 at 1 connection, with / without
RPS_BUDGET = 0.85  # throughput at 32 connections, with / without


def perturbed_copy(model_dir: Path, dest: Path) -> Path:
    """A model folder like `model_dir` whose model.txt has the first tree's leaves changed (a new model id)."""
    dest.mkdir(parents=True)
    text = (model_dir / "model.txt").read_text()
    text = re.sub(r"^tree_sizes=.*\n", "", text, count=1, flags=re.M)  # sizes change with the leaves

    def scale(m: re.Match) -> str:
        return "leaf_value=" + " ".join(repr(float(v) * 1.5 + 0.05) for v in m.group(1).split())

    text = re.sub(r"^leaf_value=(.*)$", scale, text, count=1, flags=re.M)
    (dest / "model.txt").write_text(text)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest.pop("library", None)
    identify(manifest, text.encode())
    (dest / "manifest.json").write_text(json.dumps(manifest))
    for name in ("reference.npy", "reference_scores.npy"):
        if (model_dir / name).is_file():
            shutil.copy(model_dir / name, dest / name)
    return dest


def run(quick: bool) -> list[dict]:
    import apsw

    from app.model.compile import compile_model
    from app.scoring.challenger import install_challenger

    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk; `just system-deps` does it)")
    pipe = bench_pipeline(quick)
    work = Path(tempfile.mkdtemp(prefix="bench-shadow-"))
    setups = {}
    for name in ("without challenger", "with challenger"):
        folder = work / name.replace(" ", "-")
        folder.mkdir()
        shutil.copy(pipe.db, folder / "credit.db")
        shutil.copytree(pipe.model_dir, folder / "model", symlinks=True)
        setups[name] = folder
    src = perturbed_copy(pipe.model_dir, work / "next")
    challenger = install_challenger(
        src,
        setups["with challenger"] / "model",
        # quick: -O1 as in bench_quality (the parity gates run the same; the timed figures come from the full run)
        lambda d: compile_model(d, progress=False, tl2cgen_reference=False, flags=("-O1",) if quick else None),
    )
    conn = apsw.Connection(str(pipe.db), flags=apsw.SQLITE_OPEN_READONLY)
    ids = [r[0] for r in conn.execute("SELECT client_id FROM features ORDER BY random() LIMIT 2000")]
    conn.close()
    statement_rows = statement_cost(setups["with challenger"], ids, 200 if quick else 2000)
    bindir = Path(sys.executable).parent
    script = lua_script(work, "get", ids)
    servers: dict[str, Server] = {}
    try:
        for name, folder in setups.items():
            env = {
                **os.environ,
                "CREDIT_DB": str(folder / "credit.db"),
                "CREDIT_MODEL_DIR": str(folder / "model"),
                "CREDIT_API_KEYS": f"{KEY}:officer",
            }
            cmd = [str(bindir / "credit"), "serve", "--port", "{port}", "--workers", "1"]
            servers[name] = Server(name, cmd, env, "/readyz", "ours")
            httpx.get(f"{servers[name].url}/clients/{ids[0]}/score", headers={"Authorization": f"Bearer {KEY}"})
        if quick:  # a correctness pass: both servers answer, the shadow scores are logged and right (no timings)
            return shadow_check(servers, setups, challenger, ids[:QUICK_CHECKED]) + statement_rows
        seconds = 3
        samples: dict[tuple[str, int], list[dict]] = {}
        for _round in range(ROUNDS):
            for connections in (1, 32):
                for name in setups:  # alternate, so drift in the machine's load hits both
                    samples.setdefault((name, connections), []).append(
                        wrk(servers[name].url, script, connections, seconds)
                    )
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for (name, connections), runs in samples.items():
        rows.append(
            {
                "name": f"credit serve, 1 worker, {name}",
                "connections": connections,
                "p50_ms": min(r["p50_ms"] for r in runs),
                "rps": max(r["rps"] for r in runs),
                "p50_ms_median": statistics.median(r["p50_ms"] for r in runs),
                "rps_median": statistics.median(r["rps"] for r in runs),
                "p99_ms": statistics.median(r["p99_ms"] for r in runs),
                "non_2xx": sum(r["non_2xx"] for r in runs),
                "rounds": len(runs),
            }
        )
    base = {r["connections"]: r for r in rows if "without" in r["name"]}
    for row in rows:
        if "without" in row["name"]:
            continue
        b = base[row["connections"]]
        row["challenger_model_id"] = challenger.model_id[:12]
        row["p50_ratio_vs_without"] = row["p50_ms"] / b["p50_ms"]
        row["throughput_ratio_vs_without"] = row["rps"] / b["rps"]
        if row["connections"] == 1:
            row["budget"] = f"p50 ratio <= {P50_BUDGET}"
            row["within_budget"] = row["p50_ratio_vs_without"] <= P50_BUDGET
        else:
            row["budget"] = f"throughput ratio >= {RPS_BUDGET}"
            row["within_budget"] = row["throughput_ratio_vs_without"] >= RPS_BUDGET
    return rows + statement_rows


def shadow_check(servers: dict, setups: dict, challenger, ids: list[int]) -> list[dict]:
    """The quick pass's check: GET score of `ids` from both servers answers the champion's probabilities (the same
    with and without a challenger), and the server with one logs, for each request, the challenger's score of the
    same features (equal to the challenger bundle's own prediction)."""
    import time

    import apsw
    import numpy as np

    from app import store
    from app.store.predlog import scored_vectors

    answers = {}
    for name, server in servers.items():
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as http:
            got = [http.get(f"/clients/{cid}/score") for cid in ids]
        bad = [r.status_code for r in got if r.status_code != 200]
        if bad:
            raise RuntimeError(f"{name}: GET score answered {bad[:5]}")
        answers[name] = [r.json() for r in got]
    champion = [a["probability"] for a in answers["without challenger"]]
    shadowed = [a["probability"] for a in answers["with challenger"]]
    log_db = store.default_path(setups["with challenger"] / "credit.db")
    request_ids = [a["request_id"] for a in answers["with challenger"]]
    deadline = time.monotonic() + 30
    while True:  # the log writer commits in groups: wait for the rows of these requests
        conn = apsw.Connection(str(log_db), flags=apsw.SQLITE_OPEN_READONLY)
        source, vector = scored_vectors(conn)  # the scored vector of each row, where the log keeps it
        marks = ",".join("?" * len(request_ids))
        logged = {
            rid: (x, score)
            for rid, x, score in conn.execute(
                f"SELECT l.request_id, {vector}, l.challenger_score FROM {source} WHERE l.request_id IN ({marks})",
                request_ids,
            )
        }
        conn.close()
        if len(logged) == len(request_ids) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if len(logged) != len(request_ids) or any(score is None for _x, score in logged.values()):
        raise RuntimeError(f"{len(logged)} of {len(request_ids)} requests logged with a challenger score")
    X = np.stack([np.frombuffer(logged[r][0], "<f4") for r in request_ids])
    want = challenger.predict(np.ascontiguousarray(X))
    got = np.array([logged[r][1] for r in request_ids])
    if np.array_equal(want, np.array(champion)):  # else a log of the champion's scores would pass for the shadow's
        raise RuntimeError("the challenger scores these clients as the champion does: the check would prove nothing")
    return [
        {
            "name": "credit serve, 1 worker: GET score with a challenger = without (champion answers)",
            "requests": len(ids),
            "max_abs_diff": float(np.max(np.abs(np.array(shadowed) - np.array(champion)))),
        },
        {
            "name": "credit serve, 1 worker: logged challenger_score = the challenger's prediction",
            "requests": len(ids),
            "challenger_model_id": challenger.model_id[:12],
            "max_abs_diff": float(np.max(np.abs(got - want))),
        },
    ]


def statement_cost(folder: Path, ids: list[int], n: int, repeat: int = 7) -> list[dict]:
    """µs per scoring statement of the GET route, without and with the challenger's column, on one connection
    that has both libraries loaded (minimum over `repeat` passes over n ids, alternated)."""
    import time

    from app.scoring.bundle import ModelBundle
    from app.scoring.db import connect

    pair = ModelBundle.load_pair(folder / "model")
    conn = connect(folder / "credit.db", pair.champion, readonly=True, challenger=pair.challenger)
    sqls = {
        "without challenger": "SELECT client_id, score_features(x), NULL, x FROM features WHERE client_id = ?",
        "with challenger": "SELECT client_id, score_features(x), challenger_score_features(x), x FROM features"
        " WHERE client_id = ?",
    }
    best = dict.fromkeys(sqls, float("inf"))
    sample = (ids * (n // len(ids) + 1))[:n]
    try:
        for _ in range(repeat):
            for name, sql in sqls.items():
                t0 = time.perf_counter()
                for cid in sample:
                    conn.execute(sql, (cid,)).fetchall()
                best[name] = min(best[name], (time.perf_counter() - t0) / n * 1e6)
    finally:
        conn.close()
    base = best["without challenger"]
    return [
        {
            "name": f"scoring statement in process, {name}",
            "us_per_request": us,
            "added_us_per_request": us - base,
        }
        for name, us in best.items()
    ]
