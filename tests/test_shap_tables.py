"""TreeSHAP from per-leaf tables (app/model/codegen_shap_tables.py) and the `explanations` SQL table.

The table engine answers every SHAP entry point; LightGBM's recursion stays in the library as
`credit_shap_batch_recursive`. Both equal `pred_contrib` to 1e-9 on random rows (NaN, +-inf, subnormals,
threshold neighbours) of: the fixed categorical model of tests/models/ (categorical bitsets), and a deeper
model trained here with few distinct features per leaf table and a table budget so small that most of its
leaves are computed on the fly (both code paths of a leaf, and leaves of up to 15+ distinct features).
`explanations` equals shap_values(client_id) client by client, across block boundaries (32 clients), with
pushed-down client_id ranges, and fails with score()'s message on a bad feature BLOB.
"""

from __future__ import annotations

import ctypes
import json
from pathlib import Path

import apsw
import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from needs import needs
from test_compile import _values

from app.model import codegen
from app.model.compile import DEFAULT_FLAGS, compile_model, prepare_model_dir
from app.scoring.bundle import load_model
from app.scoring.db import connect
from app.scoring.library import CompiledModel, shap_with

pytestmark = needs("gcc", "apt-get install gcc")
MODELS = Path(__file__).parent / "models"
TOL = 1e-9
N_CLIENTS = 75  # two full blocks of 32 and a partial one
SMALL_BUDGET = 256  # doubles of tables: a few shallow leaves on tables, the rest on the fly


def _recursive(model: CompiledModel, X: np.ndarray) -> np.ndarray:
    fn = model._lib.credit_shap_batch_recursive
    fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p], None
    out = np.empty((len(X), model.n_features + 1))
    fn(X.ctypes.data, len(X), out.ctypes.data)
    return out


def _stats(model: CompiledModel) -> dict[str, int]:
    out = np.zeros(5, dtype=np.int64)
    model._lib.credit_shap_table_stats.argtypes = [ctypes.c_void_p]
    model._lib.credit_shap_table_stats(out.ctypes.data)
    keys = ("leaves_on_tables", "leaves_on_the_fly", "table_doubles", "max_table_d", "trees_recursive")
    return dict(zip(keys, out.tolist(), strict=True))


def _deep_model_txt(path: Path) -> Path:
    """Many leaves, paths through up to ~20 distinct features, NaN in the data: leaves of large d."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(4000, 24)).astype(np.float32)
    X[rng.random(X.shape) < 0.08] = np.nan
    logit = np.nansum(np.sin(2 * X[:, :12]) * rng.normal(size=12), axis=1) + np.nan_to_num(X[:, 12] * X[:, 13])
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-logit))).astype(int)
    params = {"objective": "binary", "num_leaves": 96, "min_data_in_leaf": 3, "learning_rate": 0.1, "verbose": -1}
    params |= {"seed": 3, "deterministic": True, "num_threads": 1, "feature_fraction_bynode": 0.7}
    lgb.train(params, lgb.Dataset(X, y), num_boost_round=25).save_model(str(path))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, tuple[CompiledModel, lgb.Booster, list[float], Path]]:
    root = tmp_path_factory.mktemp("shap-tables")
    out = {}
    sources = {"categorical": (MODELS / "categorical.txt", ()), "deep": (_deep_model_txt(root / "deep.txt"), ())}
    sources["deep-small-budget"] = (sources["deep"][0], (f"-DSHAP_TABLE_BUDGET={SMALL_BUDGET}",))
    for name, (txt, extra) in sources.items():
        d = prepare_model_dir(txt, root / name)
        compile_model(d, progress=False, tl2cgen_reference=False, flags=(*DEFAULT_FLAGS, *extra))
        cuts = [t for tree in codegen.thresholds_from_model_text((d / "model.txt").read_text()) for t in tree]
        out[name] = (load_model(d), lgb.Booster(model_file=str(d / "model.txt")), cuts, d)
    return out


def _check(model: CompiledModel, booster: lgb.Booster, X: np.ndarray) -> np.ndarray:
    got = shap_with(model._lib, X)
    want = booster.predict(X, pred_contrib=True, num_threads=1)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
    np.testing.assert_allclose(_recursive(model, X), want, rtol=0, atol=TOL)
    return got


def test_the_tables_hold_what_the_budget_allows(models):
    """Every model's leaves are on tables or on the fly as the budget says; nothing falls back to the recursion."""
    rng = np.random.default_rng(0)
    for name, (model, booster, _, _) in models.items():
        X = rng.normal(0, 2, (40, model.n_features)).astype(np.float32)
        _check(model, booster, X)
        s = _stats(model)
        assert s["trees_recursive"] == 0, name
        assert s["leaves_on_tables"] + s["leaves_on_the_fly"] == sum(
            t["num_leaves"] for t in booster.dump_model()["tree_info"] if t["num_leaves"] > 1
        )
    assert _stats(models["deep"][0])["leaves_on_the_fly"] == 0  # default budget: every leaf fits
    small = _stats(models["deep-small-budget"][0])
    assert 0 < small["table_doubles"] <= SMALL_BUDGET and small["leaves_on_the_fly"] > 10 * small["leaves_on_tables"]
    most = max(_most_path_features(t["tree_structure"]) for t in models["deep"][1].dump_model()["tree_info"])
    assert most >= 10  # the on-the-fly leaves include long paths


def _most_path_features(node: dict, acc: frozenset = frozenset()) -> int:
    """The most distinct features on a path from node to a leaf."""
    if "leaf_value" in node:
        return len(acc)
    acc = acc | {node["split_feature"]}
    return max(_most_path_features(node["left_child"], acc), _most_path_features(node["right_child"], acc))


@pytest.mark.parametrize("name", ["categorical", "deep", "deep-small-budget"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_tables_equal_pred_contrib_on_random_rows(models, name, data):
    model, booster, cuts, _ = models[name]
    rows = data.draw(st.integers(1, 70))
    X = data.draw(hnp.arrays(np.float32, (rows, model.n_features), elements=_values(cuts)))
    got = _check(model, booster, np.ascontiguousarray(X))
    one = np.empty(model.n_features + 1)
    model._lib.credit_shap_row(np.ascontiguousarray(X[-1]).ctypes.data, one.ctypes.data)
    assert np.array_equal(one, got[-1])  # one row and a batch: the same bits


# ---------------------------------------------------------------------------------- the explanations table


@pytest.fixture(scope="module")
def portfolio(models, tmp_path_factory):
    """A real SQLite file of N_CLIENTS clients (ids with gaps) for the categorical model."""
    model, booster, cuts, model_dir = models["categorical"]
    rng = np.random.default_rng(5)
    X = rng.normal(0, 3, (N_CLIENTS, model.n_features)).astype(np.float32)
    X = np.where(rng.random(X.shape) < 0.5, np.abs(np.round(X)), X).astype(np.float32)  # category codes too
    X[rng.random(X.shape) < 0.15] = np.nan
    ids = np.arange(N_CLIENTS, dtype=np.int64) * 3 + 100
    db = tmp_path_factory.mktemp("expl") / "credit.db"
    conn = apsw.Connection(str(db))
    with conn:
        conn.execute(
            "CREATE TABLE features(client_id INTEGER PRIMARY KEY, x BLOB NOT NULL);"
            "CREATE TABLE feature_names(idx INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
        )
        conn.executemany(
            "INSERT INTO features VALUES (?, ?)", [(int(i), x.tobytes()) for i, x in zip(ids, X, strict=True)]
        )
        conn.executemany("INSERT INTO feature_names VALUES (?, ?)", list(enumerate(model.feature_names)))
    conn.close()
    return db, model_dir, ids, X, booster


def _as_matrix(rows, ids, n_features) -> np.ndarray:
    """explanations rows -> float64[len(ids), n_features + 1] (absent features: 0)."""
    pos = {int(i): k for k, i in enumerate(ids)}
    out = np.zeros((len(ids), n_features + 1))
    for cid, j, _value, shap, base in rows:
        out[pos[cid], j] = shap
        out[pos[cid], n_features] = base
    return out


def test_explanations_equal_shap_values_and_pred_contrib(portfolio):
    db, model_dir, ids, X, booster = portfolio
    conn = connect(db, model_dir)
    try:
        rows = conn.execute("SELECT client_id, feature, value, shap, base_value FROM explanations").fetchall()
        assert [r[:2] for r in rows] == sorted(r[:2] for r in rows)  # client_id then feature order
        assert all(r[3] != 0 for r in rows)
        got = _as_matrix(rows, ids, X.shape[1])
        assert sorted({r[0] for r in rows}) == ids.tolist()
        for k, cid in enumerate(ids):  # the same bits as shap_values(client_id)
            (text,) = conn.execute("SELECT shap_values(?)", (int(cid),)).fetchone()
            assert np.array_equal(np.array(json.loads(text)), got[k])
        np.testing.assert_allclose(got, booster.predict(X, pred_contrib=True, num_threads=1), rtol=0, atol=TOL)
        for cid, j, value, _shap, _base in rows[:200]:  # value: the float32 the model read, NULL when missing
            x = X[int(np.nonzero(ids == cid)[0][0]), j]
            assert (value is None) if np.isnan(x) else value == float(x)
        # the sum of a client's rows and its base value is the raw margin
        margin = dict(conn.execute("SELECT client_id, sum(shap) + min(base_value) FROM explanations GROUP BY 1"))
        raw = booster.predict(X, raw_score=True, num_threads=1)
        assert max(abs(margin[int(c)] - r) for c, r in zip(ids, raw, strict=True)) <= TOL
        # the challenger's table is the same engine under its own name
        conn2 = connect(db, model_dir, challenger=model_dir)
        try:
            assert conn2.execute("SELECT * FROM challenger_explanations").fetchall() == rows
        finally:
            conn2.close()
    finally:
        conn.close()


@settings(max_examples=30, deadline=None)
@given(lo=st.integers(90, 340), span=st.integers(0, 120), op=st.sampled_from(["range", "eq", "in"]))
def test_explanations_push_client_id_down(portfolio, lo, span, op):
    db, model_dir, ids, _X, _booster = portfolio
    conn = connect(db, model_dir)
    try:
        full = conn.execute("SELECT * FROM explanations").fetchall()
        if op == "range":
            where, params, keep = "client_id BETWEEN ? AND ?", (lo, lo + span), lambda c: lo <= c <= lo + span
        elif op == "eq":
            where, params, keep = "client_id = ?", (lo,), lambda c: c == lo
        else:
            where, params, keep = "client_id IN (?, ?)", (lo, lo + span), lambda c: c in (lo, lo + span)
        got = conn.execute(f"SELECT * FROM explanations WHERE {where} ORDER BY client_id, feature", params).fetchall()
        assert got == [r for r in full if keep(r[0])]
        plan = " ".join(
            str(r[3]) for r in conn.execute(f"EXPLAIN QUERY PLAN SELECT * FROM explanations WHERE {where}", params)
        )
        assert "main.features WHERE client_id" in plan
    finally:
        conn.close()


def test_explanations_fail_on_a_bad_feature_blob(portfolio, tmp_path):
    db, model_dir, ids, _X, _booster = portfolio
    bad = tmp_path / "bad.db"
    bad.write_bytes(db.read_bytes())
    conn = apsw.Connection(str(bad))
    conn.execute("UPDATE features SET x = zeroblob(2) WHERE client_id = ?", (int(ids[40]),))
    conn.close()
    conn = connect(bad, model_dir)
    try:
        with pytest.raises(apsw.Error) as info:
            conn.execute("SELECT count(*) FROM explanations").fetchall()
        assert f"explanations: features.x of client_id {int(ids[40])}: feature BLOB must be" in str(info.value)
        assert "got 2 bytes" in str(info.value)
        ok = conn.execute("SELECT count(DISTINCT client_id) FROM explanations WHERE client_id < ?", (int(ids[40]),))
        assert ok.fetchone()[0] == 40  # the clients before it are explained
    finally:
        conn.close()
