"""Compiled model == LightGBM on adversarial rows; the parity gate; install and refusal paths."""

from __future__ import annotations

import json
import os
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from app.cli.model import compile_command
from app.model import codegen
from app.model.compile import ParityError, compile_model, prepare_model_dir
from app.scoring.bundle import load_model
from app.scoring.library import CompiledModel

MODELS = Path(__file__).parent / "models"
NAMES = ["nan_missing", "tiny_threshold", "zero_none", "none_only", "categorical"]
# single rows: nested if/else (small models) or grouped node tables (large models); both must be exact
ROW_PATHS = ["ifelse", "tables"]
FAST = ("-O1",)


def _compile(name: str, dst: Path, **kw) -> Path:
    model_dir = prepare_model_dir(MODELS / f"{name}.txt", dst)
    kw.setdefault("flags", FAST)
    kw.setdefault("tl2cgen_reference", False)
    kw.setdefault("with_native", False)
    compile_model(model_dir, progress=False, **kw)
    return model_dir


@pytest.fixture(scope="session")
def compiled(tmp_path_factory) -> dict[tuple[str, str], tuple[CompiledModel, lgb.Booster, list[float]]]:
    out = {}
    for name in NAMES:
        for row_path in ROW_PATHS:
            d = _compile(name, tmp_path_factory.mktemp(name), row_path=row_path)
            booster = lgb.Booster(model_file=str(d / "model.txt"))
            cuts: list[float] = []
            for t in codegen.thresholds_from_model_text((d / "model.txt").read_text()):
                cuts.extend(t)
            out[name, row_path] = (load_model(d), booster, cuts)
    return out


def _values(cuts: list[float]):
    """float32 values: anything (NaN, +-inf, subnormals), or at / next to a split threshold."""
    exact = []
    with np.errstate(over="ignore"):
        for t in cuts:
            f = codegen.float_down(t)
            exact += [float(f), float(np.nextafter(f, np.float32(np.inf))), float(np.nextafter(f, np.float32(-np.inf)))]
    kz = float(np.float32(1e-35))
    special = [
        kz,
        -kz,
        float(np.nextafter(np.float32(kz), np.float32(1))),
        -float(np.nextafter(np.float32(kz), np.float32(1))),
    ]
    special += [0.0, -0.0, 1e-36, -1e-36, 1e-45, 3.4e38, -3.4e38, float("nan"), float("inf"), float("-inf")]
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True, width=32),
        st.sampled_from(sorted(set(exact + special), key=repr)),
        st.integers(-3, 45).map(float),
    )


def _check(model: CompiledModel, booster: lgb.Booster, X: np.ndarray) -> None:
    got = model.predict(X)
    want = booster.predict(X, num_threads=1)
    assert np.all(np.isfinite(got)) and np.all((got >= 0) & (got <= 1))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    for i in range(min(len(X), 3)):
        assert abs(model.predict_row(X[i]) - got[i]) <= 1e-12


@pytest.mark.parametrize("row_path", ROW_PATHS)
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_compiled_matches_lightgbm(compiled, name, row_path, data):
    model, booster, cuts = compiled[name, row_path]
    rows = data.draw(st.integers(1, 40))
    X = data.draw(hnp.arrays(np.float32, (rows, model.n_features), elements=_values(cuts)))
    _check(model, booster, np.ascontiguousarray(X))


@pytest.mark.parametrize("row_path", ROW_PATHS)
@pytest.mark.parametrize("name", NAMES)
def test_batch_sizes_around_block(compiled, name, row_path):
    model, booster, _ = compiled[name, row_path]
    rng = np.random.default_rng(1)
    for n in (0, 1, 15, 16, 17, 33, 1000):
        X = rng.normal(0, 2, (n, model.n_features)).astype(np.float32)
        X[rng.random(X.shape) < 0.2] = np.nan
        if n:
            _check(model, booster, X)
        else:
            assert model.predict(X).shape == (0,)


def test_codegen_features_present():
    """The fixed models cover what the emitter must get right."""
    nan_c = codegen.generate_c(
        lgb.Booster(model_file=str(MODELS / "nan_missing.txt")).dump_model(), model_id="x", threshold=0.5
    )
    assert "!(x[" in nan_c and "<= " in nan_c
    tiny = (MODELS / "tiny_threshold.txt").read_text()
    c = codegen.generate_c(
        lgb.Booster(model_file=str(MODELS / "tiny_threshold.txt")).dump_model(),
        model_id="x",
        threshold=0.5,
        model_text=tiny,
    )
    assert "-0x1.a95a5e0000000p-117f" in c  # threshold -1e-36 moved just below -1e-35f
    zero = codegen.generate_c(
        lgb.Booster(model_file=str(MODELS / "zero_none.txt")).dump_model(), model_id="x", threshold=0.5
    )
    assert "num_left(" in zero
    cat = codegen.generate_c(
        lgb.Booster(model_file=str(MODELS / "categorical.txt")).dump_model(), model_id="x", threshold=0.5
    )
    assert "cat_left(" in cat


def test_float_down_is_exact():
    for t in [0.1, -0.1, 1 / 3, 1e300, -1e300, float("inf"), float("-inf"), 0.0, 2.0**-149, 16777217.0]:
        f = codegen.float_down(t)
        assert float(f) <= t
        with np.errstate(over="ignore"):
            up = np.nextafter(f, np.float32(np.inf))
        assert not float(up) <= t or np.isinf(f)


def test_install_writes_library_and_symlink(tmp_path):
    d = _compile("nan_missing", tmp_path / "m")
    m = json.loads((d / "manifest.json").read_text())
    lib = m["library"]
    assert lib["file"] == f"model-{m['model_id'][:12]}.so"
    assert lib["parity_max_abs_diff"] <= 1e-6
    for key in ("sha256", "compiler", "flags", "compiled_at", "compile_seconds"):
        assert key in lib
    assert os.readlink(d / "score.so") == lib["file"]
    assert (d / "build" / "model.c").is_file()
    assert not [p for p in d.iterdir() if p.name.endswith(".tmp")]


def test_tl2cgen_reference_and_native_sources(tmp_path):
    d = _compile("categorical", tmp_path / "m", tl2cgen_reference=True, with_native=True)
    assert any((d / "build" / "tl2cgen").iterdir())
    lib = json.loads((d / "manifest.json").read_text())["library"]
    native = sorted(p.name for p in (Path(codegen.__file__).parent.parent / "scoring" / "native").glob("*.c"))
    assert lib["native_sources"] == native
    load_model(d)


def _break_the_link(monkeypatch):
    real = codegen.generate_units

    def wrong(*args, **kwargs):
        main, *rest = real(*args, **kwargs)
        assert "1.0 / (1.0 + exp(" in main
        return [main.replace("1.0 / (1.0 + exp(", "1.0 / (1.01 + exp("), *rest]  # a wrong constant in the link

    monkeypatch.setattr(codegen, "generate_units", wrong)


def test_parity_failure_keeps_previous_install(tmp_path, monkeypatch):
    d = _compile("nan_missing", tmp_path / "m")
    before = {p.name: p.read_bytes() for p in d.iterdir() if p.is_file() and not p.is_symlink()}
    link = os.readlink(d / "score.so")
    _break_the_link(monkeypatch)
    with pytest.raises(ParityError) as info:
        compile_model(d, progress=False, flags=FAST, tl2cgen_reference=False, with_native=False)
    assert info.value.max_abs_diff > 1e-6
    after = {p.name: p.read_bytes() for p in d.iterdir() if p.is_file() and not p.is_symlink()}
    assert after == before
    assert os.readlink(d / "score.so") == link
    load_model(d)


def test_parity_failure_cli_exit_code(tmp_path, monkeypatch):
    d = prepare_model_dir(MODELS / "none_only.txt", tmp_path / "m")
    _break_the_link(monkeypatch)
    res = CliRunner().invoke(compile_command, ["--model", str(d), "--opt", "-O1", "--no-tl2cgen"])
    assert res.exit_code != 0
    assert "max |diff|" in res.output
    assert not list(d.glob("model-*.so")) and not (d / "score.so").exists()


def test_compile_refuses_model_txt_not_matching_manifest(tmp_path):
    d = prepare_model_dir(MODELS / "none_only.txt", tmp_path / "m")
    (d / "model.txt").write_bytes((MODELS / "zero_none.txt").read_bytes())
    with pytest.raises(Exception, match="is not the model id"):
        compile_model(d, progress=False, flags=FAST, tl2cgen_reference=False, with_native=False)


def test_units_split_for_parallel_build(tmp_path):
    """A model split over several translation units (parallel gcc) predicts the same."""
    from app.model.compile import build_shared
    from app.scoring.library import bind_library, predict_with

    text = (MODELS / "nan_missing.txt").read_text()
    booster = lgb.Booster(model_file=str(MODELS / "nan_missing.txt"))
    units = codegen.generate_units(booster.dump_model(), model_id="x", threshold=0.5, model_text=text, parts=3)
    assert len(units) == 4
    paths = []
    for i, src in enumerate(units):
        paths.append(tmp_path / f"u{i}.c")
        paths[-1].write_text(src)
    build_shared(paths, tmp_path / "m.so", cc="gcc", flags=FAST)
    lib = bind_library(tmp_path / "m.so")
    X = np.random.default_rng(3).normal(0, 2, (50, 5)).astype(np.float32)
    X[::3, 0] = np.nan
    np.testing.assert_allclose(predict_with(lib, X), booster.predict(X), rtol=0, atol=1e-6)
    assert "-march" not in " ".join(__import__("app.model.compile", fromlist=["x"]).DEFAULT_FLAGS)


@pytest.mark.parametrize("name", NAMES)
def test_both_batch_paths_are_exact(compiled, name):
    """Every batch path (node tables, row loop, QuickScorer; credit compile times them and keeps the
    fastest) gives LightGBM's numbers, bit for bit the same as each other."""
    import ctypes

    model, booster, _ = compiled[name, "ifelse"]
    via = model._lib.credit_predict_batch_via
    via.argtypes = [ctypes.c_int32, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    rng = np.random.default_rng(5)
    for n in (1, 16, 37):
        X = rng.normal(0, 2, (n, model.n_features)).astype(np.float32)
        X[rng.random(X.shape) < 0.2] = np.nan
        X[rng.random(X.shape) < 0.05] = np.inf
        outs = []
        for k in range(len(codegen.BATCH_PATHS)):
            out = np.empty(n)
            via(k, X.ctypes.data, n, out.ctypes.data)
            outs.append(out)
        for other in outs[1:]:
            assert np.array_equal(outs[0], other)
        np.testing.assert_allclose(outs[0], booster.predict(X, num_threads=1), rtol=0, atol=1e-6)
    library = json.loads((model.so_path.parent / "manifest.json").read_text())["library"]
    assert library["batch_path"] in codegen.BATCH_PATHS
    assert set(library["batch_path_us_per_row"]) == set(codegen.BATCH_PATHS)


def test_forced_batch_path(tmp_path):
    d = _compile("nan_missing", tmp_path, batch_path="tables")
    lib = json.loads((d / "manifest.json").read_text())["library"]
    assert lib["batch_path"] == "tables" and "batch_path_us_per_row" not in lib
    with pytest.raises(Exception, match="batch_path must be"):
        _compile("nan_missing", tmp_path / "x", batch_path="simd")
