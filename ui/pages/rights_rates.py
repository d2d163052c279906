"""Overrides and reviews (issue 32): how often people override the automated decision or review it, by officer, by
score band and over time — GET /monitoring/human-decisions (the risk role), decoded into the API's own type
`HumanDecisions`. Shown to the risk and admin roles only: an officer does not see other officers' rates. Every
number, percentage and date goes through ui/locale.py, every label through ui/i18n.py."""

from __future__ import annotations

import datetime as dt

from nicegui import ui

from app.service.schemas import HumanDecisions, HumanRates
from ui import locale
from ui.api_client import ApiError
from ui.i18n import t
from ui.pages.common import admin_api, chart, current_account, error_box, frame, lang, login_redirect

PATH = "/rights-rates"
ROLES = ("risk", "admin")
PERIODS = ("day", "week", "month")


def may_see_rates() -> bool:
    account = current_account()
    return account is not None and account.role in ROLES


def period_label(period: str, kind: str, lg: str) -> str:
    """'2026-12-07' / '2026-W49' / '2026-12' in the reader's words ('7 déc. 2026', 'semaine du 30 nov. 2026',
    'décembre 2026')."""
    try:
        if kind == "week":
            year, week = period.split("-W")
            monday = dt.date.fromisocalendar(int(year), int(week), 1)
            return t("rr_week_of", lg, start=locale.when(monday.isoformat(), lg, with_time=False))
        if kind == "month":
            return locale.month(period, lg)
        if kind == "day":
            return locale.when(period, lg, with_time=False)
    except ValueError:
        pass
    return period


def band_label(band: str, lg: str) -> str:
    """'0.10-0.20' -> '10 % – 20 %' / '10% – 20%'."""
    try:
        lo, hi = (float(v) for v in band.split("-"))
    except ValueError:
        return band
    return f"{locale.percent(lo, lg, 0)} – {locale.percent(hi, lg, 0)}"


def rate_cells(r: HumanRates, lg: str) -> dict[str, str]:
    return {
        "decisions": locale.number(r.decisions, lg),
        "overrides": locale.number(r.overrides, lg),
        "override_rate": locale.percent(r.override_rate, lg),
        "reviews": locale.number(r.reviews, lg),
        "review_rate": locale.percent(r.review_rate, lg),
        "overturned": locale.number(r.overturned, lg),
        "overturn_rate": locale.percent(r.overturn_rate, lg),
    }


RATE_COLUMNS = ("decisions", "overrides", "override_rate", "reviews", "review_rate", "overturned", "overturn_rate")


def _columns(first: tuple[str, str], keys: tuple[str, ...], lg: str) -> list[dict]:
    name, label = first
    wrap = "white-space: normal"  # long French headers wrap instead of pushing the last columns out of the card
    return [{"name": name, "label": label, "field": name, "align": "left", "headerStyle": wrap}] + [
        {"name": k, "label": t(f"rr_{k}", lg), "field": k, "align": "right", "headerStyle": wrap} for k in keys
    ]


def _table(columns: list[dict], rows: list[dict], key: str, testid: str) -> None:
    ui.table(columns=columns, rows=rows, row_key=key, pagination={"rowsPerPage": 0}).props(
        f"dense flat hide-bottom data-testid={testid}"
    ).classes("w-full")


def _heading(text: str) -> None:
    ui.label(text).classes("text-lg font-bold").props("role=heading aria-level=2")


def show_rates(rep: HumanDecisions, lg: str) -> None:
    o = rep.overall
    with ui.row().classes("gap-4 flex-wrap").props("data-testid=rr-kpis"):
        for key in ("decisions", "override_rate", "review_rate", "overturn_rate"):
            with ui.column().classes("gap-0 p-3 rounded").style("background:#eef2ff;min-width:9rem"):
                ui.label(t(f"rr_{key}", lg)).classes("text-sm").style("color:#374151")
                ui.label(rate_cells(o, lg)[key]).classes("text-2xl font-bold").props(f"data-testid=rr-{key}")
    with ui.card().classes("w-full"):
        _heading(t("rr_by_officer", lg))
        if rep.officer_rates != "per officer":
            ui.label(t("rr_counts_only", lg)).classes("text-sm")
        officer_keys = ("decisions", "overrides", "override_rate", "granted", "pending", "rejected")
        officer_keys += ("reviews_recorded", "review_rate", "share")
        rows = [
            {
                "officer": r.officer,
                "decisions": locale.number(r.decisions, lg),
                "overrides": locale.number(r.overrides, lg),
                "override_rate": locale.percent(r.override_rate, lg),
                "granted": locale.number(r.granted, lg),
                "pending": locale.number(r.pending, lg),
                "rejected": locale.number(r.rejected, lg),
                "reviews_recorded": locale.number(r.reviews_recorded, lg),
                "review_rate": locale.percent(r.review_rate, lg),
                "share": locale.percent(r.share_of_overrides, lg),
            }
            for r in rep.by_officer
        ]
        _table(_columns(("officer", t("rr_officer", lg)), officer_keys, lg), rows, "officer", "rr-officers")
    with ui.card().classes("w-full"):
        _heading(t("rr_by_band", lg))
        rows = [{"band": band_label(b.band, lg), **rate_cells(b, lg)} for b in rep.by_band]
        _table(_columns(("band", t("rr_band", lg)), RATE_COLUMNS, lg), rows, "band", "rr-bands")
    with ui.card().classes("w-full"):
        _heading(t("rr_over_time", lg))
        labels = [period_label(p.period, rep.period, lg) for p in rep.by_period]
        if rep.by_period:
            override = [round(100 * (p.override_rate or 0.0), 2) for p in rep.by_period]
            review = [round(100 * (p.review_rate or 0.0), 2) for p in rep.by_period]
            option = {
                "tooltip": {"trigger": "axis"},
                "legend": {"data": [t("rr_override_rate", lg), t("rr_review_rate", lg)]},
                "xAxis": {"type": "category", "data": labels},
                "yAxis": {"type": "value", "name": "%", "min": 0},
                "series": [
                    {"name": t("rr_override_rate", lg), "type": "line", "data": override},
                    {"name": t("rr_review_rate", lg), "type": "line", "data": review},
                ],
            }
            first, last = rep.by_period[0], rep.by_period[-1]
            summary = t(
                "rr_chart_caption",
                lg,
                n=locale.plural(len(rep.by_period), lg, t("rr_n_period_one", lg), t("rr_n_period_other", lg)),
                first=locale.percent(first.override_rate, lg),
                last=locale.percent(last.override_rate, lg),
                rfirst=locale.percent(first.review_rate, lg),
                rlast=locale.percent(last.review_rate, lg),
            )
            chart(option, summary, "h-56")
        rows = [{"period": label, **rate_cells(p, lg)} for label, p in zip(labels, rep.by_period, strict=True)]
        _table(_columns(("period", t("rr_period", lg)), RATE_COLUMNS, lg), rows, "period", "rr-periods")


@ui.page(PATH, response_timeout=60)
async def rights_rates_page(period: str = "week"):
    if (redirect := login_redirect()) is not None:
        return redirect
    lg = lang()
    period = period if period in PERIODS else "week"
    main = await frame("rights_rates", t("rr_title", lg))
    with main:
        if not may_see_rates():
            error_box(t("rr_risk_only", lg), lg)
            return
        with ui.row().classes("items-center gap-2").props("data-testid=rr-period"):
            ui.label(t("rr_period", lg)).classes("font-medium")
            for p in PERIODS:
                link = ui.link(t(f"rr_{p}", lg), f"{PATH}?period={p}").classes("px-2 py-1 rounded")
                if p == period:
                    link.classes("font-bold").style("background:#e0e7ff").props('aria-current="true"')
        try:
            rep = await admin_api().human_decisions(period)
        except ApiError as exc:
            error_box(exc, lg)
            return
        show_rates(rep, lg)
