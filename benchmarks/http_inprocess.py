"""Event-loop CPU of one GET /clients/{id}/score through the ASGI app itself (no server, no socket), against the
floor app (benchmarks/floor_litestar.py): N requests at once, R times; thread CPU of the loop thread per
request, and the prediction log's requests per commit. With --profile, cProfile on thread CPU. `both`: ours and
the floor in one process, alternated round by round (a loaded machine moves both alike), each one's median.
--quick: the test session's pipeline (3,000 clients, quick search: what `bench_http --quick` serves).

Run: python -m benchmarks.http_inprocess [ours|floor|both] [--quick] [--concurrency 32] [--durability full] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.models import bench_pipeline, project_pipeline


def load_app(which: str, durability: str, quick: bool = False):
    pipe = bench_pipeline(quick=True) if quick else project_pipeline(3000)
    work = Path(tempfile.mkdtemp(prefix="http-inprocess-"))
    shutil.copy(pipe.db, work / "credit.db")
    os.environ.update(
        CREDIT_DB=str(work / "credit.db"),
        CREDIT_LOG_DB=str(work / "credit-log.db"),
        CREDIT_MODEL_DIR=str(pipe.model_dir),
        CREDIT_API_KEYS="k:officer",
        CREDIT_LOG_DURABILITY=durability,
    )
    import apsw

    conn = apsw.Connection(str(work / "credit.db"))
    ids = [r[0] for r in conn.execute("SELECT client_id FROM features LIMIT 500")]
    conn.close()
    if which == "floor":
        from benchmarks.floor_litestar import app
    else:
        from app.service.api import app_from_env

        app = app_from_env()
    return app, ids


async def requests(app, paths: list[str]) -> list[dict]:
    sent: list[dict] = []

    async def one(path: str) -> None:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"127.0.0.1"), (b"authorization", b"Bearer k")],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000), "state": {},
        }  # fmt: skip

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        await app(scope, receive, send)

    await asyncio.gather(*(one(p) for p in paths))
    return sent


async def main(which: str, concurrency: int, rounds: int, durability: str, profile: bool, quick: bool) -> None:
    app, ids = load_app("ours" if which == "both" else which, durability, quick)
    queue: asyncio.Queue = asyncio.Queue()
    started = asyncio.Event()

    async def lifespan_send(message: dict) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()

    await queue.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, queue.get, lifespan_send))
    await started.wait()
    paths = [f"/clients/{ids[i % len(ids)]}/score" for i in range(concurrency)]
    first = await requests(app, paths[:1])
    assert first[0]["status"] == 200, first
    for _ in range(20):
        await requests(app, paths)
    if which == "both":
        await alternate(app, paths, rounds)
    else:
        await measure(app, which, paths, concurrency, rounds, profile)
    await queue.put({"type": "lifespan.shutdown"})
    await task


async def alternate(ours, paths: list[str], rounds: int, per_round: int = 50) -> None:
    """Ours and the floor alternated, `per_round` batches each per round: thread CPU a request, medians."""
    import statistics

    from benchmarks.floor_litestar import app as floor

    for _ in range(20):
        await requests(floor, paths)
    cpu: dict[str, list[float]] = {"ours": [], "floor": []}
    for _ in range(max(1, rounds // per_round)):
        for name, app in (("ours", ours), ("floor", floor)):
            c0 = time.thread_time()
            for _ in range(per_round):
                await requests(app, paths)
            cpu[name].append((time.thread_time() - c0) / (per_round * len(paths)) * 1e6)
    med = {k: statistics.median(v) for k, v in cpu.items()}
    for k, v in cpu.items():
        print(f"{k}: loop thread CPU {med[k]:.1f} µs/request (median of {len(v)} rounds: {[round(x) for x in v]})")
    print(f"ours / floor: {med['ours'] / med['floor']:.2f}")
    print("prediction log:", ours.state.service.writer.stats())


async def measure(app, which: str, paths: list[str], concurrency: int, rounds: int, profile: bool) -> None:
    prof = cProfile.Profile(time.thread_time) if profile else None
    c0 = time.thread_time()
    if prof:
        prof.enable()
    for _ in range(rounds):
        await requests(app, paths)
    if prof:
        prof.disable()
    cpu = (time.thread_time() - c0) / (rounds * concurrency) * 1e6
    print(f"{which}: loop thread CPU {cpu:.1f} µs/request ({concurrency} at once, {rounds} times)")
    if which != "floor":
        print("prediction log:", app.state.service.writer.stats())
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("which", choices=["ours", "floor", "both"])
    parser.add_argument("--quick", action="store_true", help="the test session's pipeline (bench_http --quick)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--durability", choices=["full", "normal"], default="full")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.which, args.concurrency, args.rounds, args.durability, args.profile, args.quick))
