"""Sensitive attributes kept out of the model by configuration (CREDIT_EXCLUDE_SENSITIVE, issue 19 item 3).

The feature vector's layout does not change (library, SQL and API read the same vectors): the excluded
features are missing for every training row, so the shipped model cannot use them, and the manifest's
`sensitive` record gives the effect of the choice on the champion's honest AUC and cost (same folds).
"""

from __future__ import annotations

import json

import apsw
import lightgbm as lgb
import numpy as np
import pytest
from click.testing import CliRunner

from app.cli.model import train_command
from app.config import load_settings
from app.model import card, report
from app.model.train import train_arrays
from app.monitoring.fairness import derived_features

NAMES = ["EXT_SOURCE_2", "AMT_CREDIT", "DAYS_BIRTH", "EMPLOYED_BIRTH_RATIO", "GENDER_F", "FAMILY_MARRIED", "noise"]
SENSITIVE = ["DAYS_BIRTH", "EMPLOYED_BIRTH_RATIO", "GENDER_F", "FAMILY_MARRIED"]
KW = {"seed": 3, "quick": True, "progress": False, "num_threads": 1, "folds": 3}


def _data(n=1500, seed=0):
    """Risk from EXT_SOURCE_2 and, strongly, from DAYS_BIRTH (so excluding it must cost AUC)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(NAMES))).astype(np.float32)
    X[:, 4] = rng.random(n) < 0.5
    X[:, 5] = rng.random(n) < 0.4
    logit = 1.2 * X[:, 0] + 1.4 * X[:, 2] - 2.0
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)


def _split_counts(model_dir):
    booster = lgb.Booster(model_file=str(model_dir / "model.txt"))
    return dict(zip(NAMES, booster.feature_importance("split").tolist(), strict=True)), booster


def test_mapping_is_the_one_place():
    got = derived_features(NAMES, ("gender", "age_band", "family_status"))
    assert got == {
        "gender": ["GENDER_F"],
        "age_band": ["DAYS_BIRTH", "EMPLOYED_BIRTH_RATIO"],
        "family_status": ["FAMILY_MARRIED"],
    }
    assert card.sensitive_features(NAMES, ("gender",)) == {"gender": ["GENDER_F"]}


def test_default_is_documented_and_excludes():
    assert load_settings({}).exclude_sensitive is True
    assert load_settings({"CREDIT_EXCLUDE_SENSITIVE": "0"}).exclude_sensitive is False


@pytest.mark.parametrize("kind", ["lightgbm", "scorecard", "blend"])
def test_excluded_features_are_not_used_and_the_effect_is_reported(kind, tmp_path):
    X, y = _data()
    m = train_arrays(X, y, NAMES, tmp_path / "m", candidates=(kind,), exclude_sensitive=True, **KW)
    rec = m["sensitive"]
    assert rec["excluded"] is True and rec["attributes"] == ["gender", "age_band", "family_status"]
    assert sorted(n for v in rec["features"].values() for n in v) == sorted(SENSITIVE)
    # the layout is unchanged, the model does not use them: no split, and their values do not move a score
    assert m["features"] == NAMES
    splits, booster = _split_counts(tmp_path / "m")
    assert all(splits[n] == 0 for n in SENSITIVE) and splits["EXT_SOURCE_2"] > 0
    Z = X[:200].copy()
    Z[:, [NAMES.index(n) for n in SENSITIVE]] = np.random.default_rng(1).normal(size=(200, 4)) * 1e4
    np.testing.assert_array_equal(booster.predict(X[:200], raw_score=True), booster.predict(Z, raw_score=True))
    assert all(v == 0 for name, v in m["global_importance"] if name in SENSITIVE)
    # the effect: the configured side is the reported figure; age carries signal here, so dropping it costs AUC
    eff = rec["effect"]
    assert eff["candidate"] == kind
    assert eff["without"]["oof_auc"] == m["metrics"]["oof_auc"]
    assert eff["without"]["cost_per_client"] == m["metrics"]["cost_per_client"]
    assert eff["with"]["oof_auc"] > eff["without"]["oof_auc"] + 0.03
    lines = report.table(m)
    assert any("EXCLUDED" in line for line in lines) and any("without them AUC" in line for line in lines)
    assert "EXCLUDED from the model" in (tmp_path / "m" / "report.html").read_text()
    card_text = (tmp_path / "m" / "model_card.md").read_text()
    assert "EXCLUDED from the model" in card_text
    assert "Sensitive attributes examined: gender, age_band, family_status." in card_text


def test_included_features_are_used_and_the_effect_mirrors(tmp_path):
    X, y = _data()
    m = train_arrays(X, y, NAMES, tmp_path / "m", candidates=("lightgbm",), exclude_sensitive=False, **KW)
    rec = m["sensitive"]
    assert rec["excluded"] is False
    splits, _ = _split_counts(tmp_path / "m")
    assert splits["DAYS_BIRTH"] > 0
    assert rec["effect"]["with"]["oof_auc"] == m["metrics"]["oof_auc"]
    assert rec["effect"]["with"]["oof_auc"] > rec["effect"]["without"]["oof_auc"]
    # the other side is refitted with each fold's parameters and tree count: deterministic, and with one trial
    # per search (the default parameters) both choices are evaluated the same way
    ex = train_arrays(X, y, NAMES, tmp_path / "e", candidates=("lightgbm",), exclude_sensitive=True, trials=1, **KW)
    again = train_arrays(X, y, NAMES, tmp_path / "a", candidates=("lightgbm",), exclude_sensitive=True, trials=1, **KW)
    assert ex["sensitive"] == again["sensitive"] and "tree count" in ex["sensitive"]["effect"]["procedure"]
    assert ex["sensitive"]["effect"]["with"]["oof_auc"] > ex["sensitive"]["effect"]["without"]["oof_auc"]
    assert "used by the model" in (tmp_path / "m" / "model_card.md").read_text()


def test_no_derived_feature_no_effect(tmp_path):
    X, y = _data()
    names = [f"x{i}" for i in range(len(NAMES))]
    m = train_arrays(X, y, names, tmp_path / "m", candidates=("scorecard",), exclude_sensitive=True, **KW)
    assert m["sensitive"] == {
        "attributes": ["gender", "age_band", "family_status"],
        "excluded": False,
        "features": {},
        "effect": None,
    }
    assert any("no model feature derives from them" in line for line in report.table(m))


def test_pipeline_default_excludes_and_fairness_stays(pipeline):
    """The generated Home Credit data trained with the defaults: the features derived from gender, age and
    family status are out of the model, and fairness is still measured on the attributes themselves."""
    manifest = json.loads((pipeline.model_dir / "manifest.json").read_text())
    rec = manifest["sensitive"]
    assert rec["excluded"] is True
    assert {"GENDER_F", "DAYS_BIRTH", "AGE_YEARS", "FAMILY_MARRIED"} <= {n for v in rec["features"].values() for n in v}
    assert rec["effect"]["with"]["oof_auc"] > 0.5 and rec["effect"]["without"]["oof_auc"] > 0.5
    booster = lgb.Booster(model_file=str(pipeline.model_dir / "model.txt"))
    splits = dict(zip(manifest["features"], booster.feature_importance("split").tolist(), strict=True))
    assert all(splits[n] == 0 for v in rec["features"].values() for n in v)
    _text, fair = card.read(pipeline.model_dir)
    assert set(fair["attributes"]) == {"gender", "age_band", "family_status"}


def _tiny_db(path, X, y, names):
    conn = apsw.Connection(str(path))
    conn.execute(
        "CREATE TABLE features(client_id INTEGER PRIMARY KEY, x BLOB NOT NULL);"
        "CREATE TABLE feature_names(idx INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
        "CREATE TABLE labels(client_id INTEGER PRIMARY KEY, target INTEGER NOT NULL);"
    )
    with conn:
        conn.executemany("INSERT INTO feature_names VALUES (?, ?)", list(enumerate(names)))
        rows = [(i, r.astype("<f4").tobytes()) for i, r in enumerate(X)]
        conn.executemany("INSERT INTO features VALUES (?, ?)", rows)
        conn.executemany("INSERT INTO labels VALUES (?, ?)", [(i, int(t)) for i, t in enumerate(y)])
    conn.close()


CASES = [("--include-sensitive", "1", False), (None, "0", False), ("--exclude-sensitive", "0", True), (None, "1", True)]


@pytest.mark.parametrize(("flag", "env", "excluded"), CASES)
def test_cli_option_then_environment(flag, env, excluded, tmp_path, monkeypatch):
    X, y = _data(n=600)
    _tiny_db(tmp_path / "t.db", X, y, NAMES)
    monkeypatch.setenv("CREDIT_EXCLUDE_SENSITIVE", env)
    args = ["--db", str(tmp_path / "t.db"), "--model", str(tmp_path / "m"), "--quick", "--folds", "3"]
    res = CliRunner().invoke(train_command, [*args, "--candidates", "scorecard", *([flag] if flag else [])])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["sensitive"]["excluded"] is excluded
    assert ("EXCLUDED from the model" if excluded else "used by the model") in res.output
