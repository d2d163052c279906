"""Inference engines on the same model and rows: LightGBM, treelite GTIL, tl2cgen default build,
our compiled library, lleaves, ONNX Runtime, oneDAL (scikit-learn-intelex's daal4py) and
timber-compiler. Every engine's output is checked against LightGBM (max |diff|).

Models: the project's own and the anchor models of benchmarks/models.py (500 trees x 31 leaves,
1000 x 63, and 500 x 31 with 5 categorical columns); lleaves, oneDAL and timber run in private
virtual environments under benchmarks/.cache (their pins conflict with the project's)."""

from __future__ import annotations

import abc
import hashlib
import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.common import CACHE, calibrated_reference, timeit


class Engine(abc.ABC):
    name = "?"

    @abc.abstractmethod
    def batch(self, X: np.ndarray, threads: int) -> np.ndarray:
        """Probabilities for the rows of X, with `threads` threads."""

    def one(self, row: np.ndarray) -> float:
        return float(self.batch(row.reshape(1, -1), 1)[0])


class LightGBM(Engine):
    name = "LightGBM Booster.predict"

    def __init__(self, model_txt: Path):
        import lightgbm as lgb

        self.booster = lgb.Booster(model_file=str(model_txt))

    def batch(self, X, threads):
        return self.booster.predict(X, num_threads=threads)


class GTIL(Engine):
    name = "treelite GTIL"

    def __init__(self, model_txt: Path):
        import treelite

        self.model = treelite.frontend.load_lightgbm_model(str(model_txt))

    def batch(self, X, threads):
        import treelite

        return treelite.gtil.predict(self.model, X, nthread=threads).reshape(len(X), -1)[:, 0]


class TL2cgenDefault(Engine):
    name = "tl2cgen default build"

    def __init__(self, model_txt: Path, workdir: Path, reuse: bool = False):
        """reuse (the quick pass): the library built by an earlier run for this model (workdir is the model's own,
        emptied when the model changes) and this version of tl2cgen, instead of compiling it again."""
        import os

        import tl2cgen
        import treelite

        lib = workdir / f"tl2cgen_default-{tl2cgen.__version__}.so"
        if not (reuse and lib.is_file()):
            model = treelite.frontend.load_lightgbm_model(str(model_txt))
            building = lib.with_name(f"building-{os.getpid()}-{lib.name}")
            tl2cgen.export_lib(model, toolchain="gcc", libpath=building, params={"parallel_comp": 8}, nthread=2)
            os.replace(building, lib)  # never a half-written library under the name a later run reuses
        self.predictors = {t: tl2cgen.Predictor(lib, nthread=t) for t in (1, 2)}

    def batch(self, X, threads):
        import tl2cgen

        out = self.predictors[threads].predict(tl2cgen.DMatrix(X, dtype="float32"))
        return np.asarray(out).reshape(len(X), -1)[:, 0]


class Ours(Engine):
    name = "ours (compiled library)"

    def __init__(self, model_dir: Path):
        from app.scoring.bundle import load_model

        self.model = load_model(model_dir)
        self.pool = ThreadPoolExecutor(2)

    def batch(self, X, threads):
        if threads == 1:
            return self.model.predict(X)
        halves = np.array_split(X, threads)
        return np.concatenate(list(self.pool.map(self.model.predict, halves)))

    def one(self, row):
        return self.model.predict_row(row)


LLEAVES_REQUIREMENTS = ["lleaves==1.3.0", "llvmlite<0.45", "numpy<2.3"]


def lleaves_python() -> Path:
    """A private venv for lleaves (its llvmlite conflicts with the numba that shap needs)."""
    return make_venv(CACHE / "lleaves-venv", LLEAVES_REQUIREMENTS)


def venv_key(requirements: list[str]) -> str:
    """12 hex digits of the requirements (the engine's pins) and of the Python that runs the venv: a venv is
    made again when either changes, and only then (not when app/ changes)."""
    text = json.dumps(sorted(requirements)) + "\n" + sys.version + "\n" + sys.executable
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def make_venv(venv: Path, requirements: list[str]) -> Path:
    """A private virtual environment with `requirements` in the folder `<venv>.<venv_key(requirements)>`, made
    once (a file `ok` when complete, under a lock file, so two processes make it once) and reused by every
    later run; older keys of the same name are removed. With uv when it is installed (its own cache, parallel
    downloads, no byte-compiling: seconds instead of minutes), else venv and pip. Returns its python."""
    import fcntl

    base = venv
    venv = base.with_name(f"{base.name}.{venv_key(requirements)}")
    python = venv / "bin" / "python"
    if (venv / "ok").exists():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.with_name(f"{venv.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if (venv / "ok").exists():  # another process made it while this one waited
            return python
        shutil.rmtree(venv, ignore_errors=True)  # a half-made one from an interrupted run
        uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
        if uv:
            subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
            subprocess.run([uv, "pip", "install", "-q", "--python", str(python), *requirements], check=True)
        else:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
        (venv / "ok").write_text(json.dumps(requirements))
        for old in [base, *base.parent.glob(f"{base.name}.*")]:  # other keys, and the unkeyed folder of old
            if old != venv and old.is_dir() and len(old.name) in (len(base.name), len(venv.name)):
                shutil.rmtree(old, ignore_errors=True)
    return python


VENV_ENGINES = {  # name in the table: (venv folder, pip requirements, runner engine argument)
    "oneDAL (daal4py, own venv)": ("onedal-venv", ["scikit-learn-intelex", "lightgbm==4.7.0", "numpy<2.3"], "onedal"),
    "timber-compiler (own venv)": ("timber-venv", ["timber-compiler", "lightgbm==4.7.0"], "timber"),
    # a same-shape anchor, not a LightGBM engine: trained by the runner on the anchor's rows (run_model's train=)
    "YDF (own venv)": ("ydf-venv", ["ydf==0.16.1", "numpy<2.3"], "ydf"),
}


def venv_python(folder: str, requirements: list[str]) -> Path:
    return make_venv(CACHE / folder, requirements)


def measure_venv_engine(name: str, model_txt: Path, work: Path, repeat: int) -> tuple[dict, np.ndarray]:
    """One VENV_ENGINES engine on the batch/check/singles files that measure_lleaves wrote into work."""
    folder, requirements, arg = VENV_ENGINES[name]
    runner = Path(__file__).with_name("venv_engine_runner.py")
    out = subprocess.run(
        [str(venv_python(folder, requirements)), str(runner), arg, str(model_txt), str(work), str(repeat)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out), np.load(work / "check_out.npy")


def measure_ydf(model_txt: Path, work: Path, batch_X, check_X, singles, train, quick: bool) -> dict:
    """YDF on a model of the same shape trained on the same rows: its timings, and as its max |diff| the
    agreement of its fast engine with YDF's own generic engine (its predictions are another model's, so they
    are not compared with LightGBM's)."""
    write_inputs(work, batch_X, check_X, singles[:5] if quick else singles)
    X, y = train
    np.save(work / "train_X.npy", np.ascontiguousarray(X, dtype=np.float32))
    np.save(work / "train_y.npy", np.asarray(y))
    # quick: a small model of the anchor's leaves (a correctness check of YDF's engine, not a timing)
    (work / "ydf_trees.txt").write_text("10" if quick else "0")
    folder, requirements, arg = VENV_ENGINES["YDF (own venv)"]
    runner = Path(__file__).with_name("venv_engine_runner.py")
    out = subprocess.run(
        [str(venv_python(folder, requirements)), str(runner), arg, str(model_txt), str(work), "2" if quick else "5"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    info = json.loads((work / "ydf.json").read_text())
    figures = json.loads(out.strip().splitlines()[-1])  # the JSON line, after anything YDF itself printed
    return {**figures, "max_abs_diff": info["engine_vs_generic_max_abs_diff"], "ydf_trees": info["trees"],
            "ydf_cc_benchmark": info["cc_benchmark"]}  # fmt: skip


def write_inputs(work: Path, batch_X, check_X, singles) -> None:
    """The rows every out-of-process engine reads (batch.npy, check.npy, singles.npy)."""
    for name, arr in (("batch", batch_X), ("check", check_X), ("singles", singles)):
        np.save(work / f"{name}.npy", arr)


def measure_lleaves(model_txt: Path, work: Path, batch_X, check_X, singles, repeat: int) -> tuple[dict, np.ndarray]:
    write_inputs(work, batch_X, check_X, singles)
    runner = Path(__file__).with_name("lleaves_runner.py")
    out = subprocess.run(
        [str(lleaves_python()), str(runner), str(model_txt), str(work), str(repeat)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out), np.load(work / "check_out.npy")


class ONNXRuntime(Engine):
    name = "ONNX Runtime"

    def __init__(self, model_txt: Path, n_features: int):
        import lightgbm as lgb
        import onnxmltools
        import onnxruntime as ort
        from onnxmltools.convert.common.data_types import FloatTensorType

        booster = lgb.Booster(model_file=str(model_txt))
        onx = onnxmltools.convert_lightgbm(
            booster, initial_types=[("input", FloatTensorType([None, n_features]))], zipmap=False
        )
        self.sessions = {}
        for t in (1, 2):
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = t
            opts.inter_op_num_threads = 1
            self.sessions[t] = ort.InferenceSession(onx.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        self.output = self.sessions[1].get_outputs()[-1].name

    def batch(self, X, threads):
        out = self.sessions[threads].run([self.output], {"input": X})[0]
        out = np.asarray(out)
        return out[:, 1] if out.ndim == 2 else out


def edge_rows(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rows with NaN, +/-inf and huge values, to check engines agree off the beaten path."""
    rows = X[rng.choice(len(X), 300)].copy()
    mask = rng.random(rows.shape)
    rows[mask < 0.2] = np.nan
    rows[(mask >= 0.2) & (mask < 0.22)] = np.inf
    rows[(mask >= 0.22) & (mask < 0.24)] = -np.inf
    rows[(mask >= 0.24) & (mask < 0.26)] = 3e38
    return rows


def run_model(
    label: str,
    model_dir: Path,
    X: np.ndarray,
    *,
    quick: bool,
    n_batch: int | None = None,
    engines: set[str] | None = None,
    threads_list: tuple[int, ...] = (1, 2),
    train: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[dict]:
    """All engines on one model: µs per row in batch (1 and 2 threads) and per single-row call.
    (n_batch, engines, threads_list: a subset for a focused run, see main(). train: the model's training rows
    and labels, for YDF, which trains a model of the same shape on them; without it YDF does not run.)"""
    model_txt = model_dir / "model.txt"
    work = CACHE / f"engines-{label}"
    digest = hashlib.sha256(model_txt.read_bytes()).hexdigest()
    if not (work / "model.sha256").is_file() or (work / "model.sha256").read_text() != digest:
        shutil.rmtree(work, ignore_errors=True)  # a new model: lleaves' compiled cache goes too
        work.mkdir(parents=True)
        (work / "model.sha256").write_text(digest)
    rng = np.random.default_rng(0)
    n_batch = n_batch or (5_000 if quick else 100_000)
    batch_X = np.ascontiguousarray(X[rng.choice(len(X), n_batch)], dtype=np.float32)
    check_X = np.ascontiguousarray(np.vstack([batch_X[:2000], edge_rows(X, rng)]), dtype=np.float32)
    singles = batch_X[: 20 if quick else 1000]
    reference = LightGBM(model_txt)
    expected = reference.batch(check_X, 2)
    # our library returns the calibrated PD the manifest records; the other engines know only the trees
    expected_ours = calibrated_reference(reference.booster, check_X, model_dir)
    builders = {
        "lightgbm": lambda: reference,
        "ours": lambda: Ours(model_dir),
        "gtil": lambda: GTIL(model_txt),
        "tl2cgen": lambda: TL2cgenDefault(model_txt, work, reuse=quick),
        "onnx": lambda: ONNXRuntime(model_txt, X.shape[1]),
    }
    builders = [b for k, b in builders.items() if engines is None or k in engines or k == "lightgbm"]
    rows = []
    for build in builders:
        t0 = time.perf_counter()
        try:
            engine = build()
        except Exception as exc:  # an engine that cannot load this model is reported, not hidden
            rows.append({"model": label, "engine": getattr(build, "__name__", "?"), "error": repr(exc)})
            continue
        setup = time.perf_counter() - t0
        want = expected_ours if isinstance(engine, Ours) else expected
        gap = np.abs(engine.batch(check_X, 1) - want)
        row = {"model": label, "engine": engine.name, "setup_s": setup, "max_abs_diff": float(np.max(gap))}
        row["agree_share"] = float(np.mean(gap <= 1e-6))
        repeat = 2 if quick else 5
        for threads in threads_list:
            # one thread: CPU time of the calling thread (the machine is shared); two: wall time
            clock = time.thread_time_ns if threads == 1 else time.perf_counter_ns
            t = timeit(
                lambda engine=engine, threads=threads: engine.batch(batch_X, threads), repeat=repeat, clock=clock
            )
            row[f"batch_us_per_row_{threads}t"] = t["min"] / n_batch * 1e6
            row[f"batch_median_us_per_row_{threads}t"] = t["median"] / n_batch * 1e6
        per_call = []
        for r in singles:
            t0 = time.perf_counter_ns()
            engine.one(r)
            per_call.append((time.perf_counter_ns() - t0) / 1e3)
        row["one_row_us_median"] = float(np.median(per_call))
        row["one_row_us_p99"] = float(np.percentile(per_call, 99))
        rows.append(row)
    for name, key in (("lleaves (own venv)", "lleaves"), *((n, VENV_ENGINES[n][2]) for n in VENV_ENGINES)):
        if engines is not None and key not in engines:
            continue
        if key == "ydf" and train is None:
            continue
        try:
            if key == "ydf":
                rows.append({"model": label, "engine": name, **measure_ydf(model_txt, work, batch_X, check_X, singles,
                                                                          train, quick)})  # fmt: skip
                continue
            if key == "lleaves":
                figures, out = measure_lleaves(model_txt, work, batch_X, check_X, singles, 2 if quick else 5)
            else:
                write_inputs(work, batch_X, check_X, singles)
                figures, out = measure_venv_engine(name, model_txt, work, 2 if quick else 5)
            rows.append(
                {"model": label, "engine": name, **figures, "max_abs_diff": float(np.max(np.abs(out - expected)))}
            )
        except (subprocess.CalledProcessError, OSError, ValueError) as exc:
            detail = getattr(exc, "stderr", "") or ""
            rows.append({"model": label, "engine": name, "error": f"{exc} {detail[-500:]}"})
    base = rows[0]
    for row in rows:
        if "error" in row:
            continue
        row["batch_speedup_vs_lightgbm_1t"] = base["batch_us_per_row_1t"] / row["batch_us_per_row_1t"]
        row["one_row_speedup_vs_lightgbm"] = base["one_row_us_median"] / row["one_row_us_median"]
    return rows


def anchor_training_rows(name: str, quick: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """The rows and labels a numeric anchor was trained on, for YDF's same-shape model (quick: the 500x31
    anchor only, on 1,000 rows, and 10 trees: a correctness check)."""
    from benchmarks.models import _synthetic

    if name not in ("500x31", "1000x63") or (quick and name != "500x31"):
        return None
    X, y, _rng = _synthetic(20_000, 200)
    return (X[:1000], y[:1000]) if quick else (X, y)


# The quick pass checks every engine on the project's model (416 numeric features, calibrated) and on the
# categorical anchor (categorical splits); on the two numeric anchors, whose splits are of the kind the project's
# model already has, it checks our library (and YDF, which needs the 500x31 anchor's training rows) only.
QUICK_ANCHOR_ENGINES: dict[str, set[str] | None] = {"500x31": {"ours", "ydf"}, "1000x63": {"ours"}, "categorical": None}
QUICK_BATCH_ROWS = 1_000  # batch rows in the quick pass (the check rows are these and 300 edge rows)


def run(quick: bool) -> list[dict]:
    from benchmarks.models import ANCHORS, anchor_model, bench_pipeline, project_matrix

    pipe = bench_pipeline(quick)
    _ids, X = project_matrix(pipe.db)
    n_batch = QUICK_BATCH_ROWS if quick else None
    rows = run_model("project", pipe.model_dir, X, quick=quick, n_batch=n_batch)
    for name in ANCHORS:  # quick: the same shapes with 100 trees
        model_dir, X_anchor = anchor_model(name, quick=quick)
        train = anchor_training_rows(name, quick)
        label = f"{name}" + (" (100 trees)" if quick else "")
        engines = QUICK_ANCHOR_ENGINES[name] if quick else None
        rows += run_model(label, model_dir, X_anchor, quick=quick, n_batch=n_batch, engines=engines, train=train)
    return rows


def main(argv: list[str] | None = None) -> None:
    """A focused run: chosen engines on the anchor models, one thread (its CPU time), N rows; prints a
    table, and with --rounds R the engines run in R interleaved rounds with each round's ratio to lleaves.

    python -m benchmarks.bench_inference --engines ours,lleaves --rows 20000 --rounds 3
    (LightGBM, the reference, always runs). The suite's own run is `credit bench --only inference`.
    """
    import argparse
    import statistics

    from benchmarks.models import ANCHORS, anchor_model

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--engines", default="ours,lleaves")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--models", default=",".join(ANCHORS))
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    for name in args.models.split(","):
        model_dir, X = anchor_model(name)
        library = json.loads((model_dir / "manifest.json").read_text()).get("library", {})
        print(f"{name}: batch path {library.get('batch_path')}, compile {library.get('compile_seconds')} s")
        ratios = []
        for k in range(args.rounds):
            rows = run_model(
                name,
                model_dir,
                X,
                quick=False,
                n_batch=args.rows,
                engines=set(args.engines.split(",")),
                threads_list=(1,),
                train=anchor_training_rows(name, quick=False) if "ydf" in args.engines.split(",") else None,
            )
            by_engine = {}
            for row in rows:
                if "error" in row:
                    print(f"{name:12s} {row['engine']:32s} error {row['error'][:200]}")
                    continue
                by_engine[row["engine"]] = row["batch_us_per_row_1t"]
                print(
                    f"{name:12s} r{k} {row['engine']:32s} batch {row['batch_us_per_row_1t']:8.2f} µs/row"
                    f"  one row {row['one_row_us_median']:8.2f} µs  max|diff| {row['max_abs_diff']:.3g}",
                    flush=True,
                )
            ours, ydf = by_engine.get(Ours.name), by_engine.get("YDF (own venv)")
            if ours and ydf:
                print(f"{name:12s} r{k} ours vs YDF (same shape, same rows): {ydf / ours:.2f}x", flush=True)
            ours, ll = by_engine.get(Ours.name), by_engine.get("lleaves (own venv)")
            if ours and ll:
                ratios.append(ll / ours)
                print(f"{name:12s} r{k} ours vs lleaves: {ll / ours:.2f}x", flush=True)
        if ratios:
            print(
                f"{name:12s} ours vs lleaves over {len(ratios)} rounds: median {statistics.median(ratios):.2f}x "
                f"(min {min(ratios):.2f}, max {max(ratios):.2f})",
                flush=True,
            )


if __name__ == "__main__":
    main()
