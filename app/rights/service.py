"""Issuing a decision letter (the entry point of `credit letter` and GET .../letter): find the logged decision,
freeze its explanation, build the facts, record the letter, render it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw

from app.rights import explanation, letter, records
from app.rights.records import Actor

FORMATS = ("html", "pdf", "json")


@dataclass
class Issued:
    letter_id: int
    facts: dict[str, Any]
    html: str
    pdf: bytes | None = None


def find_decision(store: apsw.Connection, ref: str | int) -> dict[str, Any]:
    """A logged decision by request id (text with a letter or longer than a client id) or a client's latest (a
    whole number)."""
    text = str(ref).strip()
    if text.isdigit() and len(text) <= 16:
        return records.latest_decision(store, int(text))
    return records.decision(store, text)


def issue(
    store: apsw.Connection,
    ref: str | int,
    *,
    actor: Actor,
    channel: str,
    lang: str,
    fmt: str,
    serving: Path | str,
    data_db: Path | str | None,
    levers: tuple[str, ...],
) -> Issued:
    """Issue the letter of decision `ref` (request id, or client id for the latest) in `lang` and `fmt`; the letter
    is recorded (who, when, which decision, its content) before it is returned."""
    if fmt not in FORMATS:
        raise records.RightsError(f"format must be one of {', '.join(FORMATS)}")
    row = find_decision(store, ref)
    exp = explanation.explain_decision(store, row, serving, data_db, levers)
    content = letter.facts(store, row, exp, lang)
    letter_id = records.record_letter(store, actor, channel, content, fmt)
    page = letter.html(content, letter_id)
    pdf = None
    if fmt == "pdf":  # printed once recorded (the page names its letter number); a failure is recorded too
        from app.rights.pdf import PdfError, html_to_pdf

        try:
            pdf = html_to_pdf(page)
        except PdfError as exc:
            records.record_event(store, actor, "letter not printed", row, str(exc), {"letter_id": letter_id})
            raise
    return Issued(letter_id, content, page, pdf)
