"""Model page: identity, honest figures with translated names, the comparison of candidates, baselines and
trivial policies, the report's four charts (ROC, reliability, cost against threshold, score bands) and the
global importance (GET /model)."""

from __future__ import annotations

import msgspec
from fastapi.responses import HTMLResponse, RedirectResponse
from nicegui import app, ui

from app.scoring.bundle import Manifest, document_manifest
from ui import locale, logic, report_html
from ui import model_report as mr
from ui.api_client import ApiError
from ui.i18n import feature_label, t
from ui.pages.common import api, chart, error_box, frame, lang, logged_in, login_redirect


@ui.page("/model", response_timeout=20)
async def model_page():
    if (redirect := login_redirect()) is not None:
        return redirect
    lg = lang()
    main = await frame("model", t("model_title", lg))
    with main:
        try:
            # ModelInfo, its optional parts as the API writes them, read as the typed manifest
            shown = msgspec.to_builtins(await api().model())
            model = document_manifest(shown)
        except ApiError as e:
            error_box(e, lg)
            return
        with ui.element("div").classes("grid grid-cols-1 md:grid-cols-2 gap-4 w-full"):
            with ui.card().classes("w-full"):
                model_id = model.model_id
                ui.label(f"{t('model_id', lg)} : {model_id[:12]}").classes("text-lg font-bold").props(
                    f'title="{model_id}" data-testid=model-id'
                )
                ui.label(f"{t('threshold', lg)} : {logic.fmt_prob(_float(model.threshold), lg)}").props(
                    "data-testid=model-threshold"
                )
                costs = model.costs
                ui.label(t("costs", lg, fn=_cost(costs.get("fn"), lg), fp=_cost(costs.get("fp"), lg)))
                ui.label(f"{t('n_features', lg)} : {model.n_features or len(model.features)}")
                if model.trained_at:
                    ui.label(f"{t('trained_at', lg)} : {locale.when(model.trained_at, lg)}")
                # a model trained before the nested evaluation: its metrics are shown as recorded, keys
                # the typed manifest does not know included
                metrics = shown.get("metrics") or {}
                quality = mr.has_evaluation(model)
                headline = mr.headline(model, lg) if quality else logic.headline_metrics(metrics)
                champion = model.champion
                if champion is not None and champion.why:
                    ui.label(f"{mr.tr('why', lg)} : {mr.champion_why(champion.why, lg)}").classes("text-sm").props(
                        "data-testid=champion-why"
                    )
                if champion is not None and champion.forced:
                    ui.label(mr.tr("forced", lg)).classes("text-sm font-bold").style("color:#b91c1c")
                if mr.has_evaluation(model):
                    ui.link(mr.tr("report_link", lg), "/model/report").props("data-testid=report-link")
                if headline:
                    with ui.row().classes("gap-3 flex-wrap mt-2").props("data-testid=headline-metrics"):
                        for name, value in headline:
                            with ui.column().classes("gap-0 p-3 rounded").style("background:#eef2ff;min-width:8rem"):
                                ui.label(name).classes("text-sm").style("color:#374151")
                                ui.label(value).classes("text-xl font-bold")
                if not quality:  # a model trained before issue 16: its raw metrics
                    rows = [{"metric": k, "value": v} for k, v in logic.flatten_metrics(metrics)]
                    with ui.expansion(t("metrics", lg), icon="table_chart").classes("w-full mt-2"):
                        ui.table(
                            columns=[
                                {"name": "metric", "label": t("metric", lg), "field": "metric", "align": "left"},
                                {"name": "value", "label": t("value", lg), "field": "value", "align": "right"},
                            ],
                            rows=rows,
                            row_key="metric",
                            pagination={"rowsPerPage": 0},
                        ).props("dense flat wrap-cells hide-bottom data-testid=metrics").classes("w-full")
            if quality:
                _quality_cards(model, lg)
            with ui.card().classes("w-full"):
                ui.label(t("global_importance", lg)).classes("font-bold").props("role=heading aria-level=2")
                top = ", ".join(feature_label(f, lg) for f in logic.top_features(model, 5))
                importance = logic.importance_option(model, lg)
                chart(importance, t("importance_caption", lg, top=top or "—"), "h-96").style(
                    f"height:{logic.bar_rows_height(len(logic.top_features(model, 15)))}px"
                )


def _quality_cards(model: Manifest, lg: str) -> None:
    with ui.card().classes("w-full md:col-span-2"):
        ui.label(mr.tr("comparison", lg)).classes("font-bold").props("role=heading aria-level=2")
        columns = [
            {"name": k, "label": mr.tr(label, lg), "field": k, "align": "left" if k in ("model", "role") else "right"}
            for k, label in (
                ("model", "model"),
                ("role", "role"),
                ("auc", "auc"),
                ("cost", "cost"),
                ("brier", "brier_short"),
            )
        ]
        ui.table(columns=columns, rows=mr.comparison(model, lg), row_key="model").props(
            "dense flat hide-bottom data-testid=comparison"
        ).classes("w-full").mark("comparison")
    if (effect := mr.sensitive(model, lg)) is not None:
        sentence, rows = effect
        with ui.card().classes("w-full md:col-span-2"):
            ui.label(mr.tr("sensitive", lg)).classes("font-bold").props("role=heading aria-level=2")
            ui.label(sentence).classes("text-sm")
            columns = [
                {"name": k, "label": mr.tr(k, lg), "field": k, "align": "left" if k == "variant" else "right"}
                for k in ("variant", "auc", "cost")
            ]
            ui.table(columns=columns, rows=rows, row_key="variant").props(
                "dense flat hide-bottom data-testid=sensitive-effect"
            ).classes("w-full").mark("sensitive-effect")
    for title, option in mr.charts(model, lg):
        with ui.card().classes("w-full"):
            ui.label(title).classes("font-bold").props("role=heading aria-level=2")
            chart(option, title, "h-72")


def _float(v: object) -> float | None:
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _cost(value, lg: str) -> str:
    """A cost weight in the page's number format: 10 -> '10', 2.5 -> '2,5' in French."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "?"
    return locale.number(v, lg, 0 if v.is_integer() else 2)


@app.get("/model/report")
async def model_report_page():
    """report.html in the session's language (ui/report_html.py), from GET /model; a login first."""
    if not logged_in():
        return RedirectResponse("/login")
    lg = lang()
    try:
        model = msgspec.to_builtins(await api().model())
    except ApiError as e:
        return HTMLResponse(report_html.error_page(e.message(lg), lg), status_code=502)
    return HTMLResponse(report_html.render(model, lg))
