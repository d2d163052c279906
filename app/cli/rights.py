"""`credit letter`, `credit review`, `credit override`, `credit rights-export`, `credit counterfactual` (click only:
parse, call, print; the work is app/rights/).

Who acts is `--as ACCOUNT`, an account whose password is verified (app/cli/actor.py); the role recorded is the
account's. The API takes the role from the caller's key.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from app.cli.actor import as_option, authenticated
from app.cli.options import CLIENT_ID, CreditGroup, command, db_option, log_db_option, model_option, with_settings
from app.config import Settings
from app.rights.records import OVERRIDE_REASONS, REVIEW_REASONS


def _store(settings: Settings):
    from app.monitoring.stores import open_store

    return open_store(settings)


def _levers(settings: Settings) -> tuple[str, ...]:
    from app.rights.counterfactual import parse_levers

    return parse_levers(settings.cf_levers)


@command("letter")
@click.argument("ref")
@click.option("--lang", type=click.Choice(["fr", "en"]), default=None, help="language [env CREDIT_LANG, fr]")
@click.option("--pdf", "pdf_path", type=click.Path(dir_okay=False), default=None, help="write the letter as PDF")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None, help="write the letter as HTML")
@click.option("--json", "as_json", is_flag=True, help="print the letter's facts as JSON")
@as_option
@db_option
@log_db_option
@model_option
@with_settings("lang", "db", "log_db", "model_dir")
def letter_command(ref, pdf_path, html_path, as_json, account, settings: Settings) -> None:
    """The decision letter of REF: a request id from the prediction log, or a client id for the client's latest
    decision. It states what was decided, when and by which model (from the log row: what was served, never a
    re-score), the principal reasons, the data used, what would change the outcome and the client's rights; it is
    recorded (who, when, which decision). Without --pdf, --html or --json the HTML goes to stdout."""
    actor = authenticated(settings, account)
    from app.rights.service import issue

    lang = settings.lang if settings.lang in ("fr", "en") else "fr"
    fmt = "pdf" if pdf_path else "json" if as_json and not html_path else "html"
    store = _store(settings)
    try:
        got = issue(
            store,
            ref,
            actor=actor,
            channel="cli",
            lang=lang,
            fmt=fmt,
            serving=settings.model_path,
            data_db=settings.db_path,
            levers=_levers(settings),
        )
    finally:
        store.close()
    if pdf_path:
        Path(pdf_path).write_bytes(got.pdf or b"")
    if html_path:
        Path(html_path).write_text(got.html, encoding="utf-8")
    if as_json:
        click.echo(json.dumps({"letter_id": got.letter_id, **got.facts}, indent=2, ensure_ascii=False))
    elif not pdf_path and not html_path:
        click.echo(got.html)
    d = got.facts["decision"]
    click.echo(
        f"letter {got.letter_id} recorded: decision {d['request_id']} of client {d['client_id']}, "
        f"{got.facts['decision_in_force']}, {lang}",
        err=True,
    )


@click.group("review", cls=CreditGroup)
def review_command() -> None:
    """Human review of an automated decision: an officer records the client's request and point of view, a person
    with the risk role upholds or overturns it."""


@review_command.command("request")
@click.argument("ref")
@click.option("--view", required=True, help="the client's point of view, as they put it")
@as_option
@log_db_option
@db_option
@with_settings("log_db", "db")
def review_request(ref, view, account, settings: Settings) -> None:
    """Record a client's request for a human review of decision REF (request id, or client id: the latest)."""
    actor = authenticated(settings, account)
    from app.rights import records
    from app.rights.service import find_decision

    store = _store(settings)
    try:
        row = find_decision(store, ref)
        rv = records.request_review(store, actor, row["request_id"], view)
    finally:
        store.close()
    click.echo(f"review {rv['id']} requested for decision {rv['request_id']} ({rv['decision_before']})")


@review_command.command("decide")
@click.argument("review_id", type=click.IntRange(min=1))
@click.option("--outcome", type=click.Choice(["uphold", "overturn"]), required=True)
@click.option(
    "--reason", "reason_code", type=click.Choice(list(REVIEW_REASONS)), required=True, help="why, from the closed list"
)
@click.option("--comment", default="", help="free text (required with --reason other)")
@as_option
@log_db_option
@db_option
@with_settings("log_db", "db")
def review_decide(review_id, outcome, reason_code, comment, account, settings: Settings) -> None:
    """Decide review REVIEW_ID (the risk role): uphold or overturn, with a reason from the closed list."""
    actor = authenticated(settings, account)
    from app.rights import records

    store = _store(settings)
    try:
        rv = records.decide_review(store, actor, review_id, outcome, reason_code, comment)
    finally:
        store.close()
    click.echo(f"review {rv['id']}: {rv['outcome']}, decision now {rv['decision_after']}")


@click.group("override", cls=CreditGroup)
def override_command() -> None:
    """Overrides: an officer changes a decision when it is made; granting credit the model refused above
    CREDIT_OVERRIDE_FOUR_EYES waits for a second person with the risk role."""


@override_command.command("record")
@click.argument("ref")
@click.option("--decision", "new_decision", type=click.Choice(["accept", "refuse"]), required=True)
@click.option(
    "--reason",
    "reason_code",
    type=click.Choice(list(OVERRIDE_REASONS)),
    required=True,
    help="why, from the closed list",
)
@click.option("--comment", required=True, help="why, in words")
@as_option
@log_db_option
@db_option
@with_settings("log_db", "db")
def override_record(ref, new_decision, reason_code, comment, account, settings: Settings) -> None:
    """Override decision REF (request id, or client id: the latest)."""
    actor = authenticated(settings, account)
    from app.rights import records
    from app.rights.service import find_decision

    store = _store(settings)
    try:
        row = find_decision(store, ref)
        ov = records.record_override(
            store, actor, row["request_id"], new_decision, reason_code, comment, settings.override_four_eyes
        )
    finally:
        store.close()
    click.echo(f"override of {ov['request_id']}: {ov['model_decision']} -> {ov['decision']} ({ov['status']})")


@override_command.command("approve")
@click.argument("request_id")
@click.option("--reject", is_flag=True, help="reject the override instead")
@click.option("--comment", default="", help="free text (required with --reject)")
@as_option
@log_db_option
@db_option
@with_settings("log_db", "db")
def override_approve(request_id, reject, comment, account, settings: Settings) -> None:
    """Four eyes: approve (or --reject) the pending override of REQUEST_ID; not by the officer who made it."""
    actor = authenticated(settings, account)
    from app.rights import records

    store = _store(settings)
    try:
        ov = records.second_opinion(store, actor, request_id, not reject, comment)
    finally:
        store.close()
    click.echo(f"override of {ov['request_id']}: {ov['status']} (second person {ov['second_by']})")


@command("rights-export")
@click.argument("client_id", type=CLIENT_ID)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="write the JSON here [default: stdout]")
@as_option
@db_option
@log_db_option
@model_option
@with_settings("db", "log_db", "model_dir")
def rights_export_command(client_id, out, account, settings: Settings) -> None:
    """Everything the bank holds about CLIENT_ID's decisions, as JSON: every logged decision with the values it was
    computed from, the reasons as stated, overrides, reviews, letters issued, the observed outcome and the audit
    trail. The export itself is recorded."""
    actor = authenticated(settings, account)
    from app.rights.export import export_client

    store = _store(settings)
    try:
        doc = export_client(store, client_id, actor, settings.model_path)
    finally:
        store.close()
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
        click.echo(f"{len(doc['decisions'])} decisions of client {client_id} written to {out}", err=True)
    else:
        click.echo(text)


@command("counterfactual")
@click.argument("client_id", type=CLIENT_ID)
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@click.option("--lang", type=click.Choice(["fr", "en"]), default=None, help="language [env CREDIT_LANG, fr]")
@db_option
@model_option
@with_settings("db", "model_dir", "lang")
def counterfactual_command(client_id, as_json, settings: Settings) -> None:
    """What would change the outcome for CLIENT_ID with the champion model: the smallest change of the levers
    (CREDIT_CF_LEVERS) that turns a refusal into an acceptance, checked by re-scoring. Exit status 1 when the
    client is refused and no change within the training data's range is enough."""
    import numpy as np

    from app.rights.counterfactual import Searcher, sentences
    from app.scoring.bundle import ModelBundle
    from app.scoring.db import connect

    bundle = ModelBundle.load(settings.model_path)
    conn = connect(settings.db_path, readonly=True)
    try:
        row = conn.execute("SELECT x FROM features WHERE client_id = ?", (client_id,)).fetchall()
        if not row:
            raise click.ClickException(f"unknown client {client_id} in {settings.db_path}")
        x = np.frombuffer(row[0][0], dtype="<f4")
        res = Searcher(bundle, _levers(settings)).search(conn, client_id, x)
    finally:
        conn.close()
    lang = settings.lang if settings.lang in ("fr", "en") else "fr"
    if as_json:
        click.echo(json.dumps(res.as_dict(), indent=2))
    else:
        click.echo(
            f"client {client_id}: probability {res.probability:.4f}, threshold {res.threshold:.4f}: {res.status}"
            f" ({res.candidates} candidates, {res.elapsed_ms:.1f} ms)"
        )
        for line in sentences(res.as_dict(), lang):
            click.echo(f"  - {line}")
        if res.new_probability is not None:
            click.echo(f"  re-scored: probability {res.new_probability:.4f} -> accept")
        if res.reason:
            click.echo(f"  {res.reason}")
    if res.status == "none within bounds":
        sys.exit(1)
