"""The landing worklist: the portfolio (accepted / refused, clients per probability band), the clients scored
most recently and the files closest to the threshold; every row opens the client's file (/?client_id=N).
Served by the API's GET /portfolio, /portfolio/recent and /portfolio/borderline (officer key), fetched at once."""

from __future__ import annotations

import asyncio

import msgspec
from nicegui import ui

from ui import locale, logic
from ui.api_client import ApiError
from ui.i18n import t
from ui.pages.common import api, chart, error_box

ROWS = 10


async def fill_worklist(box: ui.column, lg: str) -> None:
    with box:
        spinner = ui.spinner(size="lg").props(f'aria-label="{t("loading", lg)}"')
    results = await asyncio.gather(
        api().portfolio(), api().recent(ROWS), api().borderline(ROWS), return_exceptions=True
    )
    spinner.delete()
    summary, recent, borderline = (r if isinstance(r, BaseException) else msgspec.to_builtins(r) for r in results)
    with box:
        ui.label(t("worklist_title", lg)).classes("text-xl font-bold").props("role=heading aria-level=2")
        if isinstance(summary, ApiError):
            error_box(summary, lg)
        elif isinstance(summary, BaseException):
            raise summary
        else:
            _summary(summary, lg)
        with ui.element("div").classes("grid grid-cols-1 lg:grid-cols-2 gap-4 w-full"):
            with ui.card().classes("w-full").props("data-testid=worklist-recent"):
                ui.label(t("worklist_recent", lg)).classes("text-lg font-bold").props("role=heading aria-level=3")
                _rows(recent, "recent", lg)
            with ui.card().classes("w-full").props("data-testid=worklist-borderline"):
                ui.label(t("worklist_borderline", lg)).classes("text-lg font-bold").props("role=heading aria-level=3")
                _rows(borderline, "borderline", lg)


def _summary(summary: dict, lg: str) -> None:
    kpis = (
        ("clients", "worklist_clients", logic.fmt_value(int(summary["clients"]), lg)),
        ("accepted", "worklist_accepted", logic.fmt_value(int(summary["accepted"]), lg)),
        ("refused", "worklist_refused", logic.fmt_value(int(summary["refused"]), lg)),
        ("refusal-rate", "worklist_refusal_rate", logic.fmt_prob(float(summary["refusal_rate"]), lg)),
        ("threshold", "threshold", logic.fmt_prob(float(summary["threshold"]), lg)),
    )
    raw = {"clients": summary["clients"], "accepted": summary["accepted"], "refused": summary["refused"]}
    with ui.row().classes("gap-4 flex-wrap").props("data-testid=worklist-kpis"):
        for key, label, text in kpis:
            with ui.column().classes("gap-0 p-3 rounded").style("background:#eef2ff;min-width:8rem"):
                ui.label(t(label, lg)).classes("text-sm").style("color:#374151")
                ui.label(text).classes("text-2xl font-bold").props(
                    f"data-testid=worklist-{key} data-value={raw.get(key, '')}"
                )
    bands = summary.get("bands") or []
    with ui.card().classes("w-full"):
        ui.label(t("worklist_bands", lg)).classes("text-lg font-bold").props("role=heading aria-level=3")
        chart(logic.bands_option(bands, float(summary["threshold"]), lg), logic.bands_caption(bands, lg), "h-64")
        ui.table(
            columns=[
                {"name": "band", "label": t("worklist_band", lg), "field": "band", "align": "left"},
                {"name": "clients", "label": t("worklist_clients", lg), "field": "clients", "align": "right"},
                {"name": "refused", "label": t("worklist_refused", lg), "field": "refused", "align": "right"},
            ],
            rows=[
                {
                    "band": logic.band_label(b["lower"], b["upper"], lg),
                    "clients": logic.fmt_value(int(b["clients"]), lg),
                    "refused": logic.fmt_value(int(b["refused"]), lg),
                }
                for b in bands
            ],
            row_key="band",
            pagination={"rowsPerPage": 0},
        ).props("dense flat hide-bottom data-testid=worklist-bands").classes("w-full")


def _rows(payload: dict | BaseException, kind: str, lg: str) -> None:
    if isinstance(payload, ApiError):
        error_box(payload, lg)
        return
    if isinstance(payload, BaseException):
        raise payload
    rows = payload.get("rows") or []
    if not rows:
        ui.label(t("worklist_none_recent", lg)).classes("text-sm")
        return
    threshold = float(payload.get("threshold") or 0.0)
    with ui.element("ul").classes("w-full divide-y").props(f"data-testid=worklist-{kind}-rows"):
        for r in rows:
            cid = int(r["client_id"])
            p = float(r["probability"])
            view = logic.decision_view(r.get("decision"), lg)
            if kind == "recent" and r.get("ts"):
                when = locale.when(r["ts"], lg)
                extra = f"{t('worklist_when', lg)} {when}"
            else:
                extra = f"{t('worklist_distance', lg)} {locale.points(p - threshold, lg)}"
            with (
                ui.element("li").classes("py-1"),
                ui.link(target=f"/?client_id={cid}")
                .classes("flex flex-wrap items-center gap-x-3 no-underline w-full")
                .style("color:#111827")
                .props(f'aria-label="{t("worklist_open", lg, client_id=cid)}" data-testid=worklist-row')
                .props(f"data-client={cid}"),
            ):
                ui.label(f"{t('client_id', lg)} {cid}").classes("font-bold").style("color:#0d47a1")
                ui.label(logic.fmt_prob(p, lg))
                ui.label(view["text"]).classes("font-bold").style(f"color:{view['fg']}")
                ui.label(extra).classes("text-sm").style("color:#374151")
