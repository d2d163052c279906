"""`credit score CLIENT_ID` and `credit sql QUERY`: the SQL scoring functions from the command line."""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Iterable, Sequence

import apsw
import click

from app.cli.options import CLIENT_ID, allow_other_data_option, command, db_option, model_option, with_settings
from app.config import Settings

PROGRESS_STEPS = 1000  # SQLite VM instructions between two checks of the time limit
MAX_TIMEOUT = 3600.0  # seconds: the longest time limit --timeout or CREDIT_SQL_TIMEOUT may set
MAX_ROWS = 100_000  # rows held in memory for --format table or json (csv streams, without a cap)


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


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"<BLOB {len(value)} bytes>"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    numeric = [bool(rows) and all(isinstance(r[i], int | float | None) for r in rows) for i in range(len(columns))]

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric, strict=True))

    lines = [fmt(columns).rstrip(), "  ".join("-" * w for w in widths)]
    lines += [fmt(r).rstrip() for r in cells]
    return "\n".join(lines)


def _plain(value: object) -> object:
    return value.hex() if isinstance(value, bytes) else value


def _results(cursor: apsw.Cursor) -> Iterable[tuple[list[str], list[tuple]]]:
    """(column names, rows) for each statement of the query that returned rows, at most MAX_ROWS rows in all."""
    columns: list[str] | None = None
    rows: list[tuple] = []
    for total, row in enumerate(cursor, 1):
        names = [d[0] for d in cursor.get_description()]
        if names != columns:
            if columns is not None:
                yield columns, rows
            columns, rows = names, []
        if total > MAX_ROWS:
            raise RowCapError(total - 1)
        rows.append(row)
    if columns is not None:
        yield columns, rows


def _stream_csv(cursor: apsw.Cursor) -> None:
    """Write each row as it comes (nothing held in memory); a blank line between the statements' results."""
    out = click.get_text_stream("stdout")
    writer = csv.writer(out, lineterminator="\n")
    columns: list[str] | None = None
    for row in cursor:
        names = [d[0] for d in cursor.get_description()]
        if names != columns:
            if columns is not None:
                out.write("\n")
            writer.writerow(names)
            columns = names
        writer.writerow([_plain(v) for v in row])
    out.flush()


class RowCapError(Exception):
    def __init__(self, rows: int):
        super().__init__(rows)
        self.rows = rows


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


@command("sql")
@click.argument("query")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
    help="output format (csv is streamed: any number of rows; table and json hold at most 100,000)",
)  # fmt: skip
@click.option(
    "--timeout",
    type=float,
    default=None,
    callback=_timeout_option,
    help=f"seconds the query may run, at most {MAX_TIMEOUT:g} [env CREDIT_SQL_TIMEOUT, 30]",
)
@db_option
@model_option
@with_settings("db", "model_dir")
def sql_command(query: str, fmt: str, timeout: float | None, settings: Settings) -> None:
    """Run SQL (read-only) with score(), decision(), score_features(), model_id() and the views
    client_scores, portfolio_summary, score_bands.

    Example: credit sql "SELECT * FROM client_scores ORDER BY probability DESC LIMIT 10"
    """
    if timeout is None:
        timeout = check_timeout(settings.sql_timeout, "CREDIT_SQL_TIMEOUT")
    limit = timeout
    conn = _open(settings, require_model=False)
    # VACUUM INTO writes a copy anywhere, even from a read-only connection; it needs ATTACH, so deny that
    conn.authorizer = _deny_attach
    started = time.monotonic()
    deadline = started + limit
    conn.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
    results: list[tuple[list[str], list[tuple]]] = []
    try:
        if fmt == "csv":
            _stream_csv(conn.cursor().execute(query))
            return
        results = list(_results(conn.cursor().execute(query)))
    except apsw.InterruptError:
        raise click.ClickException(
            f"query stopped after {time.monotonic() - started:.1f} s: time limit {limit:g} s "
            "(--timeout, env CREDIT_SQL_TIMEOUT)"
        ) from None
    except RowCapError as exc:
        raise click.ClickException(
            f"query stopped: more than {exc.rows:,} rows for --format {fmt} (use --format csv, which streams, "
            "or add a LIMIT)"
        ) from None
    except apsw.ReadOnlyError as exc:
        raise click.ClickException(f"the database is opened read-only: {exc}") from None
    except apsw.Error as exc:
        raise click.ClickException(f"SQL error: {exc}") from None
    finally:
        conn.close()
    if fmt == "json":
        import msgspec

        if len(results) == 1:
            payload: object = [dict(zip(cols, map(_plain, r), strict=True)) for cols, rows in results for r in rows]
        else:
            payload = [[dict(zip(cols, map(_plain, r), strict=True)) for r in rows] for cols, rows in results]
        click.echo(msgspec.json.encode(payload).decode())
    else:
        click.echo("\n\n".join(_table(cols, rows) for cols, rows in results))


__all__ = ["score_command", "sql_command"]
