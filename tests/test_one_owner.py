"""One owner per fact: the prediction log's columns come from its row type, and the manifest is written and read
through the typed `Manifest` (app/scoring/bundle.py). Unit tests: no pipeline."""

from __future__ import annotations

import json
import math

import apsw
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.scoring.bundle import Champion, Manifest, ModelError, Reference, as_manifest, manifest_dict
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
        calibration={"method": "platt", "a": 1.5, "b": -0.2},
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
    assert manifest_dict(_manifest(distributed={"final_rows": 3}))["distributed"] == {"final_rows": 3}


def test_a_non_finite_figure_is_refused_not_written():
    with pytest.raises(ValueError):
        manifest_dict(_manifest(metrics={"oof_auc": math.nan}))


def test_as_manifest_types_a_raw_manifest_and_refuses_a_broken_one():
    m = _manifest()
    assert as_manifest(m) is m
    assert as_manifest(manifest_dict(m)) == m
    with pytest.raises(ModelError, match="invalid manifest"):
        as_manifest({"features": ["a"], "threshold": 0.5})  # no model id


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
