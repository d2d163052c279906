"""`credit reasons` (click only: parse, call, print); the work is app/model/portfolio_reasons.py."""

from __future__ import annotations

import time
from pathlib import Path

import click

from app.cli.options import command, db_option, model_option, with_settings
from app.config import Settings


@command("reasons")
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="output file: .csv or .parquet")
@click.option("--all", "every_client", is_flag=True, help="every client, not only the refused ones")
@click.option("--top", default=4, show_default=True, type=click.IntRange(1, 100), help="reasons per client at most")
@click.option("--lang", type=click.Choice(["fr", "en"]), default=None, help="language [default: CREDIT_LANG, fr]")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "parquet"]), default=None, help="[default: by --out's suffix]"
)
@db_option
@model_option
@with_settings("db", "model_dir")
def reasons_command(
    out: str, every_client: bool, top: int, lang: str | None, fmt: str | None, settings: Settings
) -> None:
    """Every refused client's reasons (batch TreeSHAP) into one CSV or Parquet file."""
    from app.model.explain import Explainer
    from app.model.portfolio_reasons import write_reasons
    from app.scoring.db import connect

    if not settings.db_path.exists():
        raise click.ClickException(f"{settings.db_path}: database not found (run `credit ingest` first)")
    t0 = time.perf_counter()
    explainer = Explainer.load(settings.model_path)
    conn = connect(settings.db_path, explainer.bundle, readonly=True)
    try:
        summary = write_reasons(
            conn, explainer, Path(out), refused_only=not every_client, top=top, lang=lang or settings.lang, fmt=fmt
        )
    finally:
        conn.close()
    who = "clients" if every_client else "refused clients"
    click.echo(f"{out}: {summary.rows:,} reasons of {summary.clients:,} {who} ({time.perf_counter() - t0:.1f} s)")
