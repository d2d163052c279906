"""Monitoring page (admin keys only): requests, latency, scores over time, drift, drift report."""

from __future__ import annotations

import numpy as np
from fastapi import Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from nicegui import app, ui

from app.config import load_settings
from ui import logic
from ui.api_client import ApiError
from ui.i18n import feature_label, t
from ui.pages.common import admin_api, api, chart, error_box, frame, is_admin, lang, logged_in, login_redirect


@ui.page("/monitoring", response_timeout=20)
async def monitoring_page():
    if (redirect := login_redirect()) is not None:
        return redirect
    lg = lang()
    main = await frame("monitoring", t("monitoring_title", lg))
    with main:
        if not await is_admin():
            error_box(t("admin_only", lg), lg)
            return
        with ui.card().classes("w-full"):
            await fetch_and_show(admin_api().monitoring_summary, show_summary, lg)
        with ui.card().classes("w-full"):
            ui.label(t("drift_title", lg)).classes("text-lg font-bold").props("role=heading aria-level=2")
            await fetch_and_show(admin_api().monitoring_drift, show_drift, lg)
            ui.button(t("drift_report", lg), icon="open_in_new").props(
                "href=/reports/drift tag=a target=_blank outline data-testid=drift-report"
            )


async def fetch_and_show(fetch, show, lg: str) -> None:
    """Show what the API returns, or say why not (a 404 means this build has no such part)."""
    try:
        data = await fetch()
    except ApiError as e:
        error_box(e if e.kind != "not_found" else t("not_available", lg), lg)
        return
    show(data, lg)


def show_summary(summary: dict, lg: str) -> None:
    kpis = logic.summary_kpis(summary)
    seen = list(admin_api().latencies_ms) + list(api().latencies_ms)
    http_p50 = float(np.median(seen)) if seen else None
    items = (
        ("requests", kpis["count"]),
        ("latency_compute_p50", kpis["p50"]),
        ("latency_compute_p99", kpis["p99"]),
        ("latency_http_p50", http_p50),
    )
    with ui.row().classes("gap-4 flex-wrap").props("data-testid=kpis"):
        for key, value in items:
            with ui.column().classes("gap-0 p-3 rounded").style("background:#eef2ff;min-width:9rem;max-width:16rem"):
                ui.label(t(key, lg)).classes("text-sm").style("color:#374151")
                ui.label(logic.fmt_value(value, lg)).classes("text-2xl font-bold").props(f"data-testid={key}")
    ui.label(t("latency_note", lg, n=len(seen))).classes("text-sm").style("color:#374151")
    ui.label(t("score_over_time", lg)).classes("text-lg font-bold").props("role=heading aria-level=2")
    series = logic.score_series(summary)
    if not series["periods"]:
        ui.label(t("no_data", lg))
        return
    chart(logic.score_time_option(series, lg), logic.score_time_caption(series, lg), "h-72")


def show_drift(drift: dict, lg: str) -> None:
    rows = int((drift.get("window") or {}).get("rows") or 0)
    min_rows = load_settings().drift_min_rows
    if rows < min_rows:  # the rule of `credit drift`: no verdict on too small a window
        ui.label(t("drift_not_enough", lg, rows=rows, min_rows=min_rows)).props("data-testid=drift-caption")
        return
    rows_raw = logic.drift_rows(drift)
    drifted = sum(1 for r in rows_raw if r["drifted"])
    share_flag = drift.get("dataset_drift", drift.get("drift_detected"))
    if share_flag is not None:
        ok = not share_flag
        fg, bg = logic.COLORS["accept" if ok else "refuse"]
        with ui.row().classes("items-center gap-2 px-3 py-1 rounded").style(f"color:{fg};background:{bg}"):
            ui.icon("check_circle" if ok else "warning").props('aria-hidden="true"')
            ui.label(t("no_dataset_drift" if ok else "dataset_drift", lg)).classes("font-bold")
    ui.label(
        t("drift_caption", lg, drifted=drifted, total=len(rows_raw), threshold=drift.get("psi_threshold", "—"))
    ).props("data-testid=drift-caption")
    rows = [
        {
            "feature": feature_label(r["feature"], lg),
            "psi": f"{r['psi']:.3f}" if r["psi"] is not None else "—",
            "drifted": t("yes" if r["drifted"] else "no", lg),
        }
        for r in sorted(rows_raw, key=lambda r: -(r["psi"] or 0))[:30]
    ]
    ui.table(
        columns=[
            {"name": "feature", "label": t("feature", lg), "field": "feature", "align": "left"},
            {"name": "psi", "label": t("psi", lg), "field": "psi", "align": "right"},
            {"name": "drifted", "label": t("drifted", lg), "field": "drifted", "align": "left"},
        ],
        rows=rows,
        row_key="feature",
        pagination={"rowsPerPage": 0},
    ).props("dense flat hide-bottom").classes("w-full")


@app.get("/reports/drift")
async def drift_report(request: Request):
    """The API's full drift report, fetched with the dashboard's key (the browser holds no key)."""
    lg = lang()
    if not logged_in():
        return PlainTextResponse("login required", status_code=401)
    try:
        html = await admin_api().drift_report_html()
    except ApiError as e:
        text = t("not_available", lg) if e.kind == "not_found" else e.message(lg)
        return HTMLResponse(f"<!doctype html><html lang={lg}><body><p>{text}</p></body></html>", status_code=200)
    if not isinstance(html, str):
        html = str(html)
    return HTMLResponse(html)
