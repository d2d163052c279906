"""TreeSHAP compiled into the model library == LightGBM's pred_contrib, to 1e-9.

On random rows (NaN, +-inf, subnormals, values at and next to every threshold) for the fixed
models of tests/models/, on every client of the test pipeline's model, and (slow) on the anchor
benchmark models; `shap_values()` in SQL; the compile-time gate refuses a wrong library; the API
process explains without importing LightGBM, scikit-learn, scipy or pandas.
"""

from __future__ import annotations

import json
from pathlib import Path

import apsw
import httpx
import lightgbm as lgb
import numpy as np
import pytest
from apiserver import OFFICER, ApiServer
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_compile import NAMES, _values

from app.model import codegen, codegen_shap
from app.model.compile import ParityError, compile_model, prepare_model_dir
from app.scoring.bundle import load_model
from app.scoring.library import CompiledModel, shap_with

MODELS = Path(__file__).parent / "models"
TOL = 1e-9


def _cuts(model_txt: Path) -> list[float]:
    return [t for tree in codegen.thresholds_from_model_text(model_txt.read_text()) for t in tree]


def _check(model: CompiledModel, booster: lgb.Booster, X: np.ndarray) -> np.ndarray:
    got = shap_with(model._lib, X)
    want = booster.predict(X, pred_contrib=True, num_threads=1)
    assert got.shape == want.shape == (len(X), model.n_features + 1)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
    np.testing.assert_allclose(got.sum(axis=1), booster.predict(X, raw_score=True, num_threads=1), rtol=0, atol=TOL)
    return got


@pytest.fixture(scope="module")
def fixed(tmp_path_factory) -> dict[str, tuple[CompiledModel, lgb.Booster, list[float]]]:
    out = {}
    for name in NAMES:
        d = prepare_model_dir(MODELS / f"{name}.txt", tmp_path_factory.mktemp(name))
        compile_model(d, progress=False, tl2cgen_reference=False)
        out[name] = (load_model(d), lgb.Booster(model_file=str(d / "model.txt")), _cuts(d / "model.txt"))
    return out


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_shap_matches_pred_contrib_on_fixed_models(fixed, name, data):
    model, booster, cuts = fixed[name]
    rows = data.draw(st.integers(1, 30))
    X = data.draw(hnp.arrays(np.float32, (rows, model.n_features), elements=_values(cuts)))
    _check(model, booster, np.ascontiguousarray(X))


@pytest.mark.parametrize("name", NAMES)
def test_row_and_batch_agree(fixed, name):
    model, booster, _ = fixed[name]
    rng = np.random.default_rng(4)
    X = rng.normal(0, 2, (50, model.n_features)).astype(np.float32)
    X[rng.random(X.shape) < 0.2] = np.nan
    batch = _check(model, booster, X)
    for i in range(len(X)):
        out = np.empty(model.n_features + 1)
        model._lib.credit_shap_row(X[i].ctypes.data, out.ctypes.data)
        assert np.array_equal(out, batch[i])
    assert shap_with(model._lib, X[:0]).shape == (0, model.n_features + 1)


def test_every_client_of_the_pipeline_model(pipeline):
    """The project's own model (tests' pipeline size): every client in the database, and the gate's record."""
    model = load_model(pipeline.model_dir)
    booster = lgb.Booster(model_file=str(pipeline.model_dir / "model.txt"))
    conn = apsw.Connection(str(pipeline.db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        X = np.stack([np.frombuffer(b, dtype="<f4") for (b,) in conn.execute("SELECT x FROM features")])
    finally:
        conn.close()
    _check(model, booster, np.ascontiguousarray(X, dtype=np.float32))
    gate = json.loads((model.so_path.parent / "manifest.json").read_text())["library"]["shap"]
    assert gate["parity_max_abs_diff"] <= TOL and gate["parity_rows"] > 0


@pytest.fixture(scope="module")
def project(pipeline):
    model = load_model(pipeline.model_dir)
    booster = lgb.Booster(model_file=str(pipeline.model_dir / "model.txt"))
    conn = apsw.Connection(str(pipeline.db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        X = np.stack([np.frombuffer(b, dtype="<f4") for (b,) in conn.execute("SELECT x FROM features LIMIT 500")])
    finally:
        conn.close()
    return model, booster, _cuts(pipeline.model_dir / "model.txt"), X


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_pipeline_model_on_random_rows(project, data):
    """Real clients with up to 40 features replaced by NaN, +-inf, subnormals or threshold values."""
    model, booster, cuts, X = project
    rows = []
    for _ in range(data.draw(st.integers(1, 6))):
        x = X[data.draw(st.integers(0, len(X) - 1))].copy()
        edits = data.draw(st.lists(st.tuples(st.integers(0, model.n_features - 1), _values(cuts)), max_size=40))
        for j, v in edits:
            x[j] = v
        rows.append(x)
    _check(model, booster, np.ascontiguousarray(np.stack(rows), dtype=np.float32))


def test_shap_values_in_sql(pipeline):
    """shap_values(client_id): a JSON array of exact doubles, NULL for unknown clients, errors for bad types."""
    model = load_model(pipeline.model_dir)
    conn = apsw.Connection(str(pipeline.db), flags=apsw.SQLITE_OPEN_READONLY)
    conn.enable_load_extension(True)
    conn.load_extension(str(pipeline.model_dir / "score.so"))
    try:
        rows = conn.execute("SELECT client_id, x, shap_values(client_id), score(client_id) FROM features LIMIT 20")
        for cid, blob, text, p in rows.fetchall():
            x = np.frombuffer(blob, dtype="<f4").copy()
            want = shap_with(model._lib, x[None, :])[0]
            got = np.array(json.loads(text))
            assert np.array_equal(got, want), cid  # %!.17g round-trips every double
            assert 1 / (1 + np.exp(-got.sum())) == pytest.approx(p, abs=1e-12)
        ((n,),) = conn.execute(
            "SELECT count(*) FROM json_each(shap_values((SELECT min(client_id) FROM features)))"
        ).fetchall()
        assert n == model.n_features + 1
        assert conn.execute("SELECT shap_values(-1), shap_values(NULL)").fetchall() == [(None, None)]
        for bad in ("'7'", "1.5", "x'00'"):
            with pytest.raises(apsw.SQLError, match="client_id must be an INTEGER"):
                conn.execute(f"SELECT shap_values({bad})").fetchall()
    finally:
        conn.close()


def test_the_gate_refuses_a_wrong_treeshap(tmp_path, monkeypatch):
    """A library whose TreeSHAP disagrees with pred_contrib is never installed."""
    real = codegen_shap.generate_shap_units

    def off_by_a_little(dump, **kw):  # the expected value of every tree nudged by 1e-7
        units = real(dump, **kw)
        units[0] = units[0].replace("[SHAP_NF] += t->expected;", "[SHAP_NF] += t->expected + 1e-7;")  # both engines
        return units

    monkeypatch.setattr(codegen_shap, "generate_shap_units", off_by_a_little)
    d = prepare_model_dir(MODELS / "nan_missing.txt", tmp_path / "m")
    with pytest.raises(ParityError, match="TreeSHAP parity gate failed"):
        compile_model(d, progress=False, tl2cgen_reference=False)
    assert not list(d.glob("model-*.so")) and not (d / "score.so").exists()
    assert "library" not in json.loads((d / "manifest.json").read_text())


def test_single_leaf_trees(tmp_path):
    """A tree with no split contributes its value to the expected value only (LightGBM's ExpectedValue)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    y = np.zeros(200)
    y[:3] = 1  # almost constant: later trees cannot split
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 50, "seed": 1}
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=5)
    booster.save_model(str(tmp_path / "model.txt"))
    d = prepare_model_dir(tmp_path / "model.txt", tmp_path / "m")
    compile_model(d, progress=False, tl2cgen_reference=False)
    _check(load_model(d), booster, X)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("anchor", "row_path"),
    # the three anchor shapes with 100 trees (the benchmark's quick pass builds and caches them; their single
    # rows take the same if/else path as with 500 trees); the 1000x63 shape compiled again with single rows
    # through the node tables, the path its 1000-tree version takes (62,000 table nodes >=
    # codegen.ROW_TABLE_MIN_NODES): the same code, without training and compiling 1000 trees for this test
    [("500x31", "auto"), ("1000x63", "tables"), ("categorical", "auto")],
)
def test_anchor_models(anchor, row_path, tmp_path):
    """The engine benchmark's anchor models (benchmarks/models.py, cached there), random rows with
    NaN, +-inf and values at thresholds: TreeSHAP to 1e-9, the score exactly."""
    from benchmarks.models import anchor_model

    model_dir, X = anchor_model(anchor, quick=True)
    if row_path != "auto":
        model_dir = prepare_model_dir(model_dir / "model.txt", tmp_path / "model")
        compile_model(model_dir, progress=False, tl2cgen_reference=False, with_native=False, row_path=row_path)
        assert "credit_row_tables(x, acc)" in (model_dir / "build" / "model.c").read_text()
    model = load_model(model_dir)
    booster = lgb.Booster(model_file=str(model_dir / "model.txt"))
    rng = np.random.default_rng(9)
    rows = X[rng.choice(len(X), 300)].copy()
    mask = rng.random(rows.shape)
    rows[mask < 0.05] = np.inf
    rows[(mask >= 0.05) & (mask < 0.1)] = -np.inf
    cuts = _cuts(model_dir / "model.txt")
    for r in range(len(rows)):  # a few features of every row exactly at a threshold
        for j in rng.choice(model.n_features, 5):
            rows[r, j] = codegen.float_down(cuts[rng.integers(len(cuts))])
    rows = np.ascontiguousarray(rows)
    _check(model, booster, rows)
    # the engine on the same rows: exact (max |diff| 0), whichever batch path compile chose, and row by row
    want = booster.predict(rows, num_threads=1)
    assert np.max(np.abs(model.predict(rows) - want)) == 0.0
    assert max(abs(model.predict_row(rows[i]) - want[i]) for i in range(20)) == 0.0


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")
def test_api_explains_without_lightgbm_sklearn_scipy_pandas(data, known):
    """After explanations (known client, applicant), the server process has mapped none of LightGBM,
    scikit-learn, scipy or pandas (each ships compiled extensions, so an import shows in /proc/PID/maps),
    answers with the compiled TreeSHAP, and stays under the 150 MB RSS budget."""
    cid, names = known
    model = load_model(data.model_dir)
    with ApiServer(data.db, data.model_dir) as api:
        pid = api.proc.pid
        with httpx.Client(base_url=api.url, headers=OFFICER, timeout=30) as client:
            first = client.get(f"/clients/{cid}/explain", params={"lang": "en"})
            assert first.status_code == 200, first.text
            body = first.json()
            for i in range(30):
                r = client.get(f"/clients/{cid + i}/explain", params={"top": 3})
                assert r.status_code in (200, 404), r.text
            r = client.post("/explain", json={"features": {}})
            assert r.status_code in (200, 400), r.text
        maps = _maps(pid)
        rss = _rss_mb(pid)
    for lib in ("lib_lightgbm", "/sklearn/", "/scipy/", "/pandas/"):
        assert lib not in maps, f"the API process loaded {lib}"
    assert rss <= 150, f"API RSS {rss:.0f} MB"
    conn = apsw.Connection(str(data.db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        ((blob,),) = conn.execute("SELECT x FROM features WHERE client_id = ?", (cid,)).fetchall()
    finally:
        conn.close()
    want = shap_with(model._lib, np.frombuffer(blob, dtype="<f4")[None, :].copy())[0]
    by_name = {c["feature"]: c["shap"] for c in body["contributions"]}
    assert [by_name[n] for n in names] == want[:-1].tolist()
    assert body["base_value"] == want[-1]
