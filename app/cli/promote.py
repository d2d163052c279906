"""`credit promote [--rollback|--status|--history|--dry-run]` and the body of `credit compile --challenger` (click
only: parse, call, print; the work is app/scoring/serving.py's ServingFolder)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import click

from app.cli.options import command, log_db_option, model_option, say, settings_from, with_settings
from app.config import Settings

WAIT_HELP = "seconds to wait for another life-cycle command on the same folder to finish [default 30]"
SERVER_WAIT_HELP = "seconds to wait for every running API worker to switch, else exit 2 naming it [default 10]"


def confirm_servers(serving: Path, timeout: float | None) -> None:
    """Wait until every registered running worker scores with the links now on disk; exit 2 naming the late ones."""
    from app.scoring.serving import SERVER_WAIT_SECONDS, live_servers, wait_for_servers

    late = wait_for_servers(serving, SERVER_WAIT_SECONDS if timeout is None else timeout)
    if late:
        for line in late:
            click.echo(f"Error: {line}", err=True)
        click.echo(
            "Error: the change is made on disk, but the servers above did not switch in time; they keep answering "
            "with the model named (see their /readyz and logs; restart them to pick up the champion)",
            err=True,
        )
        raise SystemExit(2)
    n = len(live_servers(serving))
    if n:
        say(f"{n} running API worker(s) switched")


def command_line() -> str:
    """The command as the operator typed it, for the history: `credit promote --rollback --model compiled`."""
    ctx = click.get_current_context()
    parts = ["credit", ctx.info_name or ""]
    for name, value in ctx.params.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            parts.append(flag)
        elif value not in (None, False):
            parts.append(f"{flag} {value}")
    return " ".join(parts)


def serving_folder(serving: Path, settings: Settings, wait: float | None = None):  # noqa: ANN201
    from app.scoring.serving import LOCK_WAIT_SECONDS, ServingFolder

    return ServingFolder(
        serving,
        settings.log_db_path,
        command=command_line(),
        lock_wait=LOCK_WAIT_SECONDS if wait is None else wait,
    )


def install_challenger_into(
    src: Path, into: str | None, log_db: str | None, compile_fn: Callable[..., dict], wait: float | None = None
) -> None:
    """`credit compile --model SRC --challenger [--into SERVING]`: SRC is the folder the challenger was trained in."""
    settings = settings_from(model_dir=into, log_db=log_db)
    folder = serving_folder(settings.model_path, settings, wait)
    bundle = folder.install_challenger(src, compile_fn)
    for note in folder.notes():
        say(note)
    click.echo(
        f"challenger {bundle.model_id[:12]} installed in {bundle.model_dir} ({folder.path}/challenger); running "
        "servers score it in shadow; `credit promote` makes it the champion"
    )
    confirm_servers(folder.path, None)


@command("promote")
@model_option
@log_db_option
@click.option("--rollback", is_flag=True, help="go back one champion along the history (twice: two back)")
@click.option("--status", is_flag=True, help="print the champion, challenger and previous model ids, change nothing")
@click.option("--history", "show_history", is_flag=True, help="print the folder's history of champions, newest first")
@click.option("--dry-run", is_flag=True, help="verify and say what would be switched, change nothing")
@click.option("--wait", type=click.FloatRange(min=0), default=None, help=WAIT_HELP)
@click.option("--server-wait", type=click.FloatRange(min=0), default=None, help=SERVER_WAIT_HELP)
@with_settings("model_dir", "log_db")
def promote_command(
    settings: Settings,
    rollback: bool,
    status: bool,
    show_history: bool,
    dry_run: bool,
    wait: float | None,
    server_wait: float | None,
) -> None:
    """Make the challenger the champion (one atomic rename, under the folder's lock, recorded in the operational
    store's history); running servers switch without a restart or a failed request. --rollback goes back one
    champion along the history and never toggles. Exit status 1 (nothing changed) when there is nothing to switch
    to, the bundle fails verification, or another life-cycle command holds the lock past --wait; exit status 2
    when the switch is made but a running API worker has not switched within --server-wait (it is named)."""
    if sum((rollback, status, show_history)) > 1:
        raise click.UsageError("give one of --rollback, --status, --history")
    folder = serving_folder(settings.model_path, settings, wait)
    if status:
        for role, model_id in folder.status().items():
            click.echo(f"{role:<11} {model_id or '-'}")
        from app.scoring.serving import live_servers

        for r in live_servers(folder.path):
            click.echo(f"server      pid {r.get('pid')} on {r.get('host')}: champion {str(r.get('champion'))[:12]}")
        return
    if show_history:
        rows = folder.history()
        if not rows:
            click.echo(f"no life-cycle history for {folder.path} in {settings.log_db_path}")
        for r in rows:
            when = dt.datetime.fromtimestamp(r["ts"], dt.UTC).isoformat(timespec="seconds")
            old, new = (r["from_model_id"] or "-")[:12], (r["to_model_id"] or "-")[:12]
            click.echo(f"{when}  {r['action']:<8} {old:<12} -> {new:<12} {r['who']}  `{r['command']}`")
        return
    action = "rollback" if rollback else "promote"
    if dry_run:
        old, new = folder.plan(action)
        click.echo(f"would {action}: champion {old[:12]} -> {new[:12]} in {folder.path} (verified; nothing changed)")
        return
    old, new = folder.rollback() if rollback else folder.promote()
    for note in folder.notes():
        say(note)
    verb = "rolled back" if rollback else "promoted"
    click.echo(f"{verb}: champion {old[:12]} -> {new[:12]} in {folder.path}")
    confirm_servers(folder.path, server_wait)
