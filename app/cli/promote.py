"""`credit promote [--rollback|--status]` and the body of `credit compile --challenger` (click only: parse, call,
print; the work is app/scoring/challenger.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from app.cli.options import command, model_option, settings_from, with_settings
from app.config import Settings


def install_challenger_into(src: Path, into: str | None, compile_fn: Callable[[Path], dict]) -> None:
    """`credit compile --model SRC --challenger [--into SERVING]`: SRC is the folder the challenger was trained in."""
    from app.scoring.challenger import install_challenger

    serving = settings_from(model_dir=into).model_path
    bundle = install_challenger(src, serving, compile_fn)
    click.echo(
        f"challenger {bundle.model_id[:12]} installed in {bundle.model_dir} ({serving}/challenger); running servers "
        "score it in shadow within a second; `credit promote` makes it the champion"
    )


@command("promote")
@model_option
@click.option("--rollback", is_flag=True, help="go back to the previous champion")
@click.option("--status", is_flag=True, help="print the champion, challenger and previous model ids, change nothing")
@with_settings("model_dir")
def promote_command(settings: Settings, rollback: bool, status: bool) -> None:
    """Make the challenger the champion (one atomic rename); running servers switch within a second, without a
    restart or a failed request. --rollback goes back to the previous champion. Exit status 1 (nothing changed)
    when there is nothing to switch to or the bundle fails verification."""
    from app.scoring import challenger

    serving = settings.model_path
    if rollback and status:
        raise click.UsageError("give --rollback or --status, not both")
    if status:
        for role, model_id in challenger.describe(serving).items():
            click.echo(f"{role:<11} {model_id or '-'}")
        return
    old, new = (challenger.rollback if rollback else challenger.promote)(serving)
    verb = "rolled back" if rollback else "promoted"
    click.echo(f"{verb}: champion {old[:12]} -> {new[:12]} in {serving}")
