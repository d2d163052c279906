"""Runs an inference engine that lives in its own virtual environment (oneDAL through
scikit-learn-intelex's daal4py; timber-compiler), and times it with the same method as the other
engines (lleaves has its own runner, lleaves_runner.py).

python venv_engine_runner.py ENGINE MODEL_TXT WORKDIR REPEAT  -> JSON on stdout; WORKDIR holds
batch.npy, check.npy, singles.npy and receives check_out.npy.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np


def onedal(model_txt: str, work: Path):
    """oneDAL's gradient-boosted-trees inference (daal4py model builder from the LightGBM booster)."""
    import daal4py as d4p
    import lightgbm as lgb

    model = d4p.mb.convert_model(lgb.Booster(model_file=model_txt))

    def predict(X: np.ndarray, threads: int) -> np.ndarray:
        d4p.daalinit(threads)
        return np.asarray(model.predict_proba(X))[:, 1]

    return predict


def timber(model_txt: str, work: Path):
    """timber-compiler: the LightGBM model compiled to C99 by timber (float32 outputs), through its
    ctypes predictor; one thread whatever `threads` says. timber 0.6 writes an infinite threshold
    as the bare word `inf`, which C rejects, so its model_data.c is patched to INFINITY first."""
    import re

    from timber.codegen.c99 import C99Emitter, TargetSpec
    from timber.frontends import parse_model
    from timber.optimizer.pipeline import OptimizerPipeline
    from timber.runtime import TimberPredictor

    ir = OptimizerPipeline().run(parse_model(model_txt, format_hint="lightgbm")).ir
    out_dir = work / "timber"
    C99Emitter(target=TargetSpec()).emit(ir).write(out_dir)
    for c_file in out_dir.glob("*.c"):
        text = c_file.read_text()
        fixed = re.sub(r"(?<![\w.])inf(?:\.0f)?(?![\w.])", "INFINITY", text)
        if fixed != text:
            c_file.write_text("#include <math.h>\n" + fixed)
    model = TimberPredictor.from_artifact(out_dir, build=True)

    def predict(X: np.ndarray, threads: int) -> np.ndarray:
        out = np.asarray(model.predict(np.ascontiguousarray(X, dtype=np.float32)), dtype=np.float64)
        return out.reshape(len(X), -1)[:, -1]

    return predict


ENGINES = {"onedal": onedal, "timber": timber}


def main() -> None:
    engine, model_txt, work, repeat = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    t0 = time.perf_counter()
    predict = ENGINES[engine](model_txt, work)
    out = {"setup_s": time.perf_counter() - t0}
    batch, check, singles = (np.load(work / f"{n}.npy") for n in ("batch", "check", "singles"))
    np.save(work / "check_out.npy", predict(check, 1))
    for threads in (1, 2):
        predict(batch, threads)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter_ns()
            predict(batch, threads)
            times.append((time.perf_counter_ns() - t0) / 1e3)
        out[f"batch_us_per_row_{threads}t"] = min(times) / len(batch)
        out[f"batch_median_us_per_row_{threads}t"] = float(np.median(times)) / len(batch)
    per_call = []
    for row in singles:
        row = row.reshape(1, -1)
        t0 = time.perf_counter_ns()
        predict(row, 1)
        per_call.append((time.perf_counter_ns() - t0) / 1e3)
    out["one_row_us_median"] = float(np.median(per_call))
    out["one_row_us_p99"] = float(np.percentile(per_call, 99))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
