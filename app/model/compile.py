"""`credit compile`: model.txt -> C (treelite/tl2cgen for reference, own emitter for speed) -> .so.

Steps: verify model.txt against the manifest's model_id; treelite loads model.txt and tl2cgen writes
its C into model_dir/build/tl2cgen/ (kept for inspection); app/model/codegen.py writes
model_dir/build/model.c (one NaN-aware compare per node, rows in blocks); gcc builds it together
with every app/scoring/native/*.c into a temporary library; parity gate against Booster.predict on the
reference sample plus adversarial rows (NaN, +-inf, huge, tiny, exact thresholds), the reference being
Booster.predict followed by the manifest's calibration map in float64 numpy (identity: Booster.predict
itself); only then is the
library renamed to model_dir/model-<id12>.so, manifest["library"] written, and the symlink
model_dir/score.so repointed (so the sqlite3 shell can `.load DIR/score`).
"""

from __future__ import annotations

import _ctypes
import contextlib
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from app.errors import CreditError
from app.files import atomic_write_bytes, atomic_write_json
from app.model import codegen, codegen_shap
from app.progress import say as _say
from app.scoring.bundle import (
    MANIFEST,
    MODEL_TEXT,
    Manifest,
    ModelError,
    calibration_map,
    identify,
    manifest_digest,
    read_manifest,
    read_model_text,
    text_sha256,
)
from app.scoring.filenames import SCORE_LINK
from app.scoring.library import bind_library, predict_with, sha256_file
from app.scoring.serving import refuse_direct_write

NATIVE_DIR = Path(__file__).resolve().parent.parent / "scoring" / "native"
DEFAULT_CC = os.environ.get("CC", "gcc")
DEFAULT_FLAGS = ("-O3", "-fno-plt")
PARITY_TOL = 1e-6
SHAP_PARITY_TOL = 1e-9  # TreeSHAP against Booster.predict(pred_contrib=True)
SHAP_PARITY_ROWS = 1500  # at most; fewer for large models (TreeSHAP costs ~ leaves x depth^2 a row), never < 200
SHAP_PARITY_LEAF_ROWS = 3_000_000  # rows x total leaves compared at most
ROWS_GUESS_MAX_LEAVES = 2000  # below this many leaves in all, batches first try the row loop


class CompileError(CreditError, RuntimeError):
    pass


class ParityError(CompileError):
    def __init__(self, message: str, max_abs_diff: float) -> None:
        super().__init__(message)
        self.max_abs_diff = max_abs_diff


def native_sources() -> list[Path]:
    return sorted(NATIVE_DIR.glob("*.c")) if NATIVE_DIR.is_dir() else []


def cc_version(cc: str) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise CompileError(f"C compiler {cc!r} not usable: {exc}") from None
    return out.splitlines()[0].strip() if out else cc


def build_shared(
    sources: list[Path], out: Path, *, cc: str, flags: tuple[str, ...], jobs: int | None = None
) -> list[str]:
    """Compile each source to an object in parallel (jobs = CPU count), then link one shared library."""
    common = ["-fPIC", "-std=gnu11", *flags, f"-I{NATIVE_DIR}", "-I/usr/include"]
    obj_dir = Path(tempfile.mkdtemp(dir=out.parent, prefix=".obj-"))
    try:
        objs = [obj_dir / f"{i}-{src.stem}.o" for i, src in enumerate(sources)]
        pending = [[cc, "-c", *common, str(src), "-o", str(obj)] for src, obj in zip(sources, objs, strict=True)]
        running: list[tuple[list[str], subprocess.Popen]] = []
        jobs = max(1, jobs or os.cpu_count() or 1)
        failure = None
        while pending or running:
            while pending and len(running) < jobs:
                cmd = pending.pop(0)
                running.append((cmd, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
            cmd, proc = running.pop(0)
            _out, err = proc.communicate()
            if proc.returncode != 0 and failure is None:
                failure = f"{cc} failed on {cmd[-3]} (exit {proc.returncode}):\n{err[-4000:]}"
        if failure:
            raise CompileError(failure)
        link = [cc, "-shared", *flags, *[str(o) for o in objs], "-o", str(out), "-lm"]
        res = subprocess.run(link, capture_output=True, text=True)
        if res.returncode != 0:
            raise CompileError(f"{cc} link failed (exit {res.returncode}):\n{res.stderr[-4000:]}")
        return link
    finally:
        shutil.rmtree(obj_dir, ignore_errors=True)


def parity_rows(dump: dict[str, Any], n_features: int, reference: np.ndarray | None, seed: int = 0) -> np.ndarray:
    """Held-out rows for the parity gate: reference sample + NaN/inf/huge/tiny/exact-threshold rows."""
    rng = np.random.default_rng(seed)
    blocks: list[np.ndarray] = []
    if reference is not None and len(reference):
        blocks.append(np.asarray(reference, dtype=np.float32))
        base = reference[rng.integers(0, len(reference), 256)].astype(np.float32)
    else:
        base = rng.normal(0, 1, (256, n_features)).astype(np.float32)
    blocks.append(np.full((1, n_features), np.nan, np.float32))
    specials = np.array(
        [np.nan, np.inf, -np.inf, 3.4e38, -3.4e38, 1e30, -1e30, 0.0, -0.0, 1e-36, -1e-36, 1e-45, 1.0, -1.0],
        dtype=np.float32,
    )
    for s in specials:
        blocks.append(np.full((1, n_features), s, np.float32))
        b = base.copy()
        mask = rng.random(b.shape) < 0.3
        b[mask] = s
        blocks.append(b)
    # values at, just below and just above every split threshold of every tree
    cuts: list[tuple[int, float]] = []

    def walk(node: dict[str, Any]) -> None:
        if "leaf_value" in node:
            return
        if node["decision_type"] == "<=":
            cuts.append((int(node["split_feature"]), float(node["threshold"])))
        else:
            for c in str(node["threshold"]).split("||"):
                if c:
                    cuts.append((int(node["split_feature"]), float(c)))
        walk(node["left_child"])
        walk(node["right_child"])

    for info in dump["tree_info"]:
        walk(info["tree_structure"])
    if cuts:
        idx = rng.permutation(len(cuts))[:4000]
        rows = base[rng.integers(0, len(base), len(idx) * 3)].copy()
        with np.errstate(over="ignore"):
            for k, i in enumerate(idx):
                f, t = cuts[i]
                t32 = codegen.float_down(t)
                for j, v in enumerate(
                    (t32, np.nextafter(t32, np.float32(-np.inf)), np.nextafter(t32, np.float32(np.inf)))
                ):
                    rows[3 * k + j, f] = v
        blocks.append(rows)
    return np.ascontiguousarray(np.concatenate(blocks, axis=0), dtype=np.float32)


def _dlclose(lib: Any) -> None:
    with contextlib.suppress(Exception):
        _ctypes.dlclose(lib._handle)


def reference_probabilities(booster: Any, X: np.ndarray, cal: tuple[float, float], sigmoid: float = 1.0) -> np.ndarray:
    """What the library must return: Booster.predict, then the calibration map in float64 numpy."""
    if cal == (1.0, 0.0):
        return booster.predict(X, num_threads=1)
    from app.model.calibration import apply

    margin = sigmoid * np.asarray(booster.predict(X, raw_score=True, num_threads=1), dtype=np.float64)
    return apply(margin, {"a": cal[0], "b": cal[1]})


def check_parity(
    so_path: Path,
    booster: Any,
    X: np.ndarray,
    model_id: str,
    n_features: int,
    cal: tuple[float, float] = (1.0, 0.0),
    threshold: float | None = None,
    sigmoid: float = 1.0,
) -> float:
    lib = bind_library(so_path)
    try:
        got_id = lib.credit_model_id().decode()
        if got_id != model_id or lib.credit_num_features() != n_features:
            raise ParityError(f"library reports model {got_id} / {lib.credit_num_features()} features", float("inf"))
        if threshold is not None and lib.credit_threshold() != threshold:
            raise ParityError(f"library threshold {lib.credit_threshold()!r} != manifest {threshold!r}", float("inf"))
        got = predict_with(lib, X)
        rows = np.array([lib.credit_predict_row(X[i].ctypes.data) for i in range(min(len(X), 512))])
    finally:
        _dlclose(lib)
    want = reference_probabilities(booster, X, cal, sigmoid)
    if not np.all(np.isfinite(got)) or got.min() < 0 or got.max() > 1:
        return float("inf")
    diff = float(np.max(np.abs(got - want))) if len(X) else 0.0
    diff_row = float(np.max(np.abs(rows - want[: len(rows)]))) if len(rows) else 0.0
    return max(diff, diff_row)


@contextlib.contextmanager
def native_output_to(path: Path):
    """Send what native libraries print (C++ to file descriptors 1 and 2, and treelite's Python log callback)
    to the file `path` instead of the user's console."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "a", encoding="utf-8") as log:
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield
        finally:
            log.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def shap_parity_rows(dump: dict[str, Any]) -> int:
    """How many parity rows the TreeSHAP gate compares, from the model's size."""
    leaves = sum(int(t.get("num_leaves", 1)) for t in dump["tree_info"]) or 1
    return int(min(SHAP_PARITY_ROWS, max(200, SHAP_PARITY_LEAF_ROWS // leaves)))


def check_shap_parity(
    so_path: Path, booster: Any, X: np.ndarray, seed: int = 1, max_rows: int = SHAP_PARITY_ROWS
) -> tuple[float, int]:
    """Max |diff| of the library's TreeSHAP against pred_contrib on a random sample of `max_rows`
    parity rows. Returns (max |diff|, rows compared)."""
    from app.scoring.library import shap_with

    if len(X) > max_rows:
        rng = np.random.default_rng(seed)
        X = np.ascontiguousarray(X[np.sort(rng.choice(len(X), max_rows, replace=False))])
    lib = bind_library(so_path)
    try:
        if not hasattr(lib, "credit_shap_batch"):
            return float("inf"), 0
        got = shap_with(lib, X)
    finally:
        _dlclose(lib)
    want = booster.predict(X, pred_contrib=True, num_threads=1)
    if got.shape != want.shape or not np.all(np.isfinite(got)):
        return float("inf"), len(X)
    return float(np.max(np.abs(got - want))) if len(X) else 0.0, len(X)


def time_batch_paths(so_path: Path, X: np.ndarray, rows: int = 2048, repeat: int = 5) -> dict[str, float]:
    """µs per row of each batch path of a library (codegen.BATCH_PATHS), minimum over `repeat`
    interleaved runs on `rows` rows (X tiled as needed), one thread, in thread CPU time."""
    import ctypes

    X = np.ascontiguousarray(np.resize(X, (rows, X.shape[1])), dtype=np.float32)
    lib = bind_library(so_path)
    try:
        via = lib.credit_predict_batch_via
        via.restype = None
        via.argtypes = [ctypes.c_int32, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
        out = np.empty(rows)
        best = dict.fromkeys(codegen.BATCH_PATHS, float("inf"))
        for _ in range(repeat):
            for k, name in enumerate(codegen.BATCH_PATHS):
                t0 = time.thread_time_ns()  # CPU time of this thread: the machine may be shared
                via(k, X.ctypes.data, rows, out.ctypes.data)
                best[name] = min(best[name], (time.thread_time_ns() - t0) / rows / 1e3)
    finally:
        _dlclose(lib)
    return best


@dataclass
class _Job:
    """One compilation: the verified model folder and its LightGBM model, and how to build it."""

    model_dir: Path
    shown: Path  # the folder named in progress lines
    typed: Manifest
    manifest: dict[str, Any]  # the raw manifest: its digest is compiled in, and `library` is added to it
    model_text: str
    cc: str
    flags: tuple[str, ...]
    block: int
    row_path: str
    progress: bool | Callable[[str], None]
    booster: Any = None  # lightgbm.Booster of model.txt (_load_model)
    dump: dict[str, Any] = field(default_factory=dict)  # booster.dump_model()

    @property
    def build(self) -> Path:
        return self.model_dir / "build"

    @property
    def model_path(self) -> Path:
        return self.model_dir / MODEL_TEXT

    @property
    def n_features(self) -> int:
        return len(self.typed.features)

    def say(self, message: str) -> None:
        _say(self.progress, message)

    def step(self, name: str, t0: float) -> None:
        self.say(f"  {name:<34s} {time.perf_counter() - t0:7.2f} s")

    def parts(self, few: int) -> int:
        """Translation units the trees are spread over: one per CPU for 50 trees or more, else `few`."""
        return max(1, (os.cpu_count() or 1)) if len(self.dump["tree_info"]) >= 50 else few

    def score_units(self, batch_path: str) -> list[str]:
        """The C of the score (model.c first, then its tree files) with the batch path `batch_path`."""
        return codegen.generate_units(
            self.dump,
            model_id=self.typed.model_id,
            threshold=self.typed.threshold,
            manifest_sha256=manifest_digest(self.manifest),
            block=self.block,
            row_path=self.row_path,
            batch_path=batch_path,
            model_text=self.model_text,
            calibration=calibration_map(self.typed.calibration),
            parts=self.parts(1),
        )


class _Gates(NamedTuple):
    """What the parity gates measured on the parity rows (the TreeSHAP gate's None / 0 when not built)."""

    diff: float
    rows: int
    shap_diff: float | None
    shap_rows: int


def compile_model(
    model_dir: Path | str,
    *,
    progress: bool | Callable[[str], None] = True,
    cc: str | None = None,
    flags: tuple[str, ...] | list[str] | None = None,
    tl2cgen_reference: bool = True,
    block: int = codegen.DEFAULT_BLOCK,
    row_path: str = "auto",
    batch_path: str = "auto",
    with_native: bool = True,
    with_shap: bool = True,
    shown_as: Path | str | None = None,
) -> dict:
    """Compile model_dir/model.txt to model_dir/model-<id12>.so; returns manifest["library"]. `shown_as`: the
    folder named in progress lines (a challenger is built in a hidden folder renamed when verified)."""
    t_start = time.perf_counter()
    model_dir = Path(model_dir)
    refuse_direct_write(model_dir, "credit compile")  # a serving folder changes only through its life cycle
    job = _open_job(
        model_dir,
        shown=Path(shown_as) if shown_as is not None else model_dir,
        cc=cc or DEFAULT_CC,
        flags=tuple(flags) if flags is not None else DEFAULT_FLAGS,
        block=block,
        row_path=row_path,
        progress=progress,
    )
    if tl2cgen_reference:
        _tl2cgen_reference(job)
    t0 = time.perf_counter()
    _load_model(job)
    if batch_path not in ("auto", *codegen.BATCH_PATHS):
        raise CompileError(f"batch_path must be auto or one of {', '.join(codegen.BATCH_PATHS)}, got {batch_path!r}")
    chosen = _first_batch_path(job.dump) if batch_path == "auto" else batch_path
    c_paths = _generate(job, chosen, with_shap=with_shap)
    job.step(f"codegen build/model.c ({len(job.dump['tree_info'])} trees)", t0)

    sources = [*c_paths, *(native_sources() if with_native else [])]
    fd, tmp_name = tempfile.mkstemp(dir=model_dir, prefix=".model-", suffix=".so.tmp")
    os.close(fd)
    tmp_so = Path(tmp_name)
    installed = False
    try:
        t0 = time.perf_counter()
        build_shared(sources, tmp_so, cc=job.cc, flags=job.flags)
        compile_seconds = time.perf_counter() - t0
        job.step(f"{job.cc} {' '.join(job.flags)} ({len(sources)} files, parallel)", t0)
        reference = _reference_rows(job)
        X = parity_rows(job.dump, job.n_features, reference)
        timing = None
        if batch_path == "auto":  # time both batch paths on this machine; rebuild if the other one wins
            chosen, timing, rebuild_seconds = _choose_batch_path(job, tmp_so, sources, chosen, reference, X)
            compile_seconds += rebuild_seconds
        gates = _parity_gates(job, tmp_so, X, with_shap=with_shap)
        library = _library_record(job, tmp_so, gates, chosen=chosen, timing=timing, compile_seconds=compile_seconds)
        library["native_sources"] = [s.name for s in sources[len(c_paths) :]]
        _install(job, tmp_so, library)
        installed = True
    finally:
        if not installed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_so)
    verb = "installed" if shown_as is None else "compiled"
    job.say(f"{verb} {job.shown / library['file']} -> score.so in {time.perf_counter() - t_start:.2f} s")
    return library


def _open_job(
    model_dir: Path,
    *,
    shown: Path,
    cc: str,
    flags: tuple[str, ...],
    block: int,
    row_path: str,
    progress: bool | Callable[[str], None],
) -> _Job:
    """The folder's manifest and model.txt, verified against each other (CompileError naming what is wrong)."""
    try:
        typed, manifest = read_manifest(model_dir)
        model_bytes = read_model_text(model_dir, text_sha256(typed))
    except ModelError as exc:
        raise CompileError(str(exc)) from None
    if model_bytes is None:
        raise CompileError(f"{model_dir / MODEL_TEXT}: not found; run `credit train --model {model_dir}` first")
    job = _Job(model_dir, shown, typed, manifest, model_bytes.decode("utf-8"), cc, flags, block, row_path, progress)
    job.build.mkdir(parents=True, exist_ok=True)
    job.say(f"compile {shown / MODEL_TEXT} (model {typed.model_id[:12]})")
    return job


def _tl2cgen_reference(job: _Job) -> None:
    """tl2cgen's C of the model in build/tl2cgen/, kept for inspection (what our own emitter is compared with)."""
    import tl2cgen
    import treelite

    t0 = time.perf_counter()
    tl_log = job.build / "tl2cgen.log"
    tl_log.unlink(missing_ok=True)
    with native_output_to(tl_log):  # tl2cgen's own treelite (4.1) notes on a newer model, and its tips
        tl_model = treelite.frontend.load_lightgbm_model(job.model_path)
        tl_dir = job.build / "tl2cgen"
        shutil.rmtree(tl_dir, ignore_errors=True)
        tl2cgen.generate_c_code(tl_model, tl_dir, params={})
    job.step("treelite + tl2cgen C (build/tl2cgen/)", t0)


def _load_model(job: _Job) -> None:
    """LightGBM's model of model.txt and its dump; its feature count must be the manifest's."""
    import lightgbm as lgb

    job.booster = lgb.Booster(model_file=str(job.model_path))
    job.dump = job.booster.dump_model()
    found = int(job.dump["max_feature_idx"]) + 1
    if found != job.n_features:
        raise CompileError(f"{job.model_path}: {found} features, manifest lists {job.n_features}")


def _first_batch_path(dump: dict[str, Any]) -> str:
    """The first guess when the batch path is chosen by measurement: small models loop over rows, others
    QuickScorer (measured once built, rebuilt if wrong)."""
    n_leaves = sum(int(t.get("num_leaves", 1)) for t in dump["tree_info"])
    return "rows" if n_leaves < ROWS_GUESS_MAX_LEAVES else "qs"


def _generate(job: _Job, batch_path: str, *, with_shap: bool) -> list[Path]:
    """Write the model's C into build/ (the score's units, then TreeSHAP's); returns their paths, model.c first."""
    units = job.score_units(batch_path)
    for old in job.build.glob("model*.c"):
        old.unlink()
    c_paths = [job.build / "model.c", *(job.build / f"model_trees_{k}.c" for k in range(len(units) - 1))]
    if with_shap:  # TreeSHAP beside the score (explanations without LightGBM in the serving process)
        shap_units = codegen_shap.generate_shap_units(
            job.dump, model_id=job.typed.model_id, model_text=job.model_text, parts=job.parts(0)
        )
        units += shap_units
        c_paths += [job.build / "model_shap.c", *(job.build / f"model_shap_{k}.c" for k in range(len(shap_units) - 1))]
    for path, text in zip(c_paths, units, strict=True):
        atomic_write_bytes(path, text.encode("utf-8"))
    return c_paths


def _reference_rows(job: _Job) -> np.ndarray | None:
    """The training reference sample the manifest names, when the folder has it."""
    ref_name = job.typed.reference.file if job.typed.reference is not None else None
    if ref_name and (job.model_dir / ref_name).is_file():
        return np.load(job.model_dir / ref_name, allow_pickle=False)
    return None


def _choose_batch_path(
    job: _Job, tmp_so: Path, sources: list[Path], chosen: str, reference: np.ndarray | None, X: np.ndarray
) -> tuple[str, dict[str, float], float]:
    """Time both batch paths of the built library; rebuild with the other one when it is clearly faster
    (10 %). Returns the path, the timings (µs per row) and the rebuild's seconds (0 when none)."""
    t0 = time.perf_counter()
    timing = time_batch_paths(tmp_so, reference if reference is not None and len(reference) else X)
    fastest = min(timing, key=timing.__getitem__)
    job.step(f"batch paths (µs/row) {', '.join(f'{k} {v:.3g}' for k, v in timing.items())}", t0)
    if fastest == chosen or timing[fastest] >= 0.9 * timing[chosen]:
        return chosen, timing, 0.0
    t0 = time.perf_counter()
    atomic_write_bytes(sources[0], job.score_units(fastest)[0].encode("utf-8"))  # model.c: the batch path's unit
    build_shared(sources, tmp_so, cc=job.cc, flags=job.flags)
    seconds = time.perf_counter() - t0
    job.step(f"rebuilt with the {fastest} batch path", t0)
    return fastest, timing, seconds


def _parity_gates(job: _Job, tmp_so: Path, X: np.ndarray, *, with_shap: bool) -> _Gates:
    """The library against LightGBM on the parity rows (and its TreeSHAP against pred_contrib): ParityError,
    nothing installed, when either differs by more than its tolerance."""
    t0 = time.perf_counter()
    diff = check_parity(
        tmp_so,
        job.booster,
        X,
        job.typed.model_id,
        job.n_features,
        calibration_map(job.typed.calibration),
        job.typed.threshold,
        codegen.parse_sigmoid(str(job.dump.get("objective", ""))),
    )
    job.step(f"parity on {len(X)} rows: max|diff| {diff:.3g}", t0)
    if not diff <= PARITY_TOL:
        raise ParityError(
            f"parity gate failed: compiled vs LightGBM max |diff| = {diff:.3g} > {PARITY_TOL:g} "
            f"on {len(X)} rows; nothing installed",
            diff,
        )
    if not with_shap:
        return _Gates(diff, len(X), None, 0)
    t0 = time.perf_counter()
    shap_diff, shap_rows = check_shap_parity(tmp_so, job.booster, X, max_rows=shap_parity_rows(job.dump))
    job.step(f"TreeSHAP parity on {shap_rows} rows: max|diff| {shap_diff:.3g}", t0)
    if not shap_diff <= SHAP_PARITY_TOL:
        raise ParityError(
            f"TreeSHAP parity gate failed: compiled vs pred_contrib max |diff| = {shap_diff:.3g} > "
            f"{SHAP_PARITY_TOL:g} on {shap_rows} rows; nothing installed",
            shap_diff,
        )
    return _Gates(diff, len(X), shap_diff, shap_rows)


def _library_record(
    job: _Job, tmp_so: Path, gates: _Gates, *, chosen: str, timing: dict[str, float] | None, compile_seconds: float
) -> dict[str, Any]:
    """The manifest's `library` section for the verified library (its file name carries the model id)."""
    library: dict[str, Any] = {
        "file": f"model-{job.typed.model_id[:12]}.so",
        "sha256": sha256_file(tmp_so),
        "compiler": cc_version(job.cc),
        "flags": " ".join(job.flags),
        "parity_max_abs_diff": gates.diff,
        "parity_rows": int(gates.rows),
        "compiled_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "compile_seconds": round(compile_seconds, 3),
        "native_sources": [],
        "batch_path": chosen,
    }
    if timing is not None:
        library["batch_path_us_per_row"] = {k: round(v, 4) for k, v in timing.items()}
    if gates.shap_diff is not None:
        library["shap"] = {
            "parity_max_abs_diff": gates.shap_diff,
            "parity_rows": gates.shap_rows,
            "tolerance": SHAP_PARITY_TOL,
        }
    return library


def _install(job: _Job, tmp_so: Path, library: dict[str, Any]) -> None:
    """Rename the verified library into place, record it in the manifest, repoint score.so at it."""
    so_name = library["file"]
    os.chmod(tmp_so, 0o755)
    os.replace(tmp_so, job.model_dir / so_name)
    job.manifest["library"] = library
    atomic_write_json(job.model_dir / MANIFEST, job.manifest)
    link_tmp = job.model_dir / f".score.so.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(link_tmp)
    os.symlink(so_name, link_tmp)
    os.replace(link_tmp, job.model_dir / SCORE_LINK)


def prepare_model_dir(model_txt: Path | str, model_dir: Path | str, *, threshold: float = 0.5) -> Path:
    """Model folder for a bare LightGBM text model (tests, benchmarks): model.txt + a minimal manifest."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    data = Path(model_txt).read_bytes()
    atomic_write_bytes(model_dir / "model.txt", data)
    names = []
    for line in data.decode("utf-8").splitlines():
        if line.startswith("feature_names="):
            names = line.split("=", 1)[1].split()
            break
    manifest = {"model_id": "", "features": names, "n_features": len(names), "threshold": threshold}
    identify(manifest, data)
    atomic_write_json(model_dir / MANIFEST, manifest)
    return model_dir
