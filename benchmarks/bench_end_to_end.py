"""The distributed pipeline end to end on generated clients: wall time and peak memory per step.

python -m benchmarks.bench_end_to_end --clients 1000000 --out /tmp/e2e-1m [--workers 2] [--train-args "..."]

Each step is the `credit` command a user runs, in its own process tree:

    generate   credit generate --clients N --out OUT/raw
    partition  credit partition OUT/raw --out OUT/sources --clients-per-partition P
    features   credit features --sources OUT/sources --out OUT/features --db OUT/credit.db --workers W
    train      credit train --features OUT/features --db OUT/credit.db --model OUT/model --workers W ...
    compile    credit compile --model OUT/model
    score      credit score-batch --input OUT/features --output OUT/scores --model OUT/model --workers W

A sampler thread reads the resident memory of every process of the step's tree (the command and, on Dask,
its scheduler and worker processes) every 0.25 s: per step, the peak of each process (the largest worker's
is reported as `worker_peak_rss_mb`, the command's own as `driver_peak_rss_mb`) and the peak of their sum.
A sampled peak can miss a spike shorter than the period; it never overstates. `cpu_seconds` is the user +
system time of every process of the step (getrusage of the reaped children): on a shared machine the wall
time stretches with the load, the CPU seconds show the work. Every finished step is
appended to OUT/steps.jsonl at once (a long run that is stopped keeps its finished steps); a step whose
output is already there is skipped unless --redo. The machine's load average is recorded per step.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

STEPS = ("generate", "partition", "features", "train", "compile", "score")


def _commands(args: argparse.Namespace) -> dict[str, list[str]]:
    out, w = args.out, str(args.workers)
    credit = [str(Path(sys.executable).with_name("credit"))]
    return {
        "generate": credit + ["generate", "--clients", str(args.clients), "--out", f"{out}/raw", "--no-progress"],
        "partition": credit + ["partition", f"{out}/raw", "--out", f"{out}/sources",
                               "--clients-per-partition", str(args.clients_per_partition), "--no-progress"],
        "features": credit + ["features", "--sources", f"{out}/sources", "--out", f"{out}/features",
                              "--db", f"{out}/credit.db", "--workers", w, "--no-progress"],
        "train": credit + ["train", "--features", f"{out}/features", "--db", f"{out}/credit.db",
                           "--model", f"{out}/model", "--workers", w, *shlex.split(args.train_args)],
        "compile": credit + ["compile", "--model", f"{out}/model", "--no-tl2cgen"],
        "score": credit + ["score-batch", "--input", f"{out}/features", "--output", f"{out}/scores",
                           "--model", f"{out}/model", "--workers", w, "--force"],
    }  # fmt: skip


def _done_marker(args: argparse.Namespace, step: str) -> Path:
    out = Path(args.out)
    return {
        "generate": out / "raw" / "bureau_balance.csv",
        "partition": out / "sources" / "_sources.json",
        "features": out / "features" / "_manifest" / "_features.json",
        "train": out / "model" / "manifest.json",
        "compile": out / "model" / "model.so",
        "score": out / "scores" / "steps-do-not-skip-scoring",  # cheap: always rerun
    }[step]


class TreeSampler(threading.Thread):
    """Peak RSS per process of a process tree, and the peak of their sum, sampled every `period` s."""

    def __init__(self, pid: int, period: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.peak: dict[int, tuple[str, int]] = {}
        self.peak_sum = 0
        self.stop = threading.Event()

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self.stop.is_set():
            total = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for p in procs:
                try:
                    rss = p.memory_info().rss
                    name = " ".join(p.cmdline()[1:4])
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                total += rss
                if rss > self.peak.get(p.pid, ("", 0))[1]:
                    self.peak[p.pid] = (name, rss)
            self.peak_sum = max(self.peak_sum, total)
            self.stop.wait(self.period)


def run_step(cmd: list[str], log: Path) -> dict:
    load = os.getloadavg()
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with log.open("ab") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        rc = proc.wait()
        sampler.stop.set()
        sampler.join()
    seconds = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the step's processes, workers included (all reaped)
    cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    mb = 1 / (1 << 20)
    driver = sampler.peak.get(proc.pid, ("", 0))[1]
    workers = [rss for pid, (name, rss) in sampler.peak.items() if pid != proc.pid and "spawn" in name]
    others = [rss for pid, (name, rss) in sampler.peak.items() if pid != proc.pid]
    return {
        "returncode": rc,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "driver_peak_rss_mb": round(driver * mb),
        "worker_peak_rss_mb": round(max(workers or others or [0]) * mb),
        "processes": len(sampler.peak),
        "tree_peak_rss_mb": round(sampler.peak_sum * mb),
        "load_before": [round(x, 1) for x in load],
        "load_after": [round(x, 1) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=20_000)
    ap.add_argument("--clients-per-partition", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", default=",".join(STEPS))
    ap.add_argument("--train-args", default="", help="extra `credit train` options, e.g. '--candidates lightgbm'")
    ap.add_argument("--redo", action="store_true", help="rerun steps whose output is already there")
    args = ap.parse_args(argv)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    cmds = _commands(args)
    results = []
    for step in args.steps.split(","):
        if not args.redo and _done_marker(args, step).exists():
            print(f"{step}: already done ({_done_marker(args, step)})", flush=True)
            continue
        r = {"step": step, "clients": args.clients, "workers": args.workers, "command": shlex.join(cmds[step][1:])}
        r.update(run_step(cmds[step], args.out / f"{step}.log"))
        r["disk_mb"] = _disk_mb(args.out)
        with (args.out / "steps.jsonl").open("a") as fh:
            fh.write(json.dumps(r) + "\n")
        print(json.dumps(r), flush=True)
        results.append(r)
        if r["returncode"] != 0:
            raise SystemExit(f"{step} failed: see {args.out / (step + '.log')}")
    return results


def _disk_mb(root: Path) -> dict[str, int]:
    out = {}
    for sub in ("raw", "sources", "features", "credit.db", "scores"):
        p = root / sub
        if p.is_file():
            out[sub] = round(p.stat().st_size / (1 << 20))
        elif p.is_dir():
            out[sub] = round(sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) / (1 << 20))
    return out


if __name__ == "__main__":
    main()
