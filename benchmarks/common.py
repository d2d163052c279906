"""Timing, memory and machine helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.cache import CACHE  # noqa: F401 - re-exported: the parts' cache folder

ROOT = Path(__file__).resolve().parent.parent


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def timeit(
    fn: Callable[[], object], *, repeat: int, warmup: int = 1, clock: Callable[[], int] = time.perf_counter_ns
) -> dict:
    """Run fn warmup+repeat times; seconds per call as median, p99 and min (clock: a *_ns function,
    e.g. time.thread_time_ns for the CPU time of a single-threaded call on a shared machine)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = clock()
        fn()
        times.append((clock() - t0) / 1e9)
    return summarize(times)


def summarize(seconds: list[float]) -> dict:
    arr = np.asarray(seconds)
    return {
        "n": len(seconds),
        "median": float(statistics.median(seconds)),
        "p99": float(np.percentile(arr, 99)),
        "min": float(arr.min()),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process (and waited-for children) in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 1e6


def calibrated_reference(booster, X, model_dir: Path):
    """Booster.predict followed by the model folder's calibration map: what `score()` and the library return."""
    from app.model.compile import reference_probabilities
    from app.scoring.bundle import calibration_map, read_manifest

    manifest, _raw = read_manifest(Path(model_dir))
    return reference_probabilities(booster, X, calibration_map(manifest.calibration))
