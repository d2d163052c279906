"""`credit score CLIENT_ID` and `credit sql QUERY`: the SQL scoring functions from the command line."""

from __future__ import annotations

import math
import time

import apsw
import click

from app.cli import sql_output as out
from app.cli.options import CLIENT_ID, allow_other_data_option, command, db_option, model_option, with_settings
from app.config import Settings

PROGRESS_STEPS = 1000  # SQLite VM instructions between two checks of the time limit
MAX_TIMEOUT = 3600.0  # seconds: the longest time limit --timeout or CREDIT_SQL_TIMEOUT may set


def _open(settings: Settings, *, require_model: bool) -> apsw.Connection:
    from app.scoring.bundle import MANIFEST, ModelBundle, ModelError
    from app.scoring.db import DatabaseMissingError, connect, verify_data

    model_path = settings.model_path
    load = require_model or (model_path / MANIFEST).is_file()
    if not load:
        click.echo(
            f"warning: {model_path} has no {MANIFEST}; score() and friends are not available "
            "(run `credit train` and `credit compile`, or pass --model)",
            err=True,
        )
    try:
        pair = ModelBundle.load_pair(model_path) if load else None
        bundle = pair.champion if pair is not None else None
        if pair is not None and pair.challenger_error:
            click.echo(f"warning: {pair.challenger_error}; challenger_*() not available", err=True)
        challenger = pair.challenger if pair is not None else None
        conn = connect(settings.db_path, bundle, readonly=True, challenger=challenger)
    except (DatabaseMissingError, ModelError) as exc:
        raise click.ClickException(str(exc)) from None
    except apsw.Error as exc:
        raise click.ClickException(f"{settings.db_path}: {exc}") from None
    if bundle is not None:
        try:
            warning = verify_data(conn, bundle, allow_other=settings.allow_other_data)
        except ModelError as exc:
            conn.close()
            raise click.ClickException(str(exc)) from None
        if warning:
            click.echo(f"warning: {warning}", err=True)
    return conn


@command("score")
@click.argument("client_id", type=CLIENT_ID)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@db_option
@model_option
@allow_other_data_option
@with_settings("db", "model_dir", "allow_other_data")
def score_command(client_id: int, as_json: bool, settings: Settings) -> None:
    """Score one client: probability of default, decision, threshold, model id."""
    conn = _open(settings, require_model=True)
    try:
        # the view runs the model once (score() + decision() would run it twice)
        row = conn.execute(
            "SELECT probability, decision, model_threshold(), model_id() FROM client_scores WHERE client_id = ?",
            (client_id,),
        ).fetchone()
    except apsw.Error as exc:
        raise click.ClickException(f"scoring client {client_id} failed: {exc}") from None
    finally:
        conn.close()
    if row is None:
        raise click.ClickException(f"unknown client {client_id}: no row in features")
    probability, decision, threshold, model_id = row
    if as_json:
        import msgspec

        obj = {
            "client_id": client_id,
            "probability": probability,
            "decision": decision,
            "threshold": threshold,
            "model_id": model_id,
        }
        click.echo(msgspec.json.encode(obj).decode())
    else:
        click.echo(
            f"client {client_id}: probability of default {probability:.4f} -> {decision} "
            f"(threshold {threshold:.4f}, model {model_id[:12]})"
        )


def _deny_attach(op: int, *_args) -> int:
    return apsw.SQLITE_DENY if op in (apsw.SQLITE_ATTACH, apsw.SQLITE_DETACH) else apsw.SQLITE_OK


def check_timeout(value: float, where: str) -> float:
    """A positive, finite number of seconds, at most MAX_TIMEOUT (0, negatives, nan and inf would remove the
    limit)."""
    if not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT):
        raise click.BadParameter(f"{value!r} is not a number of seconds in (0, {MAX_TIMEOUT:g}]", param_hint=where)
    return value


def _timeout_option(_ctx: click.Context, _param: click.Parameter, value: float | None) -> float | None:
    return None if value is None else check_timeout(value, "'--timeout'")


def _max_bytes_option(_ctx: click.Context, _param: click.Parameter, value: int | None) -> int | None:
    return None if value is None else check_max_bytes(value, "'--max-bytes'")


def check_max_bytes(value: int, where: str) -> int:
    if value < 1:
        raise click.BadParameter(f"{value!r} is not a positive number of bytes", param_hint=where)
    return value


@command("sql")
@click.argument("query")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
    help="output format (csv and json stream any number of rows; table holds at most 100,000)",
)  # fmt: skip
@click.option(
    "--timeout",
    type=float,
    default=None,
    callback=_timeout_option,
    help=f"seconds the query may run, fetching and writing included, at most {MAX_TIMEOUT:g}"
    " [env CREDIT_SQL_TIMEOUT, 30]",
)
@click.option(
    "--max-bytes",
    type=int,
    default=None,
    callback=_max_bytes_option,
    help=f"bytes of output at most [env CREDIT_SQL_MAX_BYTES, {out.DEFAULT_MAX_BYTES:,}]",
)
@db_option
@model_option
@with_settings("db", "model_dir")
def sql_command(query: str, fmt: str, timeout: float | None, max_bytes: int | None, settings: Settings) -> None:
    """Run SQL (read-only) with score(), decision(), score_features(), model_id() and the views
    client_scores, portfolio_summary, score_bands.

    Bounded: --timeout seconds (fetching and writing included), --max-bytes of output, one value at most
    32 MiB, SQLite's memory at most 256 MiB (docs/operations.md).

    Example: credit sql "SELECT * FROM client_scores ORDER BY probability DESC LIMIT 10"
    """
    if timeout is None:
        timeout = check_timeout(settings.sql_timeout, "CREDIT_SQL_TIMEOUT")
    if max_bytes is None:
        max_bytes = check_max_bytes(settings.sql_max_bytes, "CREDIT_SQL_MAX_BYTES")
    limit = timeout
    conn = _open(settings, require_model=False)
    # VACUUM INTO writes a copy anywhere, even from a read-only connection; it needs ATTACH, so deny that
    conn.authorizer = _deny_attach
    conn.limit(apsw.SQLITE_LIMIT_LENGTH, min(out.VALUE_MAX, max_bytes))
    heap_before = apsw.hard_heap_limit(out.HEAP_MAX)
    started = time.monotonic()
    deadline = started + limit
    budget = out.Budget(max_bytes, deadline)
    conn.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
    writer = {"csv": out.write_csv, "json": out.write_json, "table": out.write_table}[fmt]
    stdout = click.get_binary_stream("stdout")
    try:
        writer(conn.cursor().execute(query), stdout, budget)
    except (apsw.InterruptError, out.TimeLimit):
        raise click.ClickException(
            f"query stopped after {time.monotonic() - started:.1f} s: time limit {limit:g} s "
            "(--timeout, env CREDIT_SQL_TIMEOUT)"
        ) from None
    except out.OutputCap as exc:
        raise click.ClickException(
            f"output stopped at {exc.written:,} bytes: limit {max_bytes:,} bytes (--max-bytes, env "
            "CREDIT_SQL_MAX_BYTES; add a LIMIT or select fewer columns)"
        ) from None
    except out.RowCap as exc:
        raise click.ClickException(
            f"query stopped: more than {exc.rows:,} rows for --format table (use --format csv or json, which "
            "stream, or add a LIMIT)"
        ) from None
    except apsw.TooBigError:
        raise click.ClickException(
            f"query stopped: a value is longer than {min(out.VALUE_MAX, max_bytes):,} bytes, the most one string "
            "or BLOB may hold here (select length(...) or substr(...) instead)"
        ) from None
    except apsw.NoMemError:
        raise click.ClickException(
            f"query stopped: SQLite needed more than {out.HEAP_MAX >> 20} MiB of memory (a large sort, "
            "DISTINCT or in-memory temporary table); narrow the query or add a LIMIT"
        ) from None
    except apsw.ReadOnlyError as exc:
        raise click.ClickException(f"the database is opened read-only: {exc}") from None
    except apsw.Error as exc:
        raise click.ClickException(f"SQL error: {exc}") from None
    finally:
        conn.close()
        apsw.hard_heap_limit(heap_before)


__all__ = ["score_command", "sql_command"]
