"""The QuickScorer batch path (app/model/codegen_qs.py) gives LightGBM's numbers bit for bit: adversarial
values (NaN, +-inf, subnormals, values next to thresholds), 32- and 64-bit leaf words, categorical and
Zero-missing splits, and trees that keep their if/else code in between."""

from __future__ import annotations

import ctypes
import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_compile import MODELS, NAMES, _values

from app.model import codegen, codegen_qs
from app.model.compile import compile_model, prepare_model_dir
from app.scoring.bundle import load_model
from app.scoring.library import CompiledModel

QS = codegen.BATCH_PATHS.index("qs")


def _build(
    model_txt: Path, dst: Path, flags: tuple[str, ...] = ("-O1",)
) -> tuple[CompiledModel, lgb.Booster, list[float]]:
    d = prepare_model_dir(model_txt, dst)
    compile_model(
        d, progress=False, flags=flags, tl2cgen_reference=False, with_native=False, with_shap=False, batch_path="qs"
    )
    cuts: list[float] = []
    for t in codegen.thresholds_from_model_text((d / "model.txt").read_text()):
        cuts.extend(t)
    return load_model(d), lgb.Booster(model_file=str(d / "model.txt")), cuts


def _via(model: CompiledModel, path: int, X: np.ndarray) -> np.ndarray:
    via = model._lib.credit_predict_batch_via
    via.argtypes = [ctypes.c_int32, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    X = np.ascontiguousarray(X, dtype=np.float32)
    out = np.empty(len(X))
    via(path, X.ctypes.data, len(X), out.ctypes.data)
    return out


def _trained(tmp: Path, leaves: int, categorical: bool, zero: bool = False) -> Path:
    rng = np.random.default_rng(leaves)
    n = 3000
    X = rng.normal(size=(n, 6)).astype(np.float32)
    X[rng.random(X.shape) < 0.15] = np.nan
    if zero:
        X[rng.random(X.shape) < 0.3] = 0.0
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) * np.nan_to_num(X[:, 2]) > 0.3).astype(int)
    params = {
        "objective": "binary",
        "num_leaves": leaves,
        "min_data_in_leaf": 3,
        "verbosity": -1,
        "seed": 1,
        "num_threads": 1,
        "deterministic": True,
        "zero_as_missing": zero,
    }
    if categorical:
        X[:, 3] = rng.integers(0, 70, n)
        X[rng.random(n) < 0.05, 3] = np.nan
        y ^= np.isin(X[:, 3], [2, 3, 5, 40, 41, 66]).astype(int)
        params["max_cat_to_onehot"] = 4
    ds = lgb.Dataset(X, y, categorical_feature=[3] if categorical else "auto")
    path = tmp / f"trained-{leaves}-{categorical}-{zero}.txt"
    lgb.train(params, ds, num_boost_round=12).save_model(str(path))
    return path


@pytest.fixture(scope="module")
def qs_models(tmp_path_factory) -> dict[str, tuple[CompiledModel, lgb.Booster, list[float]]]:
    tmp = tmp_path_factory.mktemp("qs")
    out = {name: _build(MODELS / f"{name}.txt", tmp / name) for name in NAMES}
    # 64-bit leaf words (33..64 leaves) with a categorical column; 32-bit with Zero-missing splits
    out["wide_categorical"] = _build(_trained(tmp, 48, True), tmp / "wide")
    out["zero_trained"] = _build(_trained(tmp, 20, False, zero=True), tmp / "zero")
    return out


MODEL_KEYS = [*NAMES, "wide_categorical", "zero_trained"]


def _exact(model: CompiledModel, booster: lgb.Booster, X: np.ndarray) -> None:
    got = _via(model, QS, X)
    np.testing.assert_array_equal(got, booster.predict(X, num_threads=1))
    np.testing.assert_array_equal(got, _via(model, 0, X))  # the node tables, bit for bit


@pytest.mark.parametrize("name", MODEL_KEYS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_qs_matches_lightgbm_exactly(qs_models, name, data):
    model, booster, cuts = qs_models[name]
    rows = data.draw(st.integers(1, 40))
    X = data.draw(hnp.arrays(np.float32, (rows, model.n_features), elements=_values(cuts)))
    _exact(model, booster, np.ascontiguousarray(X))


@pytest.mark.parametrize("name", MODEL_KEYS)
def test_qs_block_edges_and_chosen_path(qs_models, name):
    model, booster, _ = qs_models[name]
    rng = np.random.default_rng(3)
    for n in (1, 7, 8, 9, 15, 16, 17, 33, 500):
        X = rng.normal(0, 2, (n, model.n_features)).astype(np.float32)
        X[rng.random(X.shape) < 0.2] = np.nan
        X[rng.random(X.shape) < 0.05] = np.inf
        X[rng.random(X.shape) < 0.05] = -np.inf
        _exact(model, booster, X)
        np.testing.assert_array_equal(model.predict(X), _via(model, QS, X))  # compiled with batch_path="qs"


def test_qs_word_width_and_categorical_table(qs_models):
    c = (qs_models["wide_categorical"][0].so_path.parent / "build" / "model.c").read_text()
    assert "#define QS_W 64" in c and "#define QS_NCF 1" in c
    c = (qs_models["nan_missing"][0].so_path.parent / "build" / "model.c").read_text()
    assert "#define QS_W 32" in c and "#define QS_NCF 0" in c


def test_qs_with_if_else_trees_in_between(tmp_path, monkeypatch):
    """Trees above MAX_LEAVES keep their if/else function, called in tree order between QuickScorer runs."""
    monkeypatch.setattr(codegen_qs, "MAX_LEAVES", 5)  # zero_none: one tree of 5 leaves, seven of 6
    model, booster, _ = _build(MODELS / "zero_none.txt", tmp_path / "m")
    c = (model.so_path.parent / "build" / "model.c").read_text()
    head = "static void qs_sum(const qs_bits *bv, const qs_bits *cm, const float *x, int m, double *acc) {"
    body = c[c.index(head) :].split("\n}\n")[0]
    assert body.count("qs_add(bv") == 1 and body.count("(x, m, acc);") == 7
    rng = np.random.default_rng(4)
    X = rng.normal(0, 2, (300, model.n_features)).astype(np.float32)
    X[rng.random(X.shape) < 0.2] = np.nan
    _exact(model, booster, X)


@pytest.mark.parametrize("name", ["categorical", "zero_none"])
def test_qs_blocks_of_eight_rows(tmp_path, monkeypatch, name):
    monkeypatch.setattr(codegen_qs, "QS_ROWS", 8)
    model, booster, _ = _build(MODELS / f"{name}.txt", tmp_path / "m")
    assert "#define QS_R 8" in (model.so_path.parent / "build" / "model.c").read_text()
    rng = np.random.default_rng(5)
    for n in (1, 8, 9, 300):
        X = rng.normal(0, 2, (n, model.n_features)).astype(np.float32)
        X[rng.random(X.shape) < 0.2] = np.nan
        X[rng.random(X.shape) < 0.1] = 0.0
        _exact(model, booster, X)


def test_qs_without_avx2_falls_back_to_the_node_tables(tmp_path):
    model, booster, _ = _build(MODELS / "categorical.txt", tmp_path / "m", flags=("-O1", "-DCREDIT_NO_AVX2"))
    assert "-DCREDIT_NO_AVX2" in json.loads((tmp_path / "m" / "manifest.json").read_text())["library"]["flags"]
    rng = np.random.default_rng(6)
    X = rng.normal(0, 2, (100, model.n_features)).astype(np.float32)
    X[rng.random(X.shape) < 0.2] = np.nan
    _exact(model, booster, X)
