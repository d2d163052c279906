"""The model report (report.html) in the reader's language: the same facts as the report `credit train` writes
beside the manifest (app/model/report.py, English, for the data scientist), drawn from GET /model with the model
page's translated names (ui/model_report.py) and every number, percentage and date through the locale layer.

One self-contained page (inline SVG, no script, no network): the dashboard serves it at /model/report in the
session's language. The score deciles are numbered 1 to 10 in the chart and in the table alike; a row without
folds (a baseline, a trivial policy) shows one dash, never "— ± —".
"""

from __future__ import annotations

import html as _html
from typing import Any

from app.model import report
from app.scoring.bundle import Manifest, document_manifest
from app.scoring.sections import Reliability
from ui import locale
from ui import model_report as mr

TEXT = {
    "fr": {
        "title": "Rapport du modèle",
        "intro": "Modèle {model_id}, entraîné le {trained} sur {n} clients, dont {positives} défauts. Validation "
        "croisée imbriquée : recherche, arrêt précoce et calibration ajustés dans la partie d'entraînement de chaque "
        "pli externe ; seuil validé croisé.",
        "costs": "Coûts : un défaut non détecté coûte {fn}, un bon client refusé {fp}.",
        "threshold": "Seuil de refus : {threshold}.",
        "spread": "AUC par pli (moyenne ± écart type)",
        "brier_change": "Brier avant → après calibration",
        "charts": "Graphiques",
        "bands_title": "Déciles de score",
        "decile": "Décile",
        "probability": "Probabilité de défaut",
        "clients": "Clients",
        "observed": "Taux de défaut observé",
        "decile_axis": "Décile de score (1 : risque le plus faible)",
        "default_rate": "taux de défaut",
        "champion_series": "modèle retenu",
        "cost_series": "coût par client",
        "back": "← Retour au modèle",
    },
    "en": {
        "title": "Model report",
        "intro": "Model {model_id}, trained on {trained} on {n} clients, {positives} of them defaults. Nested "
        "cross-validation: search, early stopping and calibration fitted inside each outer fold's training part; "
        "threshold cross-fitted.",
        "costs": "Costs: a missed defaulter costs {fn}, a refused good client {fp}.",
        "threshold": "Refusal threshold: {threshold}.",
        "spread": "AUC per fold (mean ± std)",
        "brier_change": "Brier before → after calibration",
        "charts": "Charts",
        "bands_title": "Score deciles",
        "decile": "Decile",
        "probability": "Probability of default",
        "clients": "Clients",
        "observed": "Observed default rate",
        "decile_axis": "Score decile (1: lowest risk)",
        "default_rate": "default rate",
        "champion_series": "champion",
        "cost_series": "cost per client",
        "back": "← Back to the model",
    },
}

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1rem auto;max-width:70rem;padding:0 1rem;color:#111827}"
    "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #cbd5e1;padding:.3rem .6rem;"
    "text-align:right}td:first-child,th:first-child{text-align:left}figure{display:inline-block;margin:1rem;"
    "max-width:100%}svg{max-width:100%;height:auto}.wide{overflow-x:auto}"
)


def _tick(lang: str):
    def tick(v: float) -> str:
        return locale.number(v, lang, 0 if float(v).is_integer() else 2)

    return tick


def _spread(row: dict, lang: str) -> str:
    if row.get("auc_mean") is None:
        return locale.DASH
    return f"{locale.fixed(row['auc_mean'], lang, 4)} ± {locale.fixed(row.get('auc_std'), lang, 4)}"


def charts(model: Manifest | dict, lang: str) -> list[tuple[str, str]]:
    """(title, inline SVG) of the four charts, their words and numbers in `lang`."""
    tx = TEXT[lang]
    ev = document_manifest(model).evaluation
    rel = ev.reliability or Reliability()
    chosen = ev.chosen
    bands = ev.score_bands or []
    tick = _tick(lang)
    pairs = lambda bins: [[r.predicted, r.observed] for r in bins or []]  # noqa: E731
    return [
        (
            mr.tr("roc", lang),
            report._svg(
                [(tx["champion_series"], ev.roc or [], "#1f77b4")],
                x_label=mr.tr("fpr", lang),
                y_label=mr.tr("tpr", lang),
                diag=True,
                tick=tick,
            ),
        ),
        (
            mr.tr("reliability", lang),
            report._svg(
                [
                    (mr.tr("before", lang), pairs(rel.uncalibrated), "#b45309"),
                    (mr.tr("after", lang), pairs(rel.calibrated), "#15803d"),
                ],
                x_label=mr.tr("predicted", lang),
                y_label=mr.tr("observed", lang),
                diag=True,
                tick=tick,
            ),
        ),
        (
            mr.tr("cost_curve", lang),
            report._svg(
                [(tx["cost_series"], ev.cost_curve or [], "#7e22ce")],
                x_label=mr.tr("threshold", lang),
                y_label=mr.tr("cost", lang),
                point=(chosen.threshold, chosen.cost_per_client) if chosen is not None else None,
                tick=tick,
            ),
        ),
        (
            mr.tr("bands", lang),
            report._svg(
                [(tx["default_rate"], [[i + 1, b.default_rate] for i, b in enumerate(bands)], "#8c564b")],
                x_label=tx["decile_axis"],
                y_label=mr.tr("observed", lang),
                bars=True,
                tick=tick,
            ),
        ),
    ]


def render(model: Manifest | dict, lang: str) -> str:
    """The whole report page in `lang` ('fr' or 'en') from GET /model's answer (as plain JSON, or typed)."""
    model = document_manifest(model)
    lg = "en" if lang == "en" else "fr"
    tx, esc = TEXT[lg], _html.escape
    m = model.metrics
    costs = model.costs
    ev = model.evaluation
    intro = tx["intro"].format(
        model_id=f"<code>{esc(model.model_id[:12])}</code>",
        trained=esc(locale.when(model.trained_at or None, lg)),
        n=locale.number(m.n_train, lg),
        positives=locale.number(m.positives, lg),
    )
    cost = lambda v: locale.number(v, lg, 2)  # noqa: E731
    tiles = "".join(f"<tr><td>{esc(name)}</td><td>{esc(value)}</td></tr>" for name, value in mr.headline(model, lg))
    why = model.champion.why if model.champion is not None else None
    colon = " : " if lg == "fr" else ": "
    why_html = f"<p>{esc(mr.tr('why', lg))}{colon}{esc(mr.champion_why(why, lg))}</p>" if why else ""
    rows = "".join(
        f"<tr><td>{esc(mr.tr(r['kind'], lg))}</td>"
        f"<td>{esc(mr.tr('champion_role' if r['role'] == 'champion' else r['role'], lg))}</td>"
        f"<td>{locale.fixed(r.get('auc'), lg, 4)}</td><td>{_spread(r, lg)}</td>"
        f"<td>{locale.fixed(r.get('cost'), lg, 4)}</td>"
        f"<td>{_brier(r, lg)}</td></tr>"
        for r in report.rows(model)
    )
    sensitive = ""
    if (effect := mr.sensitive(model, lg)) is not None:
        sentence, srows = effect
        body = "".join(f"<tr><td>{esc(r['variant'])}</td><td>{r['auc']}</td><td>{r['cost']}</td></tr>" for r in srows)
        head = "".join(f"<th>{esc(mr.tr(k, lg))}</th>" for k in ("variant", "auc", "cost"))
        sensitive = f"<h2>{esc(mr.tr('sensitive', lg))}</h2><p>{esc(sentence)}</p><table><tr>{head}</tr>{body}</table>"
    figs = "".join(f"<figure><figcaption>{esc(title)}</figcaption>{svg}</figure>" for title, svg in charts(model, lg))
    bands = "".join(
        f"<tr><td>{i + 1}</td><td>{locale.percent(b.low, lg)} – {locale.percent(b.high, lg)}</td>"
        f"<td>{locale.number(b.n, lg)}</td><td>{locale.percent(b.default_rate, lg)}</td></tr>"
        for i, b in enumerate(ev.score_bands or [])
    )
    head = "".join(
        f"<th>{esc(x)}</th>"
        for x in (
            mr.tr("model", lg),
            mr.tr("role", lg),
            mr.tr("oof_auc", lg),
            tx["spread"],
            mr.tr("cost_per_client", lg),
            tx["brier_change"],
        )
    )
    band_head = "".join(f"<th>{esc(tx[k])}</th>" for k in ("decile", "probability", "clients", "observed"))
    return f"""<!doctype html>
<html lang="{lg}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(tx["title"])} {esc(model.model_id[:12])}</title><style>{STYLE}</style></head><body>
<p><a href="/model" data-testid="back">{esc(tx["back"])}</a></p>
<h1>{esc(tx["title"])}</h1>
<p>{intro}</p>
<p>{esc(tx["costs"].format(fn=cost(costs.get("fn")), fp=cost(costs.get("fp"))))}
{esc(tx["threshold"].format(threshold=locale.percent(model.threshold, lg)))}</p>
{why_html}
<table data-testid="headline">{tiles}</table>
<h2>{esc(mr.tr("comparison", lg))}</h2>
<div class="wide"><table data-testid="comparison"><tr>{head}</tr>{rows}</table></div>
{sensitive}
<h2>{esc(tx["charts"])}</h2>{figs}
<h2>{esc(tx["bands_title"])}</h2>
<div class="wide"><table data-testid="bands"><tr>{band_head}</tr>{bands}</table></div>
</body></html>
"""


def _brier(row: dict[str, Any], lang: str) -> str:
    before, after = row.get("brier_before"), row.get("brier")
    if before is None and after is None:
        return locale.DASH
    return f"{locale.fixed(before, lang, 4)} → {locale.fixed(after, lang, 4)}"


def error_page(message: str, lang: str) -> str:
    """The report's page when the API cannot give the model: the reason in `lang`, and the way back."""
    lg = "en" if lang == "en" else "fr"
    esc = _html.escape
    return (
        f'<!doctype html><html lang="{lg}"><head><meta charset="utf-8"><title>{esc(TEXT[lg]["title"])}</title>'
        f'<style>{STYLE}</style></head><body><p><a href="/model">{esc(TEXT[lg]["back"])}</a></p>'
        f'<p role="alert" data-testid="error">{esc(message)}</p></body></html>'
    )
