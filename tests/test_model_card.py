"""Model card and training-time fairness (app.model.card), written by every `credit train`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.model import card


def test_every_trained_model_has_a_card_naming_its_model_id(pipeline):
    manifest = json.loads((pipeline.model_dir / "manifest.json").read_text())
    text, fair = card.read(pipeline.model_dir)
    assert text is not None and manifest["model_id"] in text
    for section in ("Intended use", "## Data", "## Features", "Honest performance", "## Calibration",
                    "## Fairness", "Threshold and costs", "Known limitations", "## Versions"):  # fmt: skip
        assert section in text, section
    assert f"{manifest['threshold']:.4f}" in text
    assert manifest["data_fingerprint"] in text
    assert "gender: GENDER_F" in text and "DAYS_BIRTH" in text and "FAMILY_MARRIED" in text


def test_sensitive_features_mapping():
    names = ["DAYS_BIRTH", "EMPLOYED_BIRTH_RATIO", "GENDER_F", "FAMILY_WIDOW", "SUITE_FAMILY", "AMT_CREDIT"]
    names.append("AGE_YEARS")
    got = card.sensitive_features(names, ("gender", "age_band", "family_status", "education"))
    assert got == {
        "gender": ["GENDER_F"],
        "age_band": ["DAYS_BIRTH", "EMPLOYED_BIRTH_RATIO", "AGE_YEARS"],
        "family_status": ["FAMILY_WIDOW"],
    }


def test_training_fairness_is_on_out_of_fold_decisions(pipeline):
    manifest = json.loads((pipeline.model_dir / "manifest.json").read_text())
    _text, fair = card.read(pipeline.model_dir)
    assert fair["model_id"] == manifest["model_id"]
    assert "out-of-fold" in fair["source"]
    assert set(fair["attributes"]) == {"gender", "age_band", "family_status"}
    n = manifest["metrics"]["n_train"]
    assert fair["clients"] == n and fair["outcomes"] == n
    for table in fair["attributes"].values():
        assert sum(g["clients"] for g in table["groups"]) == n
        # the groups' refused defaulters and refused good clients are the decisions of the shipped threshold on
        # the honest out-of-fold probabilities: their cost is the one the evaluation reports at that threshold
        tp = sum(round((g["tpr"] or 0) * g["defaults"]) for g in table["groups"])
        fp = sum(round((g["fpr"] or 0) * (g["outcomes"] - g["defaults"])) for g in table["groups"])
        costs, positives = manifest["costs"], manifest["metrics"]["positives"]
        cost = (costs["fn"] * (positives - tp) + costs["fp"] * fp) / n
        assert cost == pytest.approx(manifest["evaluation"]["chosen"]["cost_per_client"], abs=1e-12)


def test_card_of_a_sparse_manifest_says_not_recorded():
    text = card.render({"model_id": "f" * 64})
    assert "f" * 64 in text and "not recorded" in text
    assert text.startswith("# Model card: ffffffffffff")


def test_card_lists_fairness_groups():
    sens = {"gender": np.array(["F", "F", "M", "M"], dtype=object)}
    fair = card.training_fairness(sens, np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.8, 0.9]), 0.5, min_group=1)
    text = card.render({"model_id": "a" * 64, "threshold": 0.5}, fair, ("gender",))
    assert "**gender** (best-treated: F)" in text
    assert "| M | 2 | 0.0 % |" in text and "below floor" in text
    assert fair["attributes"]["gender"]["groups"][0]["approval_rate"] == pytest.approx(0.5)
