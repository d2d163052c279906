"""The decision letter from the dashboard (issue 32): links under the score to `/letter/{request_id}`, a route of
the dashboard that fetches the letter of that very decision from the API (GET /decisions/{request_id}/letter,
with the dashboard's key) and shows it as HTML or PDF. Self-contained: its two labels live here."""

from __future__ import annotations

import re

from fastapi.responses import RedirectResponse, Response
from nicegui import app, ui

from ui.api_client import ApiError
from ui.pages.common import api, logged_in, user_name

REQUEST_ID = re.compile(r"[0-9A-Za-z-]{1,64}")
LABELS = {"fr": ("Lettre de décision", "PDF"), "en": ("Decision letter", "PDF")}
LETTER_TIMEOUT_S = 120.0  # a PDF is printed by chromium on the API side


def letter_links(request_id: str, lg: str) -> None:
    """Links to the letter of the decision on screen (HTML and PDF), opened in a new tab."""
    if not REQUEST_ID.fullmatch(request_id or ""):
        return
    text, pdf = LABELS.get(lg, LABELS["fr"])
    with ui.row().classes("items-center gap-3").props("data-testid=letter-links"):
        ui.icon("description", size="sm").props('aria-hidden="true"')
        ui.link(text, f"/letter/{request_id}?lang={lg}", new_tab=True).props("data-testid=letter-link")
        ui.link(pdf, f"/letter/{request_id}?lang={lg}&format=pdf", new_tab=True).props("data-testid=letter-pdf")


def _who() -> str:
    """The logged-in dashboard user (recorded with the letter)."""
    return user_name() or "dashboard"


@app.get("/letter/{request_id}")
async def letter_route(request_id: str, lang: str = "fr", format: str = "html") -> Response:
    if not logged_in():
        return RedirectResponse("/login")
    if not REQUEST_ID.fullmatch(request_id) or lang not in LABELS or format not in ("html", "pdf"):
        return Response("bad letter request", status_code=400, media_type="text/plain")
    try:
        doc = await api().letter(request_id, lang=lang, fmt=format, by=_who(), timeout=LETTER_TIMEOUT_S)
    except ApiError as exc:
        return Response(exc.message(lang), status_code=exc.status or 502, media_type="text/plain; charset=utf-8")
    return Response(doc.content, media_type=doc.media_type, headers=doc.headers)
