"""One-feature trees compiled as bin tables (app/model/codegen_bins.py) give LightGBM's numbers bit for bit.

Models: LightGBM with one feature per tree (interaction constraints) under each missing-value rule (NaN,
Zero, None) and a tiny threshold, and a logistic scorecard (the scorecard part of every blend). The row path
(score()'s), the row-loop batch path (every tree through its tree<i> function) and the other batch paths
are compared with Booster.predict on adversarial values: NaN, +-inf, subnormals, +-1e-35 and every
threshold with its float neighbours.
"""

from __future__ import annotations

import ctypes

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from app.model import codegen, codegen_bins, scorecard
from app.model.compile import compile_model, prepare_model_dir
from app.scoring.bundle import load_model
from app.scoring.library import CompiledModel

N_FEATURES = 4
KINDS = ("nan", "zero", "none", "scorecard")


def _data(seed: int = 0, n: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    X[:, 1] = np.round(X[:, 1])  # many exact zeros (the Zero rule)
    X[:, 2] *= 1e-35  # thresholds near the 1e-35 zero band
    X[rng.random(X.shape) < 0.15] = np.nan
    logit = np.nan_to_num(X[:, 0]) - 0.7 * np.nan_to_num(X[:, 1]) + 0.5 * np.isnan(X[:, 3])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def _model_text(kind: str) -> str:
    X, y = _data()
    if kind == "scorecard":
        return scorecard.fit(X, y).to_lightgbm_text([f"f{i}" for i in range(N_FEATURES)])
    params = {
        "objective": "binary",
        "num_leaves": 7,
        "min_data_in_leaf": 5,
        "verbose": -1,
        "seed": 1,
        "deterministic": True,
        "num_threads": 1,
        "interaction_constraints": [[i] for i in range(N_FEATURES)],  # every tree splits on one feature
        "zero_as_missing": kind == "zero",
        "use_missing": kind != "none",
    }
    return lgb.train(params, lgb.Dataset(X, y), num_boost_round=30).model_to_string()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = {}
    for kind in KINDS:
        root = tmp_path_factory.mktemp(kind)
        (root / "in.txt").write_text(_model_text(kind))
        d = prepare_model_dir(root / "in.txt", root / "m")
        compile_model(d, progress=False, flags=("-O2",), tl2cgen_reference=False, with_native=False, batch_path="rows")
        booster = lgb.Booster(model_file=str(d / "model.txt"))
        out[kind] = (load_model(d), booster, "\n".join(p.read_text() for p in (d / "build").glob("model*.c")))
    return out


def _cuts(booster: lgb.Booster) -> list[float]:
    cuts: list[float] = []
    for t in codegen.thresholds_from_model_text(booster.model_to_string()):
        cuts.extend(t)
    return cuts


def _values(cuts: list[float]):
    exact = []
    with np.errstate(over="ignore"):
        for t in cuts:
            f = codegen.float_down(t)
            exact += [float(f), float(np.nextafter(f, np.float32(np.inf))), float(np.nextafter(f, np.float32(-np.inf)))]
    kz = float(np.float32(1e-35))
    special = [kz, -kz, 0.0, -0.0, 1e-36, -1e-36, 1e-45, 3.4e38, -3.4e38, float("nan"), float("inf"), float("-inf")]
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True, width=32),
        st.sampled_from(sorted(set(exact + special), key=repr)),
    )


def _all_paths(model: CompiledModel, X: np.ndarray) -> list[np.ndarray]:
    via = model._lib.credit_predict_batch_via
    via.argtypes = [ctypes.c_int32, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    outs = [np.array([model.predict_row(x) for x in X])]  # the row path: score()'s
    for k in range(len(codegen.BATCH_PATHS)):
        out = np.empty(len(X))
        via(k, X.ctypes.data, len(X), out.ctypes.data)
        outs.append(out)
    return outs


def test_every_tree_is_a_bin_table(compiled):
    for kind, (_model, booster, c_text) in compiled.items():
        dump = booster.dump_model()
        em = codegen._Emitter(N_FEATURES)
        steps = [codegen_bins.collect(em, t["tree_structure"]) for t in dump["tree_info"]]
        with_splits = [t for t in dump["tree_info"] if "leaf_value" not in t["tree_structure"]]
        assert len(with_splits) >= 3, kind
        assert sum(s is not None for s in steps) == len(with_splits), kind
        assert "bins of feature" in c_text


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_bins_equal_lightgbm_bit_for_bit(compiled, kind, data):
    model, booster, _ = compiled[kind]
    rows = data.draw(st.integers(1, 40))
    X = np.ascontiguousarray(data.draw(hnp.arrays(np.float32, (rows, N_FEATURES), elements=_values(_cuts(booster)))))
    want = booster.predict(X, num_threads=1)
    for got in _all_paths(model, X):
        assert np.array_equal(got, want)


def test_trees_on_several_features_keep_their_code():
    X, y = _data(3)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 7, "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5},
        lgb.Dataset(X, y),
        num_boost_round=5,
    )
    em = codegen._Emitter(N_FEATURES)
    roots = [t["tree_structure"] for t in booster.dump_model()["tree_info"]]
    multi = [r for r in roots if len(_features(r)) > 1]
    assert multi and all(codegen_bins.collect(em, r) is None for r in multi)
    c = codegen.generate_c(booster.dump_model(), model_id="x", threshold=0.5, use_bins=False)
    assert "bins of feature" not in c


def _features(node: dict) -> set[int]:
    if "leaf_value" in node:
        return set()
    return {int(node["split_feature"])} | _features(node["left_child"]) | _features(node["right_child"])
