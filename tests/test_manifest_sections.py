"""The manifest's typed sections (app/scoring/sections.py): a manifest written by `credit train` reads into the
typed Manifest and writes back as the same JSON object (no key lost, none added); an older, sparser manifest
still loads and renders the card, the report and the dashboard's model pages; and no reader of app/, ui/ or
benchmarks/ reads a typed section as a dict."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.model import card, report
from app.model.train import train_arrays
from app.scoring.bundle import Manifest, as_manifest, calibration_map, document_manifest, manifest_dict
from app.scoring.sections import UNSET, Calibration, Metrics, Search, Sensitive
from ui import model_report, report_html
from ui.pages.model_card import card_sections

ROOT = Path(__file__).resolve().parent.parent


def _key_paths(obj: object, prefix: str = "") -> set[str]:
    """Every key of a JSON object, nested ones as a/b/c (list items share their list's path)."""
    out: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            out |= {f"{prefix}{k}"} | _key_paths(v, f"{prefix}{k}/")
    elif isinstance(obj, list):
        for v in obj:
            out |= _key_paths(v, prefix)
    return out


def _round_trips(raw: dict) -> None:
    typed = msgspec.convert(raw, Manifest)
    back = manifest_dict(typed)
    assert _key_paths(back) ^ _key_paths(raw) == set()  # no key lost, none added, at any depth
    assert back == raw
    # and the figures kept their JSON types: an int stays an int, a float a float
    assert json.dumps(back, sort_keys=True) == json.dumps(raw, sort_keys=True)


@pytest.fixture(scope="module")
def tiny_manifest(tmp_path_factory) -> dict:
    """A manifest written by train_arrays on a small data set (no feature derived from a sensitive attribute)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 4))
    y = (X[:, 0] + rng.normal(scale=1.0, size=600) > 1.0).astype(np.int32)
    folder = tmp_path_factory.mktemp("tiny") / "model"
    train_arrays(X, y, [f"v{i}" for i in range(4)], folder, seed=1, quick=True, progress=False, num_threads=1)
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def test_a_manifest_written_by_train_round_trips_through_the_typed_manifest(tiny_manifest):
    raw = tiny_manifest
    for section in ("metrics", "candidates", "baselines", "calibration", "sensitive", "evaluation", "search"):
        assert raw[section], section  # the file has every section the types cover
    assert raw["sensitive"]["effect"] is None and raw["search"]["budget_seconds"] is None  # two written nulls
    _round_trips(raw)
    typed = as_manifest(raw)
    assert typed.metrics.oof_auc == raw["metrics"]["oof_auc"]
    assert typed.metrics.confusion.tp == raw["metrics"]["confusion"]["tp"]
    assert typed.candidates["lightgbm"].n_trees == raw["candidates"]["lightgbm"]["n_trees"]
    assert typed.evaluation.chosen.threshold == raw["evaluation"]["chosen"]["threshold"] == raw["threshold"]
    assert [b.n for b in typed.evaluation.score_bands] == [b["n"] for b in raw["evaluation"]["score_bands"]]
    assert calibration_map(typed.calibration) == (raw["calibration"]["a"], raw["calibration"]["b"])


def test_the_shared_pipelines_compiled_manifest_round_trips(pipeline):
    """The pipeline's model: trained on generated clients (features derived from the sensitive attributes, so
    the `sensitive.effect` record is filled) and compiled (the `library` section)."""
    raw = json.loads((pipeline.model_dir / "manifest.json").read_text(encoding="utf-8"))
    assert raw["sensitive"]["effect"]["with"] and raw["library"]["sha256"]
    _round_trips(raw)
    typed = as_manifest(raw)
    assert typed.sensitive.effect.with_.oof_auc == raw["sensitive"]["effect"]["with"]["oof_auc"]


OLD = {
    "model_id": "a" * 64,
    "features": ["EXT_SOURCE_1", "CODE_GENDER_F"],
    "threshold": 0.31,
    "costs": {"fn": 10.0, "fp": 1.0},
    # an older training's metrics: no evaluation, no sensitive record, figures this code no longer writes
    "metrics": {"oof_auc": 0.7123, "cost_per_client_at_0_5": 0.61, "imbalance": "class weights", "auc": 0.7},
    "calibration": {"method": "platt", "a": 1.25, "b": -0.5},
}


def test_an_older_sparse_manifest_loads_and_renders_the_card_and_the_report():
    typed = document_manifest(OLD)
    assert typed.sensitive is None and typed.evaluation.roc is None and typed.metrics.n_train is None
    text = card.render(OLD)
    assert "Pooled out-of-fold AUC: 0.7123" in text
    assert "(at 0.5: 0.6100)" in text and "Imbalance handling: class weights" in text
    assert "Labelled clients: not recorded, of whom not recorded defaulted." in text
    assert "(exclusion not recorded)" in text  # no sensitive record
    assert '`{"method": "platt", "a": 1.25, "b": -0.5}`' in text
    lines = report.table(OLD)
    assert "calibration platt (a=1.2500, b=-0.5000); threshold 0.3100" in lines[-1]
    assert report.sensitive_lines(OLD) == []
    assert report.charts(OLD)  # empty curves draw empty charts
    assert not model_report.has_evaluation(OLD) and model_report.sensitive(OLD, "en") is None
    assert model_report.headline(OLD, "fr")[1][1] == "0,7123"
    assert "0,7123" in " ".join(" ".join(p) for _h, p in card_sections(OLD, "fr"))
    assert "0.7123" in report_html.render(OLD, "en")  # the headline tile, no chart or table failing
    # the sections it has are written back as they are: nothing added, the figures this code does not read dropped
    out = manifest_dict(as_manifest(OLD))
    assert out["metrics"] == {k: v for k, v in OLD["metrics"].items() if k != "auc"}
    assert out["calibration"] == OLD["calibration"] and "sensitive" in out and out["sensitive"] is None


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
METRIC_FIELDS = {
    "oof_auc": finite,
    "auc_mean": finite,
    "auc_folds": st.lists(finite, max_size=5),
    "confusion": st.fixed_dictionaries({}, optional={k: st.integers(0, 10**6) for k in ("tn", "fp", "fn", "tp")}),
    "honest": st.booleans(),
    "n_train": st.integers(0, 10**7),
}


@settings(max_examples=80, deadline=None)
@given(
    metrics=st.fixed_dictionaries({}, optional=METRIC_FIELDS),
    search=st.fixed_dictionaries(
        {}, optional={"budget_seconds": st.none() | finite, "bags": st.integers(1, 8), "stopped_by_time": st.booleans()}
    ),
    sensitive=st.none()
    | st.fixed_dictionaries(
        {},
        optional={
            "attributes": st.lists(st.sampled_from(["gender", "age_band"]), unique=True),
            "excluded": st.booleans(),
            "effect": st.none(),
        },
    ),
    calibration=st.none() | st.fixed_dictionaries({}, optional={"method": st.just("none"), "a": finite, "b": finite}),
)
def test_a_section_is_written_back_with_exactly_the_keys_it_was_read_with(metrics, search, sensitive, calibration):
    """The law behind the round trip: whatever subset of a section's fields a manifest has (a written null
    included), the typed view writes back that subset, unchanged."""
    raw = {
        "model_id": "m",
        "features": ["a"],
        "threshold": 0.5,
        "metrics": metrics,
        "search": search,
        "sensitive": sensitive,
        "calibration": calibration,
    }
    out = manifest_dict(as_manifest(raw))
    for key in ("metrics", "search", "sensitive", "calibration"):
        assert out[key] == raw[key], key


def test_the_sections_types_and_their_unset_defaults():
    assert Search().budget_seconds is UNSET and Sensitive().effect is UNSET  # absent, not null
    assert msgspec.to_builtins(Metrics()) == {} and msgspec.to_builtins(Sensitive(effect=None)) == {"effect": None}
    assert calibration_map(None) == (1.0, 0.0) == calibration_map(Calibration(method="none"))
    with pytest.raises(Exception, match="invalid manifest"):
        as_manifest({"model_id": "m", "features": [], "threshold": 0.5, "metrics": {"oof_auc": "high"}})


# ---------------------------------------------------------------- no dict read of a typed section

SECTIONS = {"metrics", "evaluation", "sensitive", "calibration", "search", "distributed"}
# a `.sensitive` that is not the manifest's: the settings' CREDIT_SENSITIVE string
NOT_SECTIONS = {"settings", "s"}


def section_dict_reads(source: str) -> list[tuple[int, str]]:
    """(line, text) of every subscript or .get() of a typed section: `x.metrics["auc"]`, `x.evaluation.get(...)`,
    `(x.sensitive or {}).get(...)`, or the same on a name bound to one (`m = manifest.metrics; m.get(...)`)."""
    tree = ast.parse(source)

    def is_section(expr: ast.AST) -> bool:
        if isinstance(expr, ast.Attribute):
            owner = expr.value.id if isinstance(expr.value, ast.Name) else None
            return expr.attr in SECTIONS and owner not in NOT_SECTIONS
        if isinstance(expr, ast.BoolOp):
            return any(is_section(v) for v in expr.values)
        return False

    bound = {
        t.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and is_section(node.value)
        for t in node.targets
        if isinstance(t, ast.Name)
    }

    def held(expr: ast.AST) -> bool:
        return is_section(expr) or (isinstance(expr, ast.Name) and expr.id in bound)

    def read(node: ast.AST) -> bool:
        if isinstance(node, ast.Subscript):
            return isinstance(node.ctx, ast.Load) and held(node.value)
        return (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and held(node.func.value)
        )

    return sorted((node.lineno, ast.unparse(node)) for node in ast.walk(tree) if read(node))


def test_the_section_scan_finds_each_kind_of_dict_read():
    source = """
a = manifest.metrics["oof_auc"]
b = model.evaluation.get("roc")
c = (manifest.sensitive or {}).get("attributes")
m = manifest.metrics
d = m.get("n_train")
ok = manifest.metrics.oof_auc
fine = settings.sensitive
"""
    assert [line for line, _ in section_dict_reads(source)] == [2, 3, 4, 6]


def test_no_dict_read_of_a_typed_section_in_app_ui_or_benchmarks():
    offenders = []
    for path in sorted([*ROOT.glob("app/**/*.py"), *ROOT.glob("ui/**/*.py"), *ROOT.glob("benchmarks/**/*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        if any(part.startswith(".") for part in path.relative_to(ROOT).parts):
            continue  # benchmarks/.cache: the engines' private venvs, not our code
        offenders += [f"{rel}:{line}: {text}" for line, text in section_dict_reads(path.read_text(encoding="utf-8"))]
    assert offenders == []
