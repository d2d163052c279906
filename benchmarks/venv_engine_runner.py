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


def _lightgbm_shape(model_txt: str) -> tuple[int, int]:
    """(trees, leaves of the largest tree) of a LightGBM text model."""
    trees, leaves = 0, 0
    for line in Path(model_txt).read_text().splitlines():
        if line.startswith("num_leaves="):
            trees += 1
            leaves = max(leaves, int(line.split("=", 1)[1]))
    return trees, leaves


def ydf(model_txt: str, work: Path):
    """YDF (Yggdrasil Decision Forests) gradient boosted trees of the LightGBM model's shape (as many trees, at
    most as many leaves, grown best-first like LightGBM, the same shrinkage, no early stopping) trained on the
    same rows (work/train_X.npy, work/train_y.npy). predict() uses YDF's fastest engine for the model (the
    one model.benchmark() names); its correctness is checked against YDF's own generic engine
    (use_slow_engine=True) on the check rows, written to work/ydf.json with the engine's name and YDF's
    C++ benchmark of one thread."""
    import ydf as ydf_lib

    ydf_lib.verbose(0)  # stdout carries the runner's JSON only

    trees, leaves = _lightgbm_shape(model_txt)
    cap = int((work / "ydf_trees.txt").read_text()) if (work / "ydf_trees.txt").exists() else 0
    trees = min(trees, cap) if cap > 0 else trees
    X, y = np.load(work / "train_X.npy"), np.load(work / "train_y.npy")
    names = [f"f{i}" for i in range(X.shape[1])]

    def as_dict(A: np.ndarray) -> dict:
        return {n: np.ascontiguousarray(A[:, i]) for i, n in enumerate(names)}

    learner = ydf_lib.GradientBoostedTreesLearner(
        label="y",
        task=ydf_lib.Task.CLASSIFICATION,
        num_trees=trees,
        growing_strategy="BEST_FIRST_GLOBAL",
        max_num_nodes=2 * leaves - 1,
        max_depth=-1,
        shrinkage=0.05,
        min_examples=5,
        validation_ratio=0.0,
        early_stopping="NONE",
        num_threads=2,
    )
    model = learner.train({**as_dict(X), "y": y.astype(np.int64)})
    check = np.load(work / "check.npy")
    fast, slow = model.predict(as_dict(check)), model.predict(as_dict(check), use_slow_engine=True)
    info = {"trees": model.num_trees(), "engine_vs_generic_max_abs_diff": float(np.max(np.abs(fast - slow)))}
    try:
        bench = model.benchmark(
            as_dict(check), benchmark_duration=2, warmup_duration=0.5, batch_size=100, num_threads=1
        )
        info["cc_benchmark"] = str(bench)
    except Exception as exc:  # older YDF: no benchmark()
        info["cc_benchmark"] = repr(exc)
    (work / "ydf.json").write_text(json.dumps(info))

    def predict(A: np.ndarray, threads: int) -> np.ndarray:
        return np.asarray(model.predict(as_dict(A), num_threads=threads), dtype=np.float64).reshape(len(A), -1)[:, -1]

    return predict


ENGINES = {"onedal": onedal, "timber": timber, "ydf": ydf}


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
        # YDF predicts in its own worker threads: one thread is timed with the process's CPU time (the machine
        # is shared); the others keep wall time as before
        clock = time.process_time_ns if engine == "ydf" and threads == 1 else time.perf_counter_ns
        for _ in range(repeat):
            t0 = clock()
            predict(batch, threads)
            times.append((clock() - t0) / 1e3)
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
