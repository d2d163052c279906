"""Runs lleaves in its own virtual environment (lleaves 1.3 needs llvmlite < 0.45, which the
project's numba cannot share) and times it with the same method as the other engines.

python lleaves_runner.py MODEL_TXT WORKDIR REPEAT  -> JSON on stdout; WORKDIR holds batch.npy,
check.npy, singles.npy and receives check_out.npy.
"""

import json
import sys
import time
from pathlib import Path

import lleaves
import numpy as np


def main() -> None:
    model_txt, work, repeat = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    t0 = time.perf_counter()
    model = lleaves.Model(model_file=model_txt)
    model.compile(cache=str(work / "lleaves.o"))
    out = {"setup_s": time.perf_counter() - t0}
    batch, check, singles = (np.load(work / f"{n}.npy") for n in ("batch", "check", "singles"))
    np.save(work / "check_out.npy", model.predict(check, n_jobs=1))
    for threads in (1, 2):
        model.predict(batch, n_jobs=threads)
        times = []
        clock = time.thread_time_ns if threads == 1 else time.perf_counter_ns  # one thread: its CPU time
        for _ in range(repeat):
            t0 = clock()
            model.predict(batch, n_jobs=threads)
            times.append((clock() - t0) / 1e3)
        out[f"batch_us_per_row_{threads}t"] = min(times) / len(batch)
        out[f"batch_median_us_per_row_{threads}t"] = float(np.median(times)) / len(batch)
    per_call = []
    for row in singles:
        row = row.reshape(1, -1)
        t0 = time.perf_counter_ns()
        model.predict(row, n_jobs=1)
        per_call.append((time.perf_counter_ns() - t0) / 1e3)
    out["one_row_us_median"] = float(np.median(per_call))
    out["one_row_us_p99"] = float(np.percentile(per_call, 99))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
