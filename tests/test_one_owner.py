"""One owner per fact: the prediction log's columns come from its row type, and the manifest is written and read
through the typed `Manifest` (app/scoring/bundle.py). Unit tests: no pipeline."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import apsw
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.scoring.bundle import (
    Champion,
    Manifest,
    ModelError,
    Reference,
    as_manifest,
    document_manifest,
    manifest_dict,
)
from app.scoring.sections import Calibration, Distributed, Metrics
from app.store import predlog


def test_the_log_row_type_names_every_column_of_the_table_in_order_of_its_fields(tmp_path):
    conn = apsw.Connection(str(tmp_path / "store.db"))
    predlog.ensure_schema(conn)
    table = [r[1] for r in conn.execute("PRAGMA table_info(prediction_log)")]
    assert [c for c in table if c != "id"] == list(predlog.COLUMNS)
    row = predlog.LogRow(
        ts=1.5,
        request_id="r1",
        client_id=7,
        features=b"\x00\x00\x80\x3f",
        probability=0.25,
        decision="accept",
        model_id="m",
        latency_ms=0.5,
        role="officer",
        endpoint="GET /clients/{id}/score",
        user_name="ana",
    )
    stored = row.__class__(
        **{**{c: getattr(row, c) for c in predlog.COLUMNS}, "request_id": "r2", "data_version": "v1"}
    )
    predlog.write(conn, [row, stored])
    got = conn.execute(f"SELECT {', '.join(predlog.COLUMNS)} FROM prediction_log ORDER BY id").fetchall()
    assert list(got[0]) == [getattr(row, c) for c in predlog.COLUMNS]
    # a stored client's vector is kept once in logged_vectors, the row's own column is empty
    assert got[1][predlog.COLUMNS.index("features")] == b"" and got[1][predlog.COLUMNS.index("data_version")] == "v1"
    assert conn.execute("SELECT x FROM logged_vectors").fetchall() == [(row.features,)]


def _manifest(**extra) -> Manifest:
    return Manifest(
        model_id="",
        features=["a", "b"],
        n_features=2,
        threshold=0.3,
        costs={"fn": 10.0, "fp": 1.0},
        calibration=Calibration(method="platt", a=1.5, b=-0.2),
        champion=Champion(kind="lightgbm", why="cheapest"),
        global_importance=[("b", 0.5), ("a", 0.25)],
        reference=Reference(file="reference.npy", rows=10, bins={"a": {"edges": [0.0], "fractions": [0.5, 0.5, 0]}}),
        **extra,
    )


def test_the_written_manifest_is_json_without_unset_sections():
    out = manifest_dict(_manifest())
    assert json.loads(json.dumps(out)) == out  # lists, not tuples: what manifest.json holds
    assert out["global_importance"] == [["b", 0.5], ["a", 0.25]]
    assert out["champion"] == {"kind": "lightgbm", "why": "cheapest", "forced": False}
    for unset in ("library", "distributed", "model_text_sha256"):
        assert unset not in out
    assert out["data_source"] is None  # a recorded "unknown" stays in the file
    assert manifest_dict(_manifest(distributed=Distributed(final_rows=3)))["distributed"] == {"final_rows": 3}


def test_a_non_finite_figure_is_refused_not_written():
    with pytest.raises(ValueError):
        manifest_dict(_manifest(metrics=Metrics(oof_auc=math.nan)))


def test_as_manifest_types_a_raw_manifest_and_refuses_a_broken_one():
    m = _manifest()
    assert as_manifest(m) is m
    assert as_manifest(manifest_dict(m)) == m
    with pytest.raises(ModelError, match="invalid manifest"):
        as_manifest({"features": ["a"], "threshold": 0.5})  # no model id


def test_document_manifest_types_a_sparse_manifest_and_still_refuses_a_wrong_type():
    m = _manifest()
    assert document_manifest(m) is m
    sparse = document_manifest({"model_id": "f" * 64})
    assert sparse.model_id == "f" * 64 and sparse.features == [] and math.isnan(sparse.threshold)
    assert sparse.metrics == Metrics() and sparse.champion is None and sparse.data_period is None
    assert document_manifest({}).model_id == ""
    with pytest.raises(ModelError, match="invalid manifest"):
        document_manifest({"model_id": "x", "features": "abc", "threshold": 0.5})  # a string is not a feature list


names = st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=6, unique=True)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=60, deadline=None)
@given(features=names, threshold=finite, weights=st.lists(finite, max_size=6), forced=st.booleans())
def test_writing_then_reading_a_manifest_gives_it_back(features, threshold, weights, forced):
    m = Manifest(
        model_id="x" * 64,
        features=features,
        threshold=threshold,
        global_importance=list(zip(features, weights, strict=False)),
        champion=Champion(kind="scorecard", forced=forced),
    )
    text = json.dumps(manifest_dict(m), allow_nan=False)
    assert msgspec.convert(json.loads(text), Manifest) == m


# ---------------------------------------------------------------- no dict read of a manifest in app/ and ui/

ROOT = Path(__file__).resolve().parent.parent
MANIFEST_NAMES = {"manifest", "raw_manifest", "new_manifest", "manifest_raw"}
# the dashboard calls GET /model's answer (the manifest without its drift reference) `model`
UI_MANIFEST_NAMES = {"model"}
# calls whose result is a manifest as a dict (what manifest.json holds)
MANIFEST_CALLS = {"manifest_dict", "train_arrays", "train", "train_on_dask"}
# files where a variable named `manifest` is another document, never the model's manifest.json
OTHER_MANIFESTS = {
    "app/scoring/bundle.py": "the owner: it types the file (read_manifest) and computes the model id over its JSON",
    "app/features_parquet.py": "the Parquet feature export's format record (_manifest/_features.json)",
    "app/scoring/batch.py": "the Parquet feature export's partition list; the model's is read via as_manifest",
    "app/cli/batch.py": "the Parquet feature export's partition list",
    "app/cli/distributed.py": "the Parquet partitions written by `credit features`",
    "app/data/distributed.py": "the Parquet partitions written by `credit features`",
}


def _mentions_manifest_file(node: ast.AST) -> bool:
    return any(
        (isinstance(n, ast.Name) and n.id == "MANIFEST")
        or (isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.endswith("manifest.json"))
        for n in ast.walk(node)
    )


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        f = node.func
        return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
    return None


def manifest_dict_reads(source: str, names: set[str] = MANIFEST_NAMES) -> list[tuple[int, str]]:
    """(line, text) of every subscript or .get() read of a manifest held as a dict: a name or attribute named like
    one, a name assigned the result of a call that returns one, or a JSON file read of manifest.json."""
    tree = ast.parse(source)
    bound = set(names)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and (
            _call_name(node.value) in MANIFEST_CALLS
            or (_call_name(node.value) in {"loads", "_read_json", "load"} and _mentions_manifest_file(node.value))
        ):
            bound |= {t.id for t in node.targets if isinstance(t, ast.Name)}

    def is_manifest(expr: ast.AST) -> bool:
        if isinstance(expr, ast.Name):
            return expr.id in bound
        if isinstance(expr, ast.Attribute):
            return expr.attr in names
        if isinstance(expr, ast.BoolOp):  # `manifest or {}`
            return any(is_manifest(v) for v in expr.values)
        if isinstance(expr, ast.Call):  # json.loads(path_to_manifest.json).get(...), manifest_dict(m)[...]
            return _call_name(expr) in MANIFEST_CALLS or (
                _call_name(expr) in {"loads", "_read_json"} and _mentions_manifest_file(expr)
            )
        return False

    def read_of_manifest(node: ast.AST) -> bool:
        if isinstance(node, ast.Subscript):
            return isinstance(node.ctx, ast.Load) and is_manifest(node.value)
        return (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and is_manifest(node.func.value)
        )

    found = [(node.lineno, ast.unparse(node)) for node in ast.walk(tree) if read_of_manifest(node)]
    return sorted(found)


def test_the_scan_finds_every_kind_of_dict_read_of_a_manifest():
    source = """
manifest = {}
a = manifest["threshold"]
b = bundle.raw_manifest.get("features")
c = json.loads((folder / MANIFEST).read_text()).get("model_id")
m = train_arrays(X, y, names, d)
e = m["metrics"]
f = (manifest or {}).get("costs")
ok = typed.threshold
manifest.threshold
"""
    lines = [line for line, _text in manifest_dict_reads(source)]
    assert lines == [3, 4, 5, 7, 8]


def test_no_dict_read_of_a_manifest_in_app_or_ui():
    """The model's manifest is read through the typed Manifest (app.scoring.bundle: `read_manifest`, `as_manifest`,
    `document_manifest`, `ModelBundle.manifest`), never as a dict: one owner of each field's name and default."""
    offenders = []
    for path in sorted([*ROOT.glob("app/**/*.py"), *ROOT.glob("ui/**/*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        if rel in OTHER_MANIFESTS:
            continue
        names = MANIFEST_NAMES | UI_MANIFEST_NAMES if rel.startswith("ui/") else MANIFEST_NAMES
        reads = manifest_dict_reads(path.read_text(encoding="utf-8"), names)
        offenders += [f"{rel}:{line}: {text}" for line, text in reads]
    assert offenders == []


def test_the_other_manifests_are_still_files_that_use_the_name():
    """Each exemption names a file that exists and still calls a document `manifest` (none is stale)."""
    for rel in OTHER_MANIFESTS:
        assert "manifest" in (ROOT / rel).read_text(encoding="utf-8"), rel
