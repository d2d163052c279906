"""Monitoring page (admin keys only): requests, latency, scores over time, drift, drift report; realised
performance and fairness of the live decisions (issue 19), and the model card (/model-card)."""

from __future__ import annotations

import asyncio
from html import escape

import msgspec
import numpy as np
from fastapi import Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from nicegui import app, background_tasks, ui

from app.service.schemas import DriftReport, MonitoringSummary
from ui import categories, drift_summary, locale, logic
from ui.api_client import ApiError
from ui.i18n import feature_label, t
from ui.pages import common
from ui.pages.common import admin_api, api, chart, error_box, frame, is_admin, lang, logged_in, login_redirect
from ui.security import CSP


@ui.page("/monitoring", response_timeout=60)
async def monitoring_page():
    if (redirect := login_redirect()) is not None:
        return redirect
    lg = lang()
    main = await frame("monitoring", t("monitoring_title", lg))
    with main:
        if not await is_admin():
            error_box(t("admin_only", lg), lg)
            return
        # the four reports are independent: asked at once, each drawn in its place as it comes
        client = admin_api()
        summary_t = asyncio.create_task(client.monitoring_summary())
        drift_t = asyncio.create_task(client.monitoring_drift())
        performance_t = asyncio.create_task(plain(client.performance()))
        fairness_t = asyncio.create_task(plain(client.fairness()))
        with ui.card().classes("w-full"):
            await fetch_and_show(lambda: summary_t, show_summary, lg)
        with ui.card().classes("w-full"):
            ui.label(t("drift_title", lg)).classes("text-lg font-bold").props("role=heading aria-level=2")
            await fetch_and_show(lambda: drift_t, show_drift, lg)
            ui.button(t("drift_report", lg), icon="open_in_new").props(
                "href=/drift-report tag=a outline data-testid=drift-report"
            )
        # ---- issue 19: realised performance, fairness, model card
        # realised performance and fairness can take long (the API's first fairness report imports its library):
        # the page is sent at once and these two cards fill in when their answers arrive
        with ui.card().classes("w-full"):
            ui.label(t("perf_title", lg)).classes("text-lg font-bold").props("role=heading aria-level=2")
            perf_box = ui.column().classes("w-full")
        with ui.card().classes("w-full"):
            ui.label(t("fairness_title", lg)).classes("text-lg font-bold").props("role=heading aria-level=2")
            fair_box = ui.column().classes("w-full")
            ui.button(t("model_card", lg), icon="description").props(
                "href=/model-card tag=a outline data-testid=model-card-link"
            )
    background_tasks.create(fill_later(perf_box, performance_t, show_performance, lg), name="performance")
    background_tasks.create(fill_later(fair_box, fairness_t, show_fairness, lg), name="fairness")


async def fill_later(box: ui.column, task: asyncio.Task, show, lg: str) -> None:
    with box:
        spinner = ui.spinner(size="lg").props(f'aria-label="{t("loading", lg)}"')
    await asyncio.wait([task])  # its error, if any, is shown by fetch_and_show below
    if box.is_deleted:
        return
    spinner.delete()
    with box:
        await fetch_and_show(lambda: task, show, lg)


async def fetch_and_show(fetch, show, lg: str) -> None:
    """Show what the API returns, or say why not (a 404 means this build has no such part)."""
    try:
        data = await fetch()
    except ApiError as e:
        error_box(e if e.kind != "not_found" else t("not_available", lg), lg)
        return
    show(data, lg)


async def plain(answer) -> dict:
    """The decoded report as the API's JSON (the performance and fairness reports are nested dicts)."""
    return msgspec.to_builtins(await answer)


def show_summary(summary: MonitoringSummary, lg: str) -> None:
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
    series = logic.score_series(summary, lg)
    if not series["periods"]:
        ui.label(t("no_data", lg))
        return
    chart(logic.score_time_option(series, lg), logic.score_time_caption(series, lg), "h-72")


def show_drift(drift: DriftReport, lg: str) -> None:
    rows = drift.window.rows
    min_rows = common.CONFIG.drift_min_rows  # from the settings of `credit ui`
    if rows < min_rows:  # the rule of `credit drift`: no verdict on too small a window
        ui.label(t("drift_not_enough", lg, rows=rows, min_rows=min_rows)).props("data-testid=drift-caption")
        return
    rows_raw = logic.drift_rows(drift)
    drifted = sum(1 for r in rows_raw if r["drifted"])
    level = drift.verdict.level if drift.verdict is not None else None  # stable / watch / act (app.monitoring.verdict)
    ok = level == "stable" if level in ("stable", "watch", "act") else not drift.dataset_drift
    label = (
        f"drift_verdict_{level}"
        if level in ("stable", "watch", "act")
        else ("no_dataset_drift" if ok else "dataset_drift")
    )
    fg, bg = logic.COLORS["accept" if ok else "refuse"]
    with ui.row().classes("items-center gap-2 px-3 py-1 rounded").style(f"color:{fg};background:{bg}"):
        ui.icon("check_circle" if ok else "warning").props('aria-hidden="true"')
        ui.label(t(label, lg)).classes("font-bold").props("data-testid=drift-verdict")
    with ui.column().classes("gap-1").props("data-testid=drift-summary-text"):  # the verdict's facts, in words
        for sentence in drift_summary.sentences(drift, lg):
            ui.label(sentence).classes("text-sm")
    threshold = locale.number(drift.psi_threshold, lg, 3)
    ui.label(t("drift_caption", lg, drifted=drifted, total=len(rows_raw), threshold=threshold)).props(
        "data-testid=drift-caption"
    )
    rows = [
        {
            "feature": feature_label(r["feature"], lg),
            "psi": locale.fixed(r["psi"], lg, 3),
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
    """The API's full Evidently report, fetched with the dashboard's key (the browser holds no key), for the
    frame of /drift-report: it may be framed by the dashboard itself, by nothing else."""
    lg = lang()
    if not logged_in() or not await is_admin():
        return PlainTextResponse("login required", status_code=401)
    try:
        html = await admin_api().drift_report_html()
    except ApiError as e:
        text = t("not_available", lg) if e.kind == "not_found" else e.message(lg)
        html = f"<!doctype html><html lang={lg}><body><p>{escape(text)}</p></body></html>"
    own = {"content-security-policy": CSP.replace("frame-ancestors 'none'", "frame-ancestors 'self'")}
    return HTMLResponse(str(html), headers={**own, "x-frame-options": "SAMEORIGIN"})


@ui.page("/drift-report", response_timeout=60)
async def drift_report_page():
    """The drift report inside the dashboard's frame: header, language, a way back, a summary in the page's
    language from GET /monitoring/drift, then Evidently's own detail (English only) in a frame below it."""
    if (redirect := login_redirect()) is not None:
        return redirect
    lg = lang()
    main = await frame("monitoring", t("drift_report", lg))
    with main:
        ui.link(t("back_to_monitoring", lg), "/monitoring").props("data-testid=back")
        if not await is_admin():
            error_box(t("admin_only", lg), lg)
            return
        with ui.card().classes("w-full").props("data-testid=drift-summary"):
            await fetch_and_show(admin_api().monitoring_drift, show_drift, lg)
        ui.label(t("drift_detail_note", lg)).classes("text-sm").style("color:#374151")
        ui.element("iframe").props(
            f'src=/reports/drift title="{t("drift_report", lg)}" data-testid=drift-frame'
        ).classes("w-full").style("height:80vh;border:1px solid #cbd5e1;border-radius:4px")


# ---- issue 19: realised performance, fairness, model card -----------------------------------------------------


def performance_kpis(rep: dict) -> list[tuple[str, object]]:
    """(label key, value) pairs for the realised-performance headline; value None when too few outcomes."""
    o = rep.get("overall") or {}
    few = o.get("too_few_outcomes", True)
    return [
        ("perf_outcomes", rep.get("matched", 0)),
        ("perf_auc", None if few else o.get("auc")),
        ("perf_cost", None if few else o.get("cost_per_client")),
        ("perf_accept_all", None if few else o.get("accept_all_cost_per_client")),
        ("perf_never_scored", (rep.get("never_scored") or {}).get("count", 0)),
    ]


def show_performance(rep: dict, lg: str) -> None:
    show_challenger(rep, lg)
    with ui.row().classes("gap-4 flex-wrap").props("data-testid=perf-kpis"):
        for key, value in performance_kpis(rep):
            with ui.column().classes("gap-0 p-3 rounded").style("background:#eef2ff;min-width:9rem"):
                ui.label(t(key, lg)).classes("text-sm").style("color:#374151")
                shown = logic.fmt_value(round(value, 4) if isinstance(value, float) else value, lg)
                ui.label("—" if value is None else shown).classes("text-2xl font-bold")
    o = rep.get("overall") or {}
    if o.get("too_few_outcomes", True):
        ui.label(t("perf_too_few", lg, n=rep.get("matched", 0), min=rep.get("min_outcomes", "?"))).props(
            "data-testid=perf-too-few"
        )
        return
    rows = [
        {
            "band": f"{logic.fmt_prob(b['band'][0], lg)} – {logic.fmt_prob(b['band'][1], lg)}",
            "n": b["n"],
            "predicted": logic.fmt_prob(b["mean_predicted"], lg),
            "observed": "—" if b["observed_default_rate"] is None else logic.fmt_prob(b["observed_default_rate"], lg),
        }
        for b in o.get("calibration", [])
        if b["n"]
    ]
    ui.table(
        columns=[
            {"name": "band", "label": t("perf_band", lg), "field": "band", "align": "left"},
            {"name": "n", "label": t("perf_n", lg), "field": "n", "align": "right"},
            {"name": "predicted", "label": t("perf_predicted", lg), "field": "predicted", "align": "right"},
            {"name": "observed", "label": t("perf_observed", lg), "field": "observed", "align": "right"},
        ],
        rows=rows,
        row_key="band",
        pagination={"rowsPerPage": 0},
    ).props("dense flat hide-bottom data-testid=calibration").classes("w-full")


def challenger_rows(rep: dict) -> list[dict]:
    """Two rows (champion, challenger) per comparison of the performance report's `challenger` section."""
    rows = []
    for c in rep.get("challenger") or []:
        psi = c["score_distribution"]["psi"]
        for role in ("champion", "challenger"):
            f = c[role]
            few = f.get("too_few_outcomes", True)
            rows.append(
                {
                    "key": f"{c['challenger_model_id']}-{role}",
                    "model": c[f"{role}_model_id"][:12],
                    "role": role,
                    "outcomes": f.get("outcomes", 0),
                    "auc": None if few else round(f["auc"], 4),
                    "cost": None if few else round(f["cost_per_client"], 4),
                    "psi": round(psi, 4) if role == "challenger" else None,
                }
            )
    return rows


def show_challenger(rep: dict, lg: str) -> None:
    rows = challenger_rows(rep)
    if not rows:
        return
    ui.label(t("chal_title", lg)).classes("text-lg font-bold").props("role=heading aria-level=3")
    shown = [{k: ("—" if v is None else v) for k, v in r.items()} | {"role": t(f"chal_{r['role']}", lg)} for r in rows]
    ui.table(
        columns=[
            {"name": "model", "label": t("chal_model", lg), "field": "model", "align": "left"},
            {"name": "role", "label": t("chal_role", lg), "field": "role", "align": "left"},
            {"name": "outcomes", "label": t("perf_outcomes", lg), "field": "outcomes", "align": "right"},
            {"name": "auc", "label": t("perf_auc", lg), "field": "auc", "align": "right"},
            {"name": "cost", "label": t("perf_cost", lg), "field": "cost", "align": "right"},
            {"name": "psi", "label": t("chal_psi", lg), "field": "psi", "align": "right"},
        ],
        rows=shown,
        row_key="key",
        pagination={"rowsPerPage": 0},
    ).props("dense flat hide-bottom data-testid=challenger").classes("w-full")


def fairness_rows(table: dict, lg: str = "fr") -> list[dict]:
    return [
        {
            "group": categories.group(g["group"], lg),
            "clients": logic.fmt_value(g["clients"], lg),
            "approval": logic.fmt_prob(g["approval_rate"], lg),
            "ratio": locale.fixed(g.get("approval_ratio"), lg, 2),
            "tpr": logic.fmt_prob(g.get("tpr"), lg),
            "fpr": logic.fmt_prob(g.get("fpr"), lg),
            "flag": "⚠" if g.get("flagged") else "",
        }
        for g in sorted(table.get("groups", []), key=lambda g: categories.group_order(g["group"]))
    ]


def show_fairness(rep: dict, lg: str) -> None:
    floor, clients = locale.number(rep.get("ratio_floor", 0.8), lg, 2), locale.number(rep.get("clients", 0), lg)
    ui.label(t("fairness_caption", lg, floor=floor, n=clients)).props("data-testid=fairness-caption")
    cols = [
        ("group", "fair_group", "left"),
        ("clients", "perf_n", "right"),
        ("approval", "fair_approval", "right"),
        ("ratio", "fair_ratio", "right"),
        ("tpr", "fair_tpr", "right"),
        ("fpr", "fair_fpr", "right"),
        ("flag", "fair_flag", "left"),
    ]
    for attr, table in (rep.get("attributes") or {}).items():
        ui.label(categories.attribute(attr, lg)).classes("font-bold mt-2")
        flagged = [categories.group(g["group"], lg) for g in table.get("groups", []) if g.get("flagged")]
        if flagged:
            fg, bg = logic.COLORS["refuse"]
            ui.label(t("fair_flagged", lg, groups=", ".join(flagged))).style(f"color:{fg};background:{bg}").classes(
                "px-2 rounded"
            ).props(f"data-testid=fairness-flag-{attr}")
        ui.table(
            columns=[{"name": c, "label": t(k, lg), "field": c, "align": a} for c, k, a in cols],
            rows=fairness_rows(table, lg),
            row_key="group",
            pagination={"rowsPerPage": 0},
        ).props(f"dense flat hide-bottom data-testid=fairness-{attr}").classes("w-full")
