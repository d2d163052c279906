"""Every model feature has a proper label in French and in English: no raw column fragment left in it."""

from __future__ import annotations

import json
import re

import pytest

from app.model.labels import label

# words that are the same in a feature name and in a proper label of that language
SAME_FR = {"total", "mode", "minimum", "maximum", "ratio", "document", "type", "score", "client", "finance", "services"}
SAME_FR |= {"bureau", "population", "mobile", "contact", "commercial", "parents", "municipal", "public"}
# codes of the data set itself, shown as codes (the label says so: "motif codé HC")
CODES = {"HC", "SCOFR"}
# column-name abbreviations and glued words that no English label may show
RAW_EN = {
    "amt", "cnt", "dpd", "dbd", "appl", "appr", "sk", "avg", "medi", "mon", "qrt", "prev", "inst", "cc", "buro",
    "bb", "perc", "num", "reg", "emp", "cont", "mobil", "enddate", "beginexpluatation", "basementarea", "commonarea",
    "landarea", "livingapartments", "livingarea", "nonlivingapartments", "nonlivingarea", "totalarea", "floorsmax",
    "floorsmin", "fondkapremont", "housetype", "def", "obs", "ext", "ap", "recivable", "sellerplace", "anom",
    "walls", "suite", "hc", "scofr", "oper", "spec", "org",
}  # fmt: skip


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^0-9A-Za-zÀ-ÿ]+", text) if w]


def raw_fragments(name: str, text: str, lang: str) -> list[str]:
    tokens = {t.lower() for t in name.split("_") if t}
    words = [w for w in _words(text) if w not in CODES and not w.isdigit()]
    glued = [w for w in words if re.search(r"[a-z]\d|\d[a-z]", w.lower())]  # late30, 12m, 1st
    if lang == "fr":
        raw = [w for w in words if w.lower() in tokens and w.lower() not in SAME_FR]
    else:
        raw = [w for w in words if w.lower() in RAW_EN]
    return glued + raw


@pytest.mark.parametrize(
    ("name", "text", "lang"),
    [
        ("PREV_REJECT_HC_SHARE", "Demandes précédentes : reject hc (part)", "fr"),
        ("LIVINGAREA_MODE", "Livingarea (mode)", "fr"),
        ("YEARS_BUILD_MODE", "Years build (mode)", "fr"),
        ("BUREAU_BALANCE_LATE30_SHARE", "Bureau de crédit : solde late30 (part)", "fr"),
        ("LIVINGAREA_MODE", "Livingarea (mode)", "en"),
        ("AMT_REQ_CREDIT_BUREAU_MON", "Amt req credit bureau mon", "en"),
    ],
)
def test_the_check_catches_the_half_translated_labels_seen(name, text, lang):
    assert raw_fragments(name, text, lang)


def test_every_feature_has_a_proper_label_in_both_languages(pipeline):
    names = json.loads((pipeline.model_dir / "manifest.json").read_text())["features"]
    assert len(names) == 416
    bad = {}
    for name in names:
        fr, en = label(name, "fr"), label(name, "en")
        problems = raw_fragments(name, fr, "fr") + raw_fragments(name, en, "en")
        if problems or fr == en or not fr[:1].isupper() or not en[:1].isupper():
            bad[name] = (fr, en, problems)
    assert not bad, "\n".join(f"{n}: {v}" for n, v in bad.items())
    assert len({label(n, "fr") for n in names}) > 380  # labels tell features apart
