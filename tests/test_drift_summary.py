"""The drift summary above Evidently's English detail (ui/drift_summary.py): which features drifted and by how
much, the verdict, its reasons and the window, in French and English, every number through the locale layer; then
the same sentences over the real API's drift answer (in process, over a copy of the test pipeline)."""

from __future__ import annotations

import asyncio
import contextlib
import re

import httpx
import msgspec
import pytest
from apiserver import copy_pipeline

from app.config import Settings
from app.service.schemas import DriftReport
from ui import drift_summary, locale
from ui.api_client import ApiClient
from ui.i18n import feature_label

ENGLISH_NUMBER = re.compile(r"(?<![\w.,])[1-9]\d{0,2}(?:,\d{3})+(?![\d,])|(?<![\w.])\d+\.\d+(?![\w.])")
ENGLISH = re.compile(r"\b(feature|features|importance-weighted|refusal rate|against|watch|act|of the model)\b")


def report(drifted: int = 3, level: str = "act") -> DriftReport:
    names = ["AMT_INCOME_TOTAL", "EXT_SOURCE_2", "DAYS_BIRTH", "AMT_CREDIT", "AMT_ANNUITY", "CNT_CHILDREN", "X7"]
    features = [{"feature": n, "psi": 0.9 - 0.1 * i, "drifted": i < drifted} for i, n in enumerate(names)]
    return msgspec.convert(
        {
            "method": "psi",
            "model_id": "m",
            "window": {
                "since": None,
                "until": None,
                "last": 1000,
                "rows": 1234,
                "first_ts": "2026-12-07T09:59:50+00:00",
                "last_ts": "2026-12-07T10:12:03+00:00",
            },
            "psi_threshold": 0.2,
            "drift_share": 0.5,
            "features": features,
            "n_features": len(features),
            "n_drifted": drifted,
            "share_drifted": drifted / len(features),
            "dataset_drift": False,
            "score_psi": 0.15,
            "score_drifted": False,
            "seconds": 0.1,
            "verdict": {
                "level": level,
                "reasons": ["AMT_INCOME_TOTAL (importance rank 1, 31% of the model): PSI 0.90 > 0.25"],
                "features": {
                    "weighted_psi": 0.3123,
                    "level": "act",
                    "top": [
                        {
                            "feature": "AMT_INCOME_TOTAL",
                            "rank": 1,
                            "importance_share": 0.31,
                            "psi": 0.9,
                            "level": "act",
                        },
                        {"feature": "EXT_SOURCE_2", "rank": 2, "importance_share": 0.2, "psi": 0.05, "level": "stable"},
                    ],
                    "minor_drifted": [
                        {"feature": "DAYS_BIRTH", "importance_share": 0.01, "psi": 1.4, "level": "act"},
                        {"feature": "AMT_CREDIT", "importance_share": 0.01, "psi": 0.3, "level": "watch"},
                    ],
                },
                "score": {"psi": 0.15, "level": "watch"},
                "decisions": {
                    "window_refusal_rate": 0.121,
                    "window_requests": 1234,
                    "reference_refusal_rate": 0.08,
                    "reference_rows": 2400,
                    "z": 3.43,
                    "p_value": 0.0004,
                    "level": "act",
                },
            },
            "reference": {"text": "training sample", "rows": 2400, "model_id": "m", "trained_at": None},
        },
        DriftReport,
    )


def test_the_french_summary_names_the_drifted_features_their_psi_the_verdict_and_the_window():
    text = drift_summary.sentences(report(), "fr")
    joined = " ".join(text)
    assert text[0] == "Verdict : à traiter."
    assert "les 1 234 dernières requêtes" in joined.replace("\u202f", " ").replace("\u00a0", " ")
    assert locale.when("2026-12-07T09:59:50+00:00", "fr") in joined and "2026-12-07" not in joined
    assert "3 variables sur 7 ont dérivé au-delà du seuil PSI 0,20" in joined
    for name, psi in (("AMT_INCOME_TOTAL", "0,90"), ("EXT_SOURCE_2", "0,80"), ("DAYS_BIRTH", "0,70")):
        assert f"{feature_label(name, 'fr')} (PSI {psi})" in joined
    assert "rang 1 par importance (31\u00a0% du modèle) : PSI 0,90, au-delà du seuil d'action 0,25" in joined
    assert "PSI des variables pondéré par leur importance : 0,312 (à traiter)" in joined
    assert "Distribution des scores : PSI 0,150 (à surveiller)" in joined
    assert "Taux de refus 12,1\u00a0% sur la fenêtre contre 8,0\u00a0% à l'entraînement (z = 3,4, p < 0,001" in joined
    assert not ENGLISH_NUMBER.findall(joined) and not ENGLISH.search(joined), joined
    assert "AMT_INCOME_TOTAL" not in joined  # labels, not column names


def test_plurals_and_the_undrifted_case():
    one = " ".join(drift_summary.sentences(report(drifted=1), "fr"))
    assert "1 variable sur 7 a dérivé" in one
    none = " ".join(drift_summary.sentences(report(drifted=0, level="stable"), "fr"))
    assert "Aucune variable n'a dérivé au-delà du seuil PSI 0,20 (7 variables suivies)" in none
    many = " ".join(drift_summary.sentences(report(drifted=7), "fr"))
    assert "et 2 autres" in many  # five named, the others counted


def test_the_english_summary_uses_english_numbers_and_words():
    joined = " ".join(drift_summary.sentences(report(), "en"))
    assert joined.startswith("Verdict: act.")
    assert "the last 1,234 requests" in joined and "3 features of 7 drifted beyond the PSI threshold 0.20" in joined
    assert "Refusal rate 12.1% in the window against 8.0% at training" in joined
    assert feature_label("AMT_INCOME_TOTAL", "en") + " (PSI 0.90)" in joined


# ---- over the real API ------------------------------------------------------------------------------------------

ADMIN_KEY = "admin-key"


@pytest.fixture(scope="module")
def real_api(pipeline, tmp_path_factory):
    data = copy_pipeline(pipeline, tmp_path_factory.mktemp("drift-summary"))
    from app.service.api import create_app

    return create_app(
        Settings(db=str(data.db), model_dir=str(data.model_dir), api_keys=f"{ADMIN_KEY}:admin", keys_file="")
    )


def test_the_summary_of_the_real_apis_drift_answer(real_api):
    async def scenario() -> DriftReport:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(real_api.lifespan())
            api = ApiClient("http://api", ADMIN_KEY, transport=httpx.ASGITransport(app=real_api))
            stack.push_async_callback(api.aclose)
            ids = (await api.get("/clients", limit=100))["client_ids"]
            for _ in range(3):  # a window of at least 200 scores (CREDIT_DRIFT_MIN_ROWS)
                await api.request("POST", "/score/batch", json={"client_ids": ids})
            return await api.monitoring_drift()

    drift = asyncio.run(scenario())
    fr = drift_summary.sentences(drift, "fr")
    joined = " ".join(fr)
    assert drift.window.rows >= 200 and drift.verdict is not None
    assert fr[0].startswith("Verdict : ") and not ENGLISH_NUMBER.findall(joined) and not ENGLISH.search(joined)
    n = sum(f.drifted for f in drift.features)
    assert (f"{n} variable" in joined) if n else ("Aucune variable n'a dérivé" in joined)
    assert locale.number(drift.window.rows, "fr") in joined
