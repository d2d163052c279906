"""The locale layer (ui/locale.py, Babel) and the labels of data values (ui/categories.py)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.data import synthetic
from ui import categories, locale
from ui.logic import client_rows


def test_numbers_percentages_amounts_and_dates_in_each_language():
    assert locale.number(14661, "fr") == "14\u202f661" and locale.number(14661, "en") == "14,661"
    assert locale.fixed(0.554, "fr") == "0,554" and locale.fixed(0.554, "en") == "0.554"
    assert locale.percent(0.121, "fr") == "12,1\u00a0%" and locale.percent(0.121, "en") == "12.1%"
    assert locale.money(1.467e6, "fr") == "1\u202f467\u202f000\u00a0€" and locale.money(1.467e6, "en") == "€1,467,000"
    assert locale.when("2026-12-07T09:59:50+00:00", "fr") == "7 déc. 2026, 09:59"
    assert locale.when("2026-12-07T10:00:00Z", "en") == "7 Dec 2026, 10:00"
    assert locale.plural(1, "fr", "{n} période", "{n} périodes") == "1 période"
    assert locale.plural(0, "fr", "{n} période", "{n} périodes") == "0 période"  # French: 0 is singular
    assert locale.plural(0, "en", "{n} period", "{n} periods") == "0 periods"
    assert locale.years_from_days(-5712) == pytest.approx(15.64, abs=0.01)
    for value in (None, float("nan"), float("inf"), "abc"):
        assert locale.number(value, "fr") == locale.percent(value, "fr") == locale.money(value, "fr") == "—"


@given(st.floats(min_value=-1, max_value=1, allow_nan=False))
def test_a_change_in_points_is_never_a_signed_zero(delta):
    assert locale.points(0.0004, "fr") == "+0,04 pt" and locale.points(-1e-9, "en") == "−< 0.001 pp"
    for lang in ("fr", "en"):
        text = locale.points(delta, lang)
        assert re.search(r"[1-9]", text) or text == ("0 pt" if lang == "fr" else "0 pp"), text  # a zero is unsigned
        if delta > 0:
            assert text.startswith("+")
        elif delta < 0:
            assert text.startswith("−")


@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
def test_amounts_never_in_scientific_notation(value):
    for lang in ("fr", "en"):
        text = locale.money(value, lang)
        assert "e+" not in text.lower() and "e-" not in text.lower()


def test_every_home_credit_category_has_a_french_label():
    lists = [
        synthetic.ORGANIZATIONS,
        synthetic.OCCUPATIONS,
        [(v, 0) for v in synthetic.INCOME_TYPES],
        synthetic.SUITES,
        synthetic.EDUCATION,
        synthetic.FAMILY,
        synthetic.HOUSING,
        synthetic.WEEKDAYS,
        synthetic.CREDIT_TYPES,
        [("Cash loans", 0), ("Revolving loans", 0)],
    ]
    for values in lists:
        for value, _share in values:
            label = categories.category(value, "fr")
            assert "non traduit" not in label, value
            assert categories.category(value, "en") == value


def test_unknown_values_are_marked_not_hidden():
    assert categories.category("Astronaut", "fr") == "Astronaut (non traduit)"
    assert categories.attribute("religion", "fr") == "religion (non traduit)"
    assert categories.attribute("age_band", "fr") == "Tranche d'âge"
    assert categories.group("<25", "fr") == "moins de 25 ans" and categories.group("25-35", "fr") == "25 à 35 ans"
    assert categories.group("F", "fr") == "Femmes" and categories.group("Widow", "fr") == "Veuf / veuve"
    assert sorted(["35-45", "<25", ">=65", "25-35"], key=categories.group_order) == ["<25", "25-35", "35-45", ">=65"]


def test_client_panel_values_in_french_units():
    fields = {
        "family_status": "Widow",
        "education": "Secondary / secondary special",
        "income_type": "Working",
        "occupation": "Sales staff",
        "organization": "Self-employed",
        "contract_type": "Cash loans",
        "credit": 1467000.0,
        "ext_source_2": 0.5543,
        "years_employed": 15.6,
    }
    rows = {r["key"]: r["value"] for r in client_rows(fields, "fr")}
    assert rows["family_status"] == "Veuf / veuve" and rows["income_type"] == "Salarié"
    assert rows["occupation"] == "Vendeurs" and rows["organization"] == "Travailleur indépendant"
    assert rows["education"] == "Secondaire / professionnel" and rows["contract_type"] == "Prêt personnel"
    assert rows["credit"] == "1\u202f467\u202f000\u00a0€" and rows["ext_source_2"] == "0,55"
    assert rows["years_employed"] == "16"
    english = {r["key"]: r["value"] for r in client_rows(fields, "en")}
    assert english["family_status"] == "Widow" and english["credit"] == "€1,467,000"


def test_champion_reasons_in_french_with_the_locales_numbers():
    from ui.model_report import champion_why

    assert champion_why("lowest honest cost per client (0.4972) vs lightgbm 0.4988", "fr") == (
        "coût honnête par client le plus bas (0,4972) contre 0,4988 pour « LightGBM optimisé »"
    )
    tie = champion_why("lowest honest cost per client (0.3276) vs lightgbm 0.3276", "fr")
    assert "à égalité avec « LightGBM optimisé »" in tie and "lowest" not in tie
    assert champion_why("same honest cost as blend, higher out-of-fold AUC", "fr").startswith("même coût honnête")
    long = (
        "honest cost per client 0.4900 ties with lightgbm's 0.4910 (paired difference -0.0010 ± 0.0020, within two"
        " standard errors) and its out-of-fold AUC is higher (0.7600 vs 0.7500)"
    )
    assert "honest" not in champion_why(long, "fr") and "0,7600" in champion_why(long, "fr")
    assert champion_why("something new", "fr") == "something new (non traduit)"
    assert champion_why("something new", "en") == "something new"


def test_whatif_inputs_use_the_panels_units():
    from ui import logic

    assert logic.whatif_shown("DAYS_EMPLOYED", -5712) == 15.6  # years, as the client panel says, not -5712 days
    assert logic.whatif_raw("DAYS_EMPLOYED", 15.6, -5712) == -5698 and logic.whatif_raw("DAYS_EMPLOYED", 20, -1) < 0
    assert logic.whatif_shown("DAYS_EMPLOYED", 365243) is None  # the "not employed" marker is not 1000 years
    assert logic.whatif_digits("AMT_CREDIT") == 0 and logic.whatif_digits("EXT_SOURCE_2") == 3
    shown = locale.number(1_467_000.0, "fr", logic.whatif_digits("AMT_CREDIT"))
    assert shown == "1\u202f467\u202f000" and locale.parse_number(shown, "fr") == 1_467_000.0  # never 1.467e+06
    assert locale.number(0.8321, "fr", 3) == "0,832" and locale.parse_number("0,832", "fr") == 0.832
    assert logic.whatif_raw("CNT_CHILDREN", 2.0, 1) == 2 and isinstance(logic.whatif_raw("CNT_CHILDREN", 2.0, 1), int)
    assert logic.whatif_raw("AMT_CREDIT", 450000.0, 400000.0) == 450000.0


def test_an_open_ended_age_band_is_translated_and_sorted_last():
    from ui import categories

    assert categories.group("65+", "fr") == "65 ans et plus" and categories.group("65+", "en") == "65 and over"
    bands = ["65+", "25-34", "<25", "55-64"]
    assert sorted(bands, key=categories.group_order) == ["<25", "25-34", "55-64", "65+"]


def test_every_value_axis_writes_its_numbers_in_the_locale():
    from ui import logic

    option = {
        "baseOption": {"xAxis": {"type": "value"}, "yAxis": [{"type": "value"}, {"type": "value", "axisLabel": {}}]}
    }
    out = logic.localize_axes(option, "fr")["baseOption"]
    assert "fr-FR" in out["xAxis"]["axisLabel"][":formatter"]
    assert all("fr-FR" in axis["axisLabel"][":formatter"] for axis in out["yAxis"])
    own = logic.localize_axes({"yAxis": {"type": "value", "axisLabel": {"formatter": "{value} %"}}}, "en")
    assert own["yAxis"]["axisLabel"] == {"formatter": "{value} %"}  # an axis's own formatter is kept


@given(
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
    st.sampled_from([0, 1, 3, 6]),
    st.sampled_from(["fr", "en"]),
)
def test_a_number_shown_in_an_input_reads_back_as_itself(x, digits, lang):
    shown = locale.number(x, lang, digits)
    assert locale.parse_number(shown, lang) == pytest.approx(round(x, digits) or 0.0, rel=1e-12, abs=10.0**-digits / 2)


@pytest.mark.parametrize("text", ["abc", "1,2,3", "inf", "nan", "--1", "1e999"])
def test_what_the_parser_refuses(text):
    with pytest.raises(ValueError):
        locale.parse_number(text, "fr")
