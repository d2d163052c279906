"""Dashboard logic without a browser: i18n, formatting, charts' data, neighbours, API client errors, CLI guard."""

from __future__ import annotations

import asyncio
import math

import click
import httpx
import msgspec
import numpy as np
import pytest
from uiserver import ACCOUNTS, users_text

from app.service import schemas as s
from ui import locale, logic
from ui.api_client import ApiClient, ApiError
from ui.i18n import LABELS, LANGS, t
from ui.main import build_config, dashboard_keys, is_loopback

# ---- i18n -------------------------------------------------------------------------------------------------------


def test_every_label_exists_in_both_languages():
    assert set(LANGS) == set(LABELS)
    assert set(LABELS["fr"]) == set(LABELS["en"])
    for lang in LANGS:
        assert all(v.strip() for v in LABELS[lang].values())


def test_labels_use_the_same_placeholders():
    import string

    def fields(text: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(text) if f}

    for key in LABELS["fr"]:
        assert fields(LABELS["fr"][key]) == fields(LABELS["en"][key]), key


def test_decision_words_never_rely_on_colour_alone():
    assert t("accept", "fr") == "Accordé" and t("refuse", "fr") == "Refusé"
    assert t("accept", "en") == "Accepted" and t("refuse", "en") == "Refused"
    for lang in LANGS:
        for d in ("accept", "refuse"):
            view = logic.decision_view(d, lang)
            assert view["text"] and view["icon"]


# ---- accessibility ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(logic.COLORS))
def test_colour_pairs_meet_wcag_aa(name):
    fg, bg = logic.COLORS[name]
    assert logic.contrast_ratio(fg, bg) >= 4.5


def test_contrast_ratio_reference_values():
    assert logic.contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert logic.contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)


# ---- formatting -------------------------------------------------------------------------------------------------


def test_formatting():
    assert logic.fmt_prob(0.1234) == "12,3\u00a0%" and logic.fmt_prob(0.1234, "en") == "12.3%"
    assert logic.fmt_prob(None) == "—"
    assert logic.fmt_prob(float("nan")) == "—"
    assert logic.fmt_value(None, "en") == "missing"
    assert logic.fmt_value(float("nan"), "fr") == "manquant"
    assert logic.fmt_value(1234567, "en") == "1,234,567"
    assert logic.fmt_value(0.25, "fr") == "0,25"
    assert logic.fmt_value(3.0, "en") == "3"


def test_decision_key():
    assert logic.decision_key("accept") == "accept"
    assert logic.decision_key("refuse") == "refuse"
    assert logic.decision_key(None) == "refuse"  # the API owns the rule; no word is never shown as accepted


def test_gauge_marks_the_threshold():
    option = logic.gauge_option(0.42, 0.3, "en")
    series = option["series"][0]
    assert series["data"][0]["value"] == 42.0
    assert series["axisLine"]["lineStyle"]["color"][0][0] == 0.3
    caption = logic.gauge_caption(0.42, 0.3, "refuse", "en")
    assert "42.0%" in caption and "30.0%" in caption and "refused" in caption
    fr = logic.gauge_option(0.0137, 0.0861, "fr")["series"][0]
    assert fr["detail"]["formatter"] == "1,4\u00a0%" and fr["data"][0]["name"] == "Seuil 8,6\u00a0%"
    assert fr["axisLabel"]["formatter"] == "{value}\u00a0%" and series["axisLabel"]["formatter"] == "{value}%"


# ---- waterfall --------------------------------------------------------------------------------------------------

EXPLANATION = {
    "base_value": -2.0,
    "margin": -0.5,
    "probability": 1 / (1 + math.exp(0.5)),
    "contributions": [
        {"feature": "EXT_SOURCE_2", "label": "External score 2", "value": 0.1, "shap": 1.0},
        {"feature": "AMT_CREDIT", "value": 500000.0, "shap": 0.7},
        {"feature": "DAYS_BIRTH", "value": -12000.0, "shap": -0.4},
        {"feature": "OTHER_1", "value": None, "shap": 0.15},
        {"feature": "OTHER_2", "value": 1.0, "shap": 0.05},
    ],
    "reasons": [{"feature": "EXT_SOURCE_2", "sentence": "External score 2 is low"}],
}


def test_waterfall_steps_add_up_to_the_margin():
    data = logic.waterfall_data(EXPLANATION, "en", top=3)
    steps = data["steps"]
    assert steps[0]["kind"] == "base" and steps[0]["end"] == -2.0
    assert steps[-1]["kind"] == "final" and steps[-1]["end"] == pytest.approx(-0.5)
    middle = steps[1:-1]
    assert [s["kind"] for s in middle] == ["up", "up", "down", "up"]  # 3 top + "others"
    assert middle[-1]["shap"] == pytest.approx(0.2)  # the two smallest, summed
    for a, b in zip(middle, middle[1:], strict=False):
        assert b["start"] == pytest.approx(a["end"])  # each bar starts where the previous ended
    assert middle[-1]["end"] == pytest.approx(-0.5)
    assert steps[1]["label"].startswith("External score 2 = ")
    assert data["probability"] == pytest.approx(EXPLANATION["probability"])


def test_waterfall_option_bars_span_start_to_end():
    data = logic.waterfall_data(EXPLANATION, "fr", top=3)
    option = logic.waterfall_option(data)["baseOption"]
    offsets = option["series"][0]["data"]
    deltas = [d["value"] for d in option["series"][1]["data"]]
    assert option["series"][0]["stackStrategy"] == "all"
    for step, lo, width in zip(data["steps"], offsets, deltas, strict=True):
        if step["kind"] in ("up", "down"):
            assert lo == pytest.approx(min(step["start"], step["end"]), abs=1e-4)
            assert width == pytest.approx(abs(step["shap"]), abs=1e-4)
    caption = logic.waterfall_caption(data, "fr")
    assert "4 contributions" in caption and "3 augmentent" in caption and "1 le diminuent" in caption
    assert "départ -2,000" in caption or "départ \u2212" in caption  # the locale's decimals, not '-2.000'
    labels = [d["label"]["formatter"] for d in option["series"][1]["data"]]
    assert labels[1] == "+1,000" and labels[3] == "\u22120,400" and labels[0] == locale.fixed(-2.0, "fr")
    assert "toLocaleString('fr-FR'" in option["xAxis"]["axisLabel"][":formatter"]
    assert logic.waterfall_rows_height(data) >= 34 * len(data["steps"])


def test_waterfall_without_margin_uses_the_sum():
    data = logic.waterfall_data({"base_value": 0.0, "contributions": [{"feature": "A", "value": 1, "shap": 0.0}]}, "en")
    assert data["margin"] == 0.0 and data["probability"] == pytest.approx(0.5)


# ---- population, neighbours, comparison ------------------------------------------------------------------------


def test_population_table_reads_the_api_type_only():
    payload = {
        "features": ["B", "A"],
        "rows": [
            {"client_id": 1, "values": [None, 1.0], "probability": 0.1, "decision": "accept"},
            {"client_id": 2, "values": [5.0, 2.0], "probability": 0.9, "decision": "refuse"},
        ],
        "threshold": 0.5,
        "model_id": "x",
    }
    population = msgspec.convert(payload, s.Population)
    ids, X, dec = logic.population_table(population, ["A", "B", "C"])  # C: not asked of the API, all NaN
    assert ids.tolist() == [1, 2]
    assert X[0, 0] == 1.0 and math.isnan(X[0, 1]) and X[1, 1] == 5.0 and np.isnan(X[:, 2]).all()
    assert dec == ["accept", "refuse"]
    for other_shape in ({"client_ids": [7], "columns": {"A": [1]}}, {"rows": [{"client_id": 3, "values": {"B": 4}}]}):
        with pytest.raises(msgspec.ValidationError):  # no other shape is guessed at
            msgspec.convert(other_shape, s.Population)


def test_nearest_neighbours_on_standardised_columns():
    # column 1 has a huge scale: without standardisation it alone would decide
    X = np.array([[0.0, 0.0], [1.0, 1000.0], [0.1, 5000.0], [5.0, 0.0], [0.0, 100.0]])
    x = np.array([0.0, 0.0])
    near = logic.nearest_neighbours(X, x, k=3)
    assert near.tolist() == [0, 4, 1]
    # the client itself is excluded; k larger than the population returns everyone else
    near = logic.nearest_neighbours(X, x, k=10, exclude=np.array([True, False, False, False, False]))
    assert 0 not in near.tolist() and len(near) == 4


def test_nearest_neighbours_missing_values_add_no_distance():
    X = np.array([[np.nan, 0.0], [10.0, 0.0], [0.0, 3.0]])
    near = logic.nearest_neighbours(X, np.array([np.nan, 0.0]), k=1)
    assert near.tolist() == [0]
    assert logic.nearest_neighbours(np.zeros((0, 2)), np.zeros(2), k=3).size == 0


def test_nearest_neighbours_matches_brute_force():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4)) * np.array([1, 10, 100, 1000])
    x = rng.normal(size=4) * np.array([1, 10, 100, 1000])
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    z = (x - X.mean(axis=0)) / X.std(axis=0)
    expected = np.argsort(((Z - z) ** 2).sum(axis=1), kind="stable")[:15]
    assert logic.nearest_neighbours(X, x, k=15).tolist() == expected.tolist()


def test_comparison_chart_and_caption():
    col = np.array([1.0, 2.0, 3.0, 4.0, np.nan, 10.0])
    decisions = ["accept", "accept", "refuse", "refuse", "accept", "refuse"]
    cmp = logic.comparison("AMT_CREDIT", col, decisions, np.array([1, 2]), 3.0, "en")
    series = cmp["option"]["series"]
    assert sum(series[0]["data"]) == 2 and sum(series[1]["data"]) == 3  # NaN left out
    assert sum(series[2]["data"]) == 2
    assert "markLine" in series[0]
    assert "percentile 60 of 5 clients" in cmp["caption"]
    empty = logic.comparison("A", np.array([np.nan]), ["accept"], np.zeros(0, dtype=np.int64), None, "fr")
    assert "—" in empty["caption"]


def test_whatif_features_replace_only_known_names():
    base = {"A": 1.0, "B": None, "C": 3.0}
    out = logic.whatif_features(base, {"A": 2.5, "B": 4, "Z": 9, "C": float("nan")})
    assert out == {"A": 2.5, "B": 4.0, "C": None}
    assert base["A"] == 1.0  # not modified in place


def test_column_value_keeps_integer_columns_integer():
    assert logic.column_value(2.0, 1) == 2 and isinstance(logic.column_value(2.0, 1), int)
    assert logic.column_value(2.5, 1) == 2.5  # the API answers 400 naming the column
    assert isinstance(logic.column_value(2.0, 1.5), float)
    assert logic.column_value(float("nan"), 1.0) is None and logic.column_value(None, 1) is None
    assert isinstance(logic.column_value(1.0, True), float)  # a bool is not an integer column


def test_top_features_and_metrics():
    model = {"features": ["A", "B", "C"], "global_importance": [["C", 0.5], ["A", 0.2], ["B", 0.1]]}
    assert logic.top_features(model, 2) == ["C", "A"]
    assert logic.top_features({"features": ["A", "B"]}, 1) == ["A"]
    option = logic.importance_option(model, "en")["baseOption"]
    assert option["series"][0]["data"] == [0.5, 0.2, 0.1]
    rows = dict(logic.flatten_metrics({"auc": 0.75, "cv": {"auc_std": 0.01}, "name": "x"}))
    assert rows == {"auc": "0.7500", "cv.auc_std": "0.0100", "name": "x"}


# ---- monitoring shapes ------------------------------------------------------------------------------------------

SUMMARY = {
    "since": 0.0,
    "until": 1.0,
    "requests": 30,
    "latency_ms": {"p50": 1.5, "p99": 7.0},
    "decisions": {"accept": 20, "refuse": 10},
    "endpoints": {"/score": 30},
    "bin_edges": [0.0, 0.5, 1.0],
    "score_histogram": [
        {"hour": "2026-11-25T10:00", "hour_ts": 0.0, "count": 10, "counts": [10, 0]},
        {"hour": "2026-11-25T11:00", "hour_ts": 3600.0, "count": 20, "counts": [10, 10]},
    ],
}


def test_summary_kpis_and_score_series():
    summary = msgspec.convert(SUMMARY, s.MonitoringSummary)
    assert logic.summary_kpis(summary) == {"count": 30, "p50": 1.5, "p99": 7.0}
    series = logic.score_series(summary, "en")
    assert series["periods"] == ["1 Jan 1970, 00:00", "1 Jan 1970, 01:00"]  # from hour_ts, in the reader's words
    assert logic.score_series(summary, "fr")["periods"][0] == "1 janv. 1970, 00:00"
    assert series["bins"] == ["0-50 %", "50-100 %"]
    assert series["means"] == pytest.approx([0.25, 0.5])
    option = logic.score_time_option(series, "en")
    assert [s["data"] for s in option["series"][:2]] == [[10, 10], [0, 10]]
    assert "2 periods" in logic.score_time_caption(series, "en")
    empty = logic.score_series(msgspec.convert({**SUMMARY, "requests": 0, "score_histogram": []}, s.MonitoringSummary))
    assert empty["periods"] == []


def test_drift_rows():
    window = {"since": None, "until": None, "last": None, "rows": 300, "first_ts": None, "last_ts": None}
    drift = {
        "method": "psi",
        "model_id": "m",
        "window": window,
        "psi_threshold": 0.2,
        "drift_share": 0.3,
        "features": [{"feature": "A", "psi": 0.3, "drifted": True}, {"feature": "B", "psi": 0.01, "drifted": False}],
        "n_features": 2,
        "n_drifted": 1,
        "share_drifted": 0.5,
        "dataset_drift": True,
        "score_psi": None,
        "score_drifted": False,
        "seconds": 0.1,
    }
    assert logic.drift_rows(msgspec.convert(drift, s.DriftReport)) == [
        {"feature": "A", "psi": 0.3, "drifted": True},
        {"feature": "B", "psi": 0.01, "drifted": False},
    ]


# ---- API client -------------------------------------------------------------------------------------------------


def _client(handler) -> ApiClient:
    return ApiClient("http://api.test", "k", transport=httpx.MockTransport(handler))


SCORE = {
    "client_id": 7,
    "probability": 0.2,
    "decision": "accept",
    "threshold": 0.3,
    "model_id": "m",
    "completeness": 1.0,
    "request_id": "r",
}


def test_api_client_sends_the_key_and_maps_errors():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["auth"] = request.headers.get("authorization")
        if request.url.path == "/clients/7/score":
            return httpx.Response(200, json=SCORE)
        if request.url.path == "/clients/8/score":
            return httpx.Response(200, json={"probability": 0.2})  # not the API's ClientScore
        if request.url.path == "/monitoring/summary":
            return httpx.Response(403, json={"error": "this endpoint needs the admin role", "detail": None})
        return httpx.Response(404, json={"error": "unknown client", "detail": {"client_id": 9}})

    async def scenario():
        api = _client(handler)
        try:
            assert await api.score(7) == msgspec.convert(SCORE, s.ClientScore)
            with pytest.raises(ApiError) as other_shape:
                await api.score(8)
            with pytest.raises(ApiError) as forbidden:
                await api.monitoring_summary()
            with pytest.raises(ApiError) as missing:
                await api.score(9)
        finally:
            await api.aclose()
        return forbidden.value, missing.value, other_shape.value

    forbidden, missing, other_shape = asyncio.run(scenario())
    assert other_shape.kind == "contract" and "client_id" in other_shape.detail  # the developer's detail, kept
    assert other_shape.message("fr").startswith("Réponse inattendue de l'API")
    assert "client_id" not in other_shape.message("fr")  # msgspec's English is not shown
    assert seen["auth"] == "Bearer k"
    assert forbidden.kind == "forbidden" and forbidden.status == 403 and forbidden.code == "forbidden_role"
    assert "administrateur" in forbidden.message("fr")
    assert missing.kind == "not_found" and missing.code == "unknown_client" and missing.data == {"client_id": 9}
    assert missing.message("en") == "No file has the identifier 9. Check the client's number."
    assert missing.message("fr") == "Aucun dossier ne porte l'identifiant 9. Vérifiez le numéro du client."


def test_api_client_reports_a_down_api_clearly():
    async def scenario():
        api = ApiClient("http://127.0.0.1:9", "k", timeout=2.0)  # port 9 (discard): nothing listens
        try:
            await api.model()
        finally:
            await api.aclose()

    with pytest.raises(ApiError) as err:
        asyncio.run(scenario())
    assert err.value.kind == "down"
    assert "http://127.0.0.1:9" in err.value.message("en") and "cannot be reached" in err.value.message("en")


def test_api_client_non_json_error():
    api = _client(lambda r: httpx.Response(502, text="Bad Gateway"))

    async def scenario():
        try:
            await api.model()
        finally:
            await api.aclose()

    with pytest.raises(ApiError) as err:
        asyncio.run(scenario())
    assert err.value.kind == "api" and "502" in err.value.message("en") and "Bad Gateway" in err.value.detail
    assert "Bad Gateway" not in err.value.message("fr") and "code HTTP 502" in err.value.message("fr")


# ---- command-line guard -----------------------------------------------------------------------------------------


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")


def test_every_host_needs_accounts():
    from app.accounts import parse_accounts

    for host in ("0.0.0.0", "127.0.0.1"):
        with pytest.raises(click.ClickException, match="credit ui-account"):
            build_config(api_url="http://x", key="k", lang="fr", host=host, accounts={})
    accounts = parse_accounts(users_text())
    cfg = build_config(api_url="http://x", key="k", lang="en", host="0.0.0.0", accounts=accounts)
    assert set(cfg.accounts) == set(ACCOUNTS) and cfg.lang == "en"
    assert build_config(api_url="http://x", key="k", lang="xx", host="127.0.0.1", accounts=accounts).lang == "fr"


def test_ui_command_refuses_to_start_without_accounts(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from ui.main import ui_command

    monkeypatch.delenv("CREDIT_UI_USERS", raising=False)
    monkeypatch.setenv("CREDIT_UI_USERS_FILE", str(tmp_path / "none"))
    for host in ("0.0.0.0", "127.0.0.1"):
        result = CliRunner().invoke(ui_command, ["--host", host, "--port", "1"])
        assert result.exit_code != 0 and "no accounts" in result.output


def test_dashboard_keys_officer_for_pages_admin_for_monitoring(tmp_path):
    assert dashboard_keys("a:officer, b:admin,c:admin") == ("a", "b")
    assert dashboard_keys("a:officer") == ("a", "a")
    assert dashboard_keys("b:admin") == ("b", "b")
    assert dashboard_keys("") == ("", "")
    assert dashboard_keys("a:officer,b:admin", ui_key="u") == ("u", "u")  # an explicit key serves every page
    keys = tmp_path / "keys"
    keys.write_text("# comment\nx:officer\ny:admin\n")
    assert dashboard_keys("", str(keys)) == ("x", "y")


def test_host_names_and_the_allow_list():
    from ui.hosts import allowed, host_name, parse_hosts

    hosts = parse_hosts("localhost, 127.0.0.1,[::1]")
    assert (
        host_name("LocalHost:8080") == "localhost" and host_name("[::1]:80") == "[::1]" and host_name("::1") == "[::1]"
    )
    for ok in ("localhost", "localhost:8080", "127.0.0.1:8080", "[::1]:8080"):
        assert allowed(ok, hosts), ok
    for bad in ("attacker.example", "attacker.example:8080", "127.0.0.1.attacker.example", "", None, "localhost.evil"):
        assert not allowed(bad, hosts), bad
    assert allowed("anything.example", parse_hosts("*"))
