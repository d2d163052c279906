"""The logistic scorecard written as a LightGBM text model: LightGBM reads it and agrees with the numpy
reference to 1e-9 (NaN, +-inf, tiny values, values on the bin edges); TreeSHAP contributions are exact;
it compiles (calibrated) through the same parity gate and serves the same C ABI."""

from __future__ import annotations

import json

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from needs import needs

from app.model import calibration, scorecard
from app.model.compile import compile_model
from app.scoring.bundle import ModelBundle

P = 5


def _data(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, P)).astype(np.float32)
    X[:, 4] = rng.integers(0, 2, n)  # a 0/1 flag: an edge at 0.0
    logit = 1.4 * X[:, 0] - np.where(np.isnan(X[:, 1]), 1.0, X[:, 1]) + 0.7 * X[:, 4] - 2.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int32)
    X[rng.random(X.shape) < 0.1] = np.nan
    X[::37, 2] = np.inf
    X[::41, 3] = -np.inf
    return X, y


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    X, y = _data()
    sc = scorecard.fit(X, y)
    names = [f"f{i}" for i in range(P)]
    path = tmp_path_factory.mktemp("sc") / "model.txt"
    path.write_text(sc.to_lightgbm_text(names))
    return sc, lgb.Booster(model_file=str(path)), X, y, path


def test_scorecard_uses_the_signal(fitted):
    sc, _, X, y, _ = fitted
    assert 0 in sc.features and 1 in sc.features
    from app.model.evaluation import auc

    assert auc(y, sc.margin(X)) > 0.75


def test_lightgbm_reads_it_exactly_on_training_rows(fitted):
    sc, booster, X, _, _ = fitted
    np.testing.assert_allclose(booster.predict(X, raw_score=True), sc.margin(X), rtol=0, atol=1e-9)


def _edge_values(sc):
    out = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-36, -1e-36, 1e-45, 3.4e38, -3.4e38]
    with np.errstate(over="ignore"):
        for e in sc.edges:
            for v in e:
                f = np.float32(v)
                out += [
                    float(f),
                    float(np.nextafter(f, np.float32(np.inf))),
                    float(np.nextafter(f, np.float32(-np.inf))),
                ]
    return sorted(set(out), key=repr)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_lightgbm_equals_reference_on_any_row(fitted, data):
    sc, booster, _, _, _ = fitted
    values = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.sampled_from(_edge_values(sc)))
    X = data.draw(hnp.arrays(np.float32, (8, P), elements=values))
    raw = booster.predict(X, raw_score=True)
    np.testing.assert_allclose(raw, sc.margin(X), rtol=0, atol=1e-9)
    # TreeSHAP: one contribution per feature, exactly its step minus its mean step; sum = log-odds
    contrib = booster.predict(X, pred_contrib=True)
    np.testing.assert_allclose(contrib.sum(axis=1), raw, rtol=0, atol=1e-9)
    unused = [j for j in range(P) if j not in sc.features]
    assert np.all(contrib[:, unused] == 0)
    for j, e, v, c in zip(sc.features, sc.edges, sc.values, sc.counts, strict=True):
        w = np.maximum(c, 1.0)
        mean = float(np.sum(v * w) / np.sum(w))
        np.testing.assert_allclose(contrib[:, j], v[scorecard.bin_index(X[:, j], e)] - mean, rtol=0, atol=1e-9)


def test_bins_follow_lightgbm_reading_of_tiny_values():
    e = np.array([0.0, 1.0])
    x = np.array([-1, 0, 1e-36, -1e-36, 1e-30, 1, 2, np.inf, -np.inf, np.nan], dtype=np.float32)
    assert scorecard.bin_index(x, e).tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 0, 3]


@needs("gcc", "apt-get install gcc")
def test_calibrated_scorecard_compiles_and_serves(fitted, tmp_path):
    sc, booster, X, y, path = fitted
    text = path.read_bytes()
    import hashlib

    d = tmp_path / "m"
    d.mkdir()
    (d / "model.txt").write_bytes(text)
    cal = {"method": "platt", "a": 0.8, "b": -0.4}
    manifest = {
        "model_id": hashlib.sha256(text).hexdigest(),
        "features": [f"f{i}" for i in range(P)],
        "n_features": P,
        "threshold": 0.2,
        "calibration": cal,
    }
    (d / "manifest.json").write_text(json.dumps(manifest))
    lib = compile_model(d, progress=False, flags=("-O1",), tl2cgen_reference=False, with_native=False)
    assert lib["parity_max_abs_diff"] <= 1e-6
    model = ModelBundle.load(d)
    assert model.threshold == 0.2
    got = model.predict(np.ascontiguousarray(X))
    np.testing.assert_allclose(got, calibration.apply(sc.margin(X), cal), rtol=0, atol=1e-12)
    from app.model.evaluation import auc

    assert auc(y, got) == auc(y, sc.margin(X))  # calibration keeps the ranking


def test_explanations_of_a_calibrated_model_add_up_to_the_calibrated_score(fitted, tmp_path):
    import hashlib

    from app.model.explain import Explainer

    sc, _booster, X, _y, path = fitted
    text = path.read_bytes()
    d = tmp_path / "m"
    d.mkdir()
    (d / "model.txt").write_bytes(text)
    cal = {"method": "platt", "a": 0.6, "b": 0.3}
    names = [f"f{i}" for i in range(P)]
    manifest = {"model_id": hashlib.sha256(text).hexdigest(), "features": names, "threshold": 0.3, "calibration": cal}
    (d / "manifest.json").write_text(json.dumps(manifest))
    compile_model(d, progress=False, flags=("-O1",), tl2cgen_reference=False)  # explanations come from the library
    ex = Explainer.load(d)
    for i in range(5):
        out = ex.explain(X[i], top=3, lang="en")
        total = out["base_value"] + sum(c["shap"] for c in out["contributions"])
        assert total == pytest.approx(0.6 * sc.margin(X[i : i + 1])[0] + 0.3, abs=1e-9)
        assert out["margin"] == pytest.approx(total, abs=1e-12)
        assert out["probability"] == pytest.approx(calibration.apply(sc.margin(X[i : i + 1]), cal)[0], abs=1e-12)
