"""The trees the per-leaf tables cannot take (app/model/codegen_shap_tables.py): a path through more than 31
distinct features keeps LightGBM's recursion, and a zero node count makes LightGBM's own TreeSHAP non-finite.

LightGBM's training never made such trees here, so they are written by hand as LightGBM model text: a
"caterpillar" tree whose every split is on a new feature (each left child a leaf, each right child the next
split), beside ordinary shallow ones. The deep one is explained by the recursion and the shallow ones by the
tables, all equal to `pred_contrib` to 1e-9; a model with a zero count is refused by the compile-time gate,
with nothing installed.
"""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from needs import needs
from test_shap_tables import _stats

from app.model.compile import ParityError, compile_model, prepare_model_dir
from app.scoring.bundle import load_model
from app.scoring.library import CompiledModel, shap_with

pytestmark = needs("gcc", "apt-get install gcc")
N_FEATURES = 36
TOL = 1e-9


def caterpillar(n_splits: int, seed: int, zero_leaf: int | None = None) -> str:
    """One tree in LightGBM's text format: split i on feature i ("x <= threshold", NaN goes left),
    left child leaf i, right child split i + 1; counts consistent from the leaves up."""
    rng = np.random.default_rng(seed)
    leaf_count = rng.integers(5, 50, size=n_splits + 1)
    if zero_leaf is not None:
        leaf_count[zero_leaf] = 0
    internal_count = np.cumsum(leaf_count[::-1])[::-1][:n_splits]  # everything below split i
    j = lambda values: " ".join(str(v) for v in values)  # noqa: E731
    return "\n".join(
        [
            f"num_leaves={n_splits + 1}",
            "num_cat=0",
            f"split_feature={j(range(n_splits))}",
            f"split_gain={j([1.0] * n_splits)}",
            f"threshold={j(f'{t:.17g}' for t in rng.normal(size=n_splits))}",
            f"decision_type={j([10] * n_splits)}",
            f"left_child={j(~i for i in range(n_splits))}",
            f"right_child={j([*range(1, n_splits), ~n_splits])}",
            f"leaf_value={j(f'{v:.17g}' for v in rng.normal(scale=0.3, size=n_splits + 1))}",
            f"leaf_weight={j(float(c) for c in leaf_count)}",
            f"leaf_count={j(leaf_count)}",
            f"internal_value={j([0.0] * n_splits)}",
            f"internal_weight={j(float(c) for c in internal_count)}",
            f"internal_count={j(internal_count)}",
            "is_linear=0",
            "shrinkage=1",
            "",
        ]
    )


def model_text(trees: list[str]) -> str:
    head = [
        "tree",
        "version=v4",
        "num_class=1",
        "num_tree_per_iteration=1",
        "label_index=0",
        f"max_feature_idx={N_FEATURES - 1}",
        "objective=binary sigmoid:1",
        "feature_names=" + " ".join(f"f{i}" for i in range(N_FEATURES)),
        "feature_infos=" + " ".join("[-5:5]" for _ in range(N_FEATURES)),
        "",
    ]
    body = "".join(f"Tree={k}\n{tree}\n" for k, tree in enumerate(trees))
    tail = "end of trees\n\nparameters:\n[objective: binary]\nend of parameters\n\npandas_categorical:null\n"
    return "\n".join(head) + body + tail


@pytest.fixture(scope="module")
def deep(tmp_path_factory) -> tuple[CompiledModel, lgb.Booster]:
    root = tmp_path_factory.mktemp("shap-deep")
    txt = root / "deep.txt"
    txt.write_text(model_text([caterpillar(34, seed=1), caterpillar(8, seed=3), caterpillar(12, seed=5)]))
    d = prepare_model_dir(txt, root / "model")
    compile_model(d, progress=False, tl2cgen_reference=False)  # its own TreeSHAP gate passes
    return load_model(d), lgb.Booster(model_file=str(d / "model.txt"))


def test_a_path_through_more_than_31_features_keeps_the_recursion(deep):
    model, booster = deep
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, N_FEATURES)).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    for k in range(35):  # row k goes right at the first k splits, then left: it ends in leaf k of the deep tree
        X[k, :k] = 5.0
        X[k, k : k + 1] = -5.0
    got = shap_with(model._lib, X)
    want = booster.predict(X, pred_contrib=True, num_threads=1)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
    stats = _stats(model)  # the tables are built on the first SHAP call
    assert stats["trees_recursive"] == 1  # the 34-feature tree; the two shallow ones are on tables
    assert stats["leaves_on_tables"] + stats["leaves_on_the_fly"] == 9 + 13
    assert len({round(float(v), 12) for v in booster.predict(X[:35], raw_score=True)}) == 35  # 35 leaves


@settings(max_examples=30, deadline=None)
@given(
    X=hnp.arrays(
        np.float32,
        (5, N_FEATURES),
        elements=st.one_of(
            st.floats(-3, 3, width=32), st.just(np.nan), st.just(np.inf), st.just(-np.inf), st.just(5.0)
        ),
    )
)
def test_deep_and_table_trees_equal_pred_contrib_on_any_row(deep, X):
    model, booster = deep
    got = shap_with(model._lib, np.ascontiguousarray(X))
    want = booster.predict(X, pred_contrib=True, num_threads=1)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


def test_a_zero_count_is_refused_by_the_gate_and_nothing_is_installed(tmp_path: Path):
    txt = tmp_path / "zero.txt"
    txt.write_text(model_text([caterpillar(6, seed=2, zero_leaf=3), caterpillar(8, seed=3)]))
    booster = lgb.Booster(model_file=str(txt))
    X = np.random.default_rng(0).normal(size=(50, N_FEATURES))
    assert not np.isfinite(booster.predict(X, pred_contrib=True)).all()  # LightGBM's own answer
    d = prepare_model_dir(txt, tmp_path / "model")
    with pytest.raises(ParityError, match="TreeSHAP parity gate failed.*nothing installed"):
        compile_model(d, progress=False, tl2cgen_reference=False)
    assert not list(d.glob("*.so"))
