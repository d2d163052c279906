"""The prediction log's writer alone (app.store.group_writer.GroupWriter), no HTTP: what a commit costs.

- Writer thread CPU per row when the event loop hands it groups of N one-row submissions (N = 1, 2, 8, 32):
  the fixed cost of a commit against the cost of a row.
- Wall time of a lone request's commit on the loop's own thread (`in_flight` of one), with each durability.
- The floor of a durable commit: fdatasync of one 4 KiB page rewritten in the log's folder.

Run: python -m benchmarks.bench_predlog [--rows 6000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from app import store
from app.store import predlog
from app.store.group_writer import GroupWriter


def _rows(n: int, start: int) -> list[list[predlog.LogRow]]:
    """n one-row submissions shaped like GET score's (a stored client: no vector in the row)."""
    return [
        [
            predlog.LogRow(
                ts=time.time(),
                request_id=predlog.new_request_id(),
                client_id=100_000 + (start + j) % 3000,
                features=b"",
                probability=0.1,
                decision="accept",
                model_id="m" * 64,
                latency_ms=0.1,
                role="officer",
                endpoint="GET /clients/{id}/score",
                data_version="0123456789abcdef",
            )
        ]
        for j in range(n)
    ]


def _fresh_writer(folder: Path, durability: str) -> GroupWriter:
    db = Path(tempfile.mkdtemp(dir=folder)) / "log.db"
    store.open_store(db).close()
    return GroupWriter(db, durability)


def _thread_cpu(native_id: int) -> float:
    with open(f"/proc/self/task/{native_id}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def writer_cpu_per_row(folder: Path, durability: str, group: int, rows: int) -> dict:
    writer = _fresh_writer(folder, durability)

    async def run(rounds: int, start: int) -> None:
        for k in range(rounds):
            await asyncio.gather(*(writer.commit(r) for r in _rows(group, start + k * group)))

    try:
        asyncio.run(run(10, 0))  # warm-up: starts the thread, opens the connection
        cpu0 = _thread_cpu(writer._thread.native_id)
        t0 = time.perf_counter()
        asyncio.run(run(rows // group, 10 * group))
        wall = time.perf_counter() - t0
        cpu = _thread_cpu(writer._thread.native_id) - cpu0
    finally:
        writer.close()
    n = rows // group * group
    return {
        "name": f"writer thread, groups of {group}, durability {durability}",
        "cpu_us_per_row": cpu / n * 1e6,
        "wall_us_per_row": wall / n * 1e6,
        "rows_per_commit": writer.stats()["rows_per_commit"],
    }


def lone_commit(folder: Path, durability: str, n: int) -> dict:
    writer = _fresh_writer(folder, durability)
    times = []

    async def run() -> None:
        for i, sub in enumerate(_rows(n, 0)):
            t0 = time.perf_counter()
            await writer.commit(sub, in_flight={i})
            times.append(time.perf_counter() - t0)

    try:
        asyncio.run(run())
    finally:
        writer.close()
    return {
        "name": f"lone request's commit on the loop thread, durability {durability}",
        "p50_us": float(np.percentile(times, 50) * 1e6),
        "p90_us": float(np.percentile(times, 90) * 1e6),
        "inline_share": writer.inline / n,
    }


def fdatasync_floor(folder: Path, n: int) -> dict:
    path = Path(tempfile.mkdtemp(dir=folder)) / "page.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    times = []
    try:
        os.write(fd, b"\0" * 65536)
        os.fsync(fd)
        for i in range(n):
            os.pwrite(fd, os.urandom(4096), (i % 16) * 4096)
            t0 = time.perf_counter()
            os.fdatasync(fd)
            times.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
    return {
        "name": "fdatasync of one rewritten 4 KiB page (the floor of a durable commit)",
        "p50_us": float(np.percentile(times, 50) * 1e6),
        "p90_us": float(np.percentile(times, 90) * 1e6),
    }


def run(rows: int = 6000, folder: Path | None = None) -> list[dict]:
    folder = Path(folder or tempfile.mkdtemp(prefix="bench-predlog-"))
    out = [writer_cpu_per_row(folder, d, g, rows) for d in ("full", "normal") for g in (1, 2, 8, 32)]
    out += [lone_commit(folder, d, min(rows, 2000)) for d in ("full", "normal")]
    out.append(fdatasync_floor(folder, min(rows, 2000)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6000, help="rows per measurement")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the log files (default: a temporary one)")
    args = parser.parse_args()
    for row in run(args.rows, args.dir):
        print(" | ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
