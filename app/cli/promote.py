"""`credit promote [--rollback|--status]` and the body of `credit compile --challenger` (click only: parse, call,
print; the work is app/scoring/challenger.py)."""

from __future__ import annotations

import click

from app.cli.options import model_option


def _serving(model_dir: str | None):
    from app.config import load_settings

    return load_settings(model_dir=model_dir).model_path


def install_command_body(src: str | None, into: str | None, *, cc: str | None, opt: str, no_tl2cgen: bool) -> None:
    """`credit compile --model SRC --challenger [--into SERVING]`."""
    from app.model.compile import CompileError, compile_model
    from app.scoring.challenger import install_challenger
    from app.scoring.library import ModelError

    if src is None:
        raise click.UsageError("--challenger needs --model DIR: the folder the challenger was trained in")
    serving = _serving(into)

    def compile_fn(folder):
        return compile_model(folder, progress=True, cc=cc, flags=(opt, "-fno-plt"), tl2cgen_reference=not no_tl2cgen)

    try:
        bundle = install_challenger(src, serving, compile_fn)
    except (CompileError, ModelError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"challenger {bundle.model_id[:12]} installed in {bundle.model_dir} ({serving}/challenger); running servers "
        "score it in shadow within a second; `credit promote` makes it the champion"
    )


@click.command("promote")
@model_option
@click.option("--rollback", is_flag=True, help="go back to the previous champion")
@click.option("--status", is_flag=True, help="print the champion, challenger and previous model ids, change nothing")
def promote_command(model_dir: str | None, rollback: bool, status: bool) -> None:
    """Make the challenger the champion (one atomic rename); running servers switch within a second, without a
    restart or a failed request. --rollback goes back to the previous champion. Exit status 1 (nothing changed)
    when there is nothing to switch to or the bundle fails verification."""
    from app.scoring import challenger
    from app.scoring.library import ModelError

    serving = _serving(model_dir)
    if rollback and status:
        raise click.UsageError("give --rollback or --status, not both")
    try:
        if status:
            for role, model_id in challenger.describe(serving).items():
                click.echo(f"{role:<11} {model_id or '-'}")
            return
        old, new = (challenger.rollback if rollback else challenger.promote)(serving)
    except ModelError as exc:
        raise click.ClickException(str(exc)) from None
    verb = "rolled back" if rollback else "promoted"
    click.echo(f"{verb}: champion {old[:12]} -> {new[:12]} in {serving}")
