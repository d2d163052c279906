"""Monitoring page (admin keys only): requests, latency, scores over time, drift, drift report; realised
performance and fairness of the live decisions (issue 19), and the model card (/model-card)."""

from __future__ import annotations

import numpy as np
from fastapi import Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from nicegui import app, ui

from ui import logic
from ui.api_client import ApiError
from ui.i18n import feature_label, t
from ui.pages import common
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
        # ---- issue 19: realised performance, fairness, model card
        with ui.card().classes("w-full"):
            ui.label(t("perf_title", lg)).classes("text-lg font-bold").props("role=heading aria-level=2")
            await fetch_and_show(lambda: admin_api().get("/monitoring/performance", period="all"), show_performance, lg)
        with ui.card().classes("w-full"):
            ui.label(t("fairness_title", lg)).classes("text-lg font-bold").props("role=heading aria-level=2")
            await fetch_and_show(lambda: admin_api().get("/monitoring/fairness"), show_fairness, lg)
            ui.button(t("model_card", lg), icon="description").props(
                "href=/model-card tag=a outline data-testid=model-card-link"
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
    min_rows = common.CONFIG.drift_min_rows  # from the settings of `credit ui`
    if rows < min_rows:  # the rule of `credit drift`: no verdict on too small a window
        ui.label(t("drift_not_enough", lg, rows=rows, min_rows=min_rows)).props("data-testid=drift-caption")
        return
    rows_raw = logic.drift_rows(drift)
    drifted = sum(1 for r in rows_raw if r["drifted"])
    verdict = (drift.get("verdict") or {}).get("level")  # stable / watch / act (app.monitoring.verdict)
    share_flag = drift.get("dataset_drift", drift.get("drift_detected"))
    if verdict in ("stable", "watch", "act") or share_flag is not None:
        ok = verdict == "stable" if verdict else not share_flag
        fg, bg = logic.COLORS["accept" if ok else "refuse"]
        label = f"drift_verdict_{verdict}" if verdict else ("no_dataset_drift" if ok else "dataset_drift")
        with ui.row().classes("items-center gap-2 px-3 py-1 rounded").style(f"color:{fg};background:{bg}"):
            ui.icon("check_circle" if ok else "warning").props('aria-hidden="true"')
            ui.label(t(label, lg)).classes("font-bold").props("data-testid=drift-verdict")
        for reason in (drift.get("verdict") or {}).get("reasons") or []:
            ui.label(reason).classes("text-sm")
    w, ref = drift.get("window") or {}, drift.get("reference") or {}
    if w.get("first_ts") and w.get("last_ts"):
        span = f"{w['first_ts'][:16].replace('T', ' ')} – {w['last_ts'][11:16]} UTC"
        ref_rows = logic.fmt_value(ref.get("rows"), lg) if ref.get("rows") else "—"
        ui.label(t("drift_window", lg, rows=logic.fmt_value(rows, lg), span=span, ref_rows=ref_rows)).props(
            "data-testid=drift-window"
        )
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
            "band": f"{logic.fmt_prob(b['band'][0])} – {logic.fmt_prob(b['band'][1])}",
            "n": b["n"],
            "predicted": logic.fmt_prob(b["mean_predicted"]),
            "observed": "—" if b["observed_default_rate"] is None else logic.fmt_prob(b["observed_default_rate"]),
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


def fairness_rows(table: dict) -> list[dict]:
    return [
        {
            "group": g["group"],
            "clients": g["clients"],
            "approval": logic.fmt_prob(g["approval_rate"]),
            "ratio": "—" if g.get("approval_ratio") is None else f"{g['approval_ratio']:.2f}",
            "tpr": logic.fmt_prob(g.get("tpr")),
            "fpr": logic.fmt_prob(g.get("fpr")),
            "flag": "⚠" if g.get("flagged") else "",
        }
        for g in table.get("groups", [])
    ]


def show_fairness(rep: dict, lg: str) -> None:
    ui.label(t("fairness_caption", lg, floor=rep.get("ratio_floor", 0.8), n=rep.get("clients", 0)))
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
        ui.label(attr).classes("font-bold mt-2")
        flagged = [g["group"] for g in table.get("groups", []) if g.get("flagged")]
        if flagged:
            fg, bg = logic.COLORS["refuse"]
            ui.label(t("fair_flagged", lg, groups=", ".join(flagged))).style(f"color:{fg};background:{bg}").classes(
                "px-2 rounded"
            ).props(f"data-testid=fairness-flag-{attr}")
        ui.table(
            columns=[{"name": c, "label": t(k, lg), "field": c, "align": a} for c, k, a in cols],
            rows=fairness_rows(table),
            row_key="group",
            pagination={"rowsPerPage": 0},
        ).props(f"dense flat hide-bottom data-testid=fairness-{attr}").classes("w-full")


@ui.page("/model-card", response_timeout=20)
async def model_card_page():
    """The model card (GET /model/card, markdown) for anyone logged in."""
    if (redirect := login_redirect()) is not None:
        return redirect
    lg = lang()
    main = await frame("model", t("model_card", lg))
    with main:
        try:
            text = await api().get("/model/card")
        except ApiError as e:
            error_box(e if e.kind != "not_found" else t("not_available", lg), lg)
            return
        with ui.card().classes("w-full"):
            ui.markdown(str(text)).props("data-testid=model-card")
