"""The decision letter of a logged decision: its facts (`facts`, JSON, recorded as issued) and its one A4 page
(`html`, printed to PDF by app/rights/pdf.py).

Every fact comes from the store: the prediction_log row (when, which model, probability, decision: what was
served, never a re-score), the frozen explanation (app/rights/explanation.py: principal reasons, data used,
counterfactual), the override and the reviews (app/rights/records.py). Sentences are French or English
(app/rights/texts.py; the reasons reuse app.model.labels.reason_sentence, the explanations' own sentences).
"""

from __future__ import annotations

import html as _html
import time
from typing import Any

import apsw

from app.model.labels import format_value, label, reason_sentence
from app.rights import records
from app.rights.counterfactual import sentences as cf_sentences
from app.rights.records import OVERRIDE_REASONS, REVIEW_REASONS
from app.rights.texts import BANK, percent, t, when

LANGS = ("fr", "en")


def facts(store: apsw.Connection, row: dict[str, Any], explanation: dict[str, Any], lang: str) -> dict[str, Any]:
    """The letter's content for decision `row` in `lang`: plain data and sentences, JSON-ready."""
    if lang not in LANGS:
        raise records.RightsError(f"lang must be fr or en, not {lang!r}")
    li = 0 if lang == "fr" else 1
    in_force = records.decision_in_force(store, row)
    ov = records.override_of(store, row["request_id"])
    reviews = records.reviews_of(store, row["request_id"])
    history: list[str] = []
    if ov is not None:
        reason = OVERRIDE_REASONS[ov["reason_code"]][li]
        key = {"in force": "override", "pending": "override_pending", "rejected": "override_rejected"}[ov["status"]]
        history.append(t(key, lang, when=when(ov["created_at"], lang), reason=reason))
    for rv in reviews:
        if rv["decided_at"] is None:
            history.append(t("review_open", lang, when=when(rv["requested_at"], lang)))
        else:
            verb = t(rv["outcome"], lang)
            reason = REVIEW_REASONS[rv["reason_code"]][li]
            history.append(t("review_done", lang, when=when(rv["decided_at"], lang), verb=verb, reason=reason))
    if history:
        history.insert(0, t("automated", lang, d=t(row["decision"], lang)))
    reasons = [
        reason_sentence(r["feature"], r["value"], r["typical"], lang, unit=r["unit"]) for r in explanation["reasons"]
    ]
    data_used = [
        {
            "feature": d["feature"],
            "label": label(d["feature"], lang),
            "value": format_value(d["unit"], d["value"], lang),
        }
        for d in explanation["data_used"]
    ]
    cf = explanation.get("counterfactual") or {"status": "unavailable", "reason": "not computed"}
    if in_force == "accept":
        cf_text, cf_lines = t("cf_accept", lang), []
    elif cf["status"] == "found" and cf.get("verified"):
        cf_text, cf_lines = t("cf_found", lang), cf_sentences(cf, lang)
    elif cf["status"] == "none within bounds":
        cf_text, cf_lines = t("cf_none", lang), []
    else:
        cf_text, cf_lines = t("cf_unavailable", lang, reason=cf.get("reason") or cf["status"]), []
    return {
        "lang": lang,
        "issued_at": time.time(),
        "decision": {k: row[k] for k in ("request_id", "client_id", "ts", "model_id", "probability", "decision")},
        "threshold": explanation["threshold"],
        "decision_in_force": in_force,
        "history": history,
        "reasons": reasons,
        "data_used": data_used,
        "n_inputs": len(records.logged_vector(store, row["request_id"])) // 4,
        "counterfactual": {
            "status": cf["status"],
            "text": cf_text,
            "changes": cf_lines,
            "new_probability": cf.get("new_probability"),
        },
    }


CSS = """
@page { size: A4; margin: 14mm 16mm; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 9.6pt; line-height: 1.32;
       color: #111827; margin: 0; }
.page { max-width: 178mm; margin: 0 auto; }
header { display: flex; justify-content: space-between; border-bottom: 2px solid #1e3a8a; padding-bottom: 4px; }
.bank { font-weight: bold; font-size: 13pt; color: #1e3a8a; }
.meta { text-align: right; font-size: 8.4pt; color: #374151; }
h1 { font-size: 12.5pt; margin: 8px 0 4px; }
h2 { font-size: 10.4pt; margin: 9px 0 3px; color: #1e3a8a; }
.decision { font-size: 11pt; font-weight: bold; padding: 5px 8px; border-left: 5px solid; margin: 5px 0; }
.decision.accept { border-color: #15803d; background: #f0fdf4; }
.decision.refuse { border-color: #b91c1c; background: #fef2f2; }
p { margin: 3px 0; }
ol, ul { margin: 2px 0 2px 18px; padding: 0; }
table { border-collapse: collapse; width: 100%; font-size: 8.6pt; }
td { border-bottom: 1px solid #e5e7eb; padding: 1px 4px; }
td.v { text-align: right; white-space: nowrap; }
.small { font-size: 8.2pt; color: #374151; }
@media screen { body { background: #f3f4f6; padding: 16px 0; }
  .page { background: #fff; padding: 14mm 16mm; box-shadow: 0 1px 4px rgba(0, 0, 0, 0.15); max-width: 210mm; } }
@media screen and (max-width: 600px) { body { padding: 0; } .page { padding: 12px; }
  header { flex-wrap: wrap; gap: 4px; } .meta { text-align: left; overflow-wrap: anywhere; }
  td.v { white-space: normal; } }
footer { margin-top: 8px; border-top: 1px solid #d1d5db; padding-top: 3px; font-size: 7.8pt; color: #4b5563; }
"""


def html(letter: dict[str, Any], letter_id: int | None = None) -> str:
    """The letter as one self-contained HTML page (A4, printable)."""
    lang = letter["lang"]
    e = _html.escape
    d = letter["decision"]
    in_force = letter["decision_in_force"]
    parts = [
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{e(t("title", lang))}</title>',
        f"<style>{CSS}</style></head><body><div class=page data-testid=letter data-decision={in_force}>",
        f"<header><div class=bank>{e(BANK)}</div><div class=meta>{e(t('reference', lang))} : "
        if lang == "fr"
        else f"<header><div class=bank>{e(BANK)}</div><div class=meta>{e(t('reference', lang))}: ",
        f"<b>{e(d['request_id'])}</b><br>",
        f"{e(t('client', lang))} {d['client_id'] if d['client_id'] is not None else '-'}<br>"
        f"{e(t('issued', lang))} {e(when(letter['issued_at'], lang))}</div></header>",
        f"<h1>{e(t('title', lang))}</h1>",
        f'<div class="decision {in_force}" data-testid=letter-decision>{e(t("result_" + in_force, lang))}</div>',
        f"<p>{e(t('decided_on', lang, when=when(d['ts'], lang), model=d['model_id'][:12]))} "
        f"{e(t('probability', lang, p=percent(d['probability'], lang), t=percent(letter['threshold'], lang)))}</p>",
    ]
    for line in letter["history"]:
        parts.append(f"<p class=small>{e(line)}</p>")
    parts.append(f"<h2>{e(t('reasons_h', lang))}</h2>")
    if letter["reasons"]:
        parts.append(
            "<ol data-testid=letter-reasons>" + "".join(f"<li>{e(r)}</li>" for r in letter["reasons"]) + "</ol>"
        )
    else:
        parts.append(f"<p>{e(t('reasons_none', lang))}</p>")
    cf = letter["counterfactual"]
    parts.append(
        f'<h2>{e(t("cf_h", lang))}</h2><p data-testid=letter-cf data-status="{e(cf["status"])}">{e(cf["text"])}</p>'
    )
    if cf["changes"]:
        parts.append("<ul>" + "".join(f"<li>{e(c)}</li>" for c in cf["changes"]) + "</ul>")
    if in_force != "accept":
        parts.append(f"<p class=small>{e(t('cf_note', lang))}</p>")
    parts.append(f"<h2>{e(t('data_h', lang))}</h2><table data-testid=letter-data>")
    rows = letter["data_used"]
    half = (len(rows) + 1) // 2
    for left, right in zip(rows[:half], rows[half:] + [None] * (2 * half - len(rows)), strict=True):
        cells = f"<td>{e(left['label'])}</td><td class=v>{e(left['value'])}</td>"
        cells += f"<td>{e(right['label'])}</td><td class=v>{e(right['value'])}</td>" if right else "<td></td><td></td>"
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</table>")
    if letter.get("n_inputs"):
        parts.append(f"<p class=small>{e(t('data_note', lang, n=letter['n_inputs']))}</p>")
    parts.append(f"<h2>{e(t('rights_h', lang))}</h2><p>{e(t('rights', lang))}</p>")
    parts.append(f"<h2>{e(t('how_h', lang))}</h2><p>{e(t('how', lang))}</p>")
    parts.append(f"<footer>{e(t('footer', lang, bank=BANK, n=letter_id if letter_id is not None else '-'))}</footer>")
    parts.append("</div></body></html>")
    return "".join(parts)
