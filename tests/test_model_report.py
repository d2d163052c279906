"""The model report: comparison table (terminal), report.html, and the dashboard's model page figures with
translated metric names (never raw manifest keys)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from app.model import report
from app.model.train import train_arrays
from ui import model_report as mr


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(900, 5)).astype(np.float32)
    logit = 1.2 * X[:, 0] - 0.8 * X[:, 1] - 2.0
    y = (rng.random(900) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    d = tmp_path_factory.mktemp("report")
    return train_arrays(X, y, [f"v{i}" for i in range(5)], d, seed=2, quick=True, progress=False, num_threads=1)


def test_comparison_table_lists_every_model_and_policy(manifest):
    rows = report.rows(manifest)
    kinds = [r["kind"] for r in rows]
    assert kinds == ["lightgbm", "scorecard", "blend", "logistic_regression", "accept_all", "refuse_all"]
    assert [r["role"] for r in rows].count("champion") == 1
    text = "\n".join(report.table(manifest))
    assert "accept everybody" in text and "refuse everybody" in text and "champion:" in text
    champ = next(r for r in rows if r["role"] == "champion")
    assert champ["cost"] == manifest["metrics"]["cost_per_client"]


def test_report_html_is_self_contained(manifest):
    html = report.html(manifest)
    assert html.count("<svg") == 4 and "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    for title in ("ROC curve", "Reliability", "Cost per client against threshold", "Observed default rate"):
        assert title in html
    numbers = [int(n) for n in re.findall(r"<tr><td>(\d+)</td>", html)]
    assert numbers == list(range(1, len(manifest["evaluation"]["score_bands"]) + 1))  # deciles 1..10, as the chart
    assert "score decile, 1 to 10" in html
    assert "— ± —" not in html  # a row without folds shows one dash


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_model_page_uses_translated_names(manifest, lang):
    raw_keys = {"cost_per_client", "oof_auc", "auc_mean", "cost_per_client_at_0_5", "brier", "ece"}
    tiles = mr.headline(manifest, lang)
    assert len(tiles) == 7
    for name, value in tiles:
        assert name not in raw_keys and value != "—"
    assert set(mr.LABELS["fr"]) == set(mr.LABELS["en"])
    rows = mr.comparison(manifest, lang)
    assert [r["model"] for r in rows][-2:] == [mr.tr("accept_all", lang), mr.tr("refuse_all", lang)]
    assert all(r["model"] not in ("accept_all", "refuse_all", "lightgbm", "scorecard") for r in rows)
    charts = mr.charts(manifest, lang)
    assert [title for title, _ in charts] == [mr.tr(k, lang) for k in ("roc", "reliability", "cost_curve", "bands")]
    roc, rel, cost, bands = (opt for _, opt in charts)
    assert roc["series"][0]["data"] == manifest["evaluation"]["roc"]
    assert len(rel["series"][1]["data"]) == len(manifest["evaluation"]["reliability"]["calibrated"])
    assert cost["series"][1]["data"] == [[manifest["threshold"], manifest["evaluation"]["chosen"]["cost_per_client"]]]
    assert len(bands["series"][0]["data"]) == len(manifest["evaluation"]["score_bands"])


SENSITIVE = {
    "attributes": ["gender", "age_band"],
    "excluded": True,
    "features": {"gender": ["CODE_GENDER_M"], "age_band": ["DAYS_BIRTH", "AGE_YEARS"]},
    "effect": {
        "with": {"oof_auc": 0.7881, "cost_per_client": 0.4946},
        "without": {"oof_auc": 0.786, "cost_per_client": 0.4982},
    },
}


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_sensitive_effect_rows(lang):
    sentence, rows = mr.sensitive({"sensitive": SENSITIVE}, lang)
    names = {"fr": "Sexe, Tranche d'âge", "en": "Sex, Age band"}[lang]  # labels, never the raw attribute names
    assert names in sentence and "gender" not in sentence and "(3 " in sentence
    expected = [("0.7881", "0.4946"), ("0.7860", "0.4982")]  # the page's number format: a decimal comma in French
    if lang == "fr":
        expected = [(a.replace(".", ","), c.replace(".", ",")) for a, c in expected]
    assert [(r["auc"], r["cost"]) for r in rows] == expected
    assert mr.sensitive({"sensitive": {**SENSITIVE, "effect": None}}, lang) is None
    assert mr.sensitive({}, lang) is None


def test_old_manifest_falls_back():
    assert not mr.has_evaluation({"metrics": {"auc": 0.7}})


@pytest.fixture
def page_sim(tmp_path, monkeypatch):
    import test_ui_pages

    return test_ui_pages.make_simulate(None, tmp_path, monkeypatch)  # the API is the handler below


def test_model_page_shows_translated_figures(manifest, page_sim):
    import httpx

    served = {"serving_app_version": "0.1.0", **{k: v for k, v in manifest.items() if k != "reference"}}
    served["sensitive"] = SENSITIVE

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/model":
            return httpx.Response(200, json=served)
        return httpx.Response(403, json={"error": "admin role required", "detail": None})

    async def scenario(user, *_):
        await user.open("/model")
        await user.should_see("AUC honnête (hors échantillon)", retries=20)
        await user.should_see("Comparaison honnête des modèles")
        (table,) = user.find(marker="comparison").elements
        assert [r["model"] for r in table.rows][-2:] == ["Accepter tout le monde", "Refuser tout le monde"]
        await user.should_see("Fiabilité : probabilité prédite et taux de défaut observé")
        await user.should_not_see("cost_per_client")
        await user.should_see("Exclus du modèle : Sexe, Tranche d'âge (3 variables)")  # never the raw names
        (effect,) = user.find(marker="sensitive-effect").elements
        assert [r["variant"] for r in effect.rows] == ["avec ces variables", "sans ces variables"]

    page_sim(scenario, key="officer-key", transport=httpx.MockTransport(handler))


# ---- report.html in the reader's language (ui/report_html.py, served by the dashboard at /model/report) ----------

ENGLISH_NUMBER = re.compile(r"(?<![\w.,])[1-9]\d{0,2}(?:,\d{3})+(?![\d,])|(?<![\w.])\d+\.\d+(?![\w.])")


def _text(page: str) -> str:
    """The words and numbers a reader sees: the tags' contents, not their attributes (SVG coordinates)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>", "", page, flags=re.S)))


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_report_html_in_the_readers_language(manifest, lang):
    from ui import locale, report_html

    page = report_html.render(manifest, lang)
    text = _text(page)
    assert f'<html lang="{lang}">' in page and page.count("<svg") == 4 and "<script" not in page
    assert "— ± —" not in text and "{" not in text
    n_bands = len(manifest["evaluation"]["score_bands"])
    table = page[page.index('data-testid="bands"') :]
    assert [int(n) for n in re.findall(r"<tr><td>(\d+)</td>", table)] == list(range(1, n_bands + 1))
    bands_svg = page.split("<svg")[4]
    bar_labels = re.findall(r'text-anchor="middle">(\d+)</text>', bands_svg)
    assert bar_labels == [str(i) for i in range(1, n_bands + 1)]  # the chart's deciles are the table's
    assert locale.fixed(manifest["metrics"]["oof_auc"], lang, 4) in text
    assert _text(locale.percent(manifest["threshold"], lang)) in text
    for kind in ("accept_all", "refuse_all", "lightgbm"):
        assert mr.tr(kind, lang) in text
    if lang == "fr":
        assert not ENGLISH_NUMBER.findall(text), ENGLISH_NUMBER.findall(text)
        for english in ("accept everybody", "cost per client", "Reliability", "Model report", "decile", "trained"):
            assert english not in text
        assert "Rapport du modèle" in text and "Déciles de score" in text
    else:
        assert "Model report" in text and "Rapport" not in text


def test_report_html_escapes_what_it_quotes(manifest):
    from ui import report_html

    hostile = {**manifest, "model_id": "<script>x</script>", "champion": {**manifest["champion"], "why": "<b>x</b>"}}
    page = report_html.render(hostile, "en")
    assert "<script>" not in page and "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
