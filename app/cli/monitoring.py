"""`credit outcomes import|simulate` and `credit performance` (click only: parse, call, print)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from app.cli.options import db_option, log_db_option, model_option

EXIT_OK, EXIT_BELOW, EXIT_EMPTY = 0, 1, 2


@click.group("outcomes")
def outcomes_command() -> None:
    """Observed outcomes (did the client default, and when): import them, or simulate them for a demo."""


@outcomes_command.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@db_option
@log_db_option
def import_command(file: str, db: str | None, log_db: str | None) -> None:
    """Import FILE.csv with the header client_id,defaulted,observed_at (observed_at: ISO 8601 date or date-time,
    UTC when naive; a date alone means the end of that day). The latest observation of a client wins, so
    importing the same file again changes nothing. Any bad line: every error is listed by line and column
    and nothing is imported (exit status 1)."""
    from app.config import load_settings
    from app.monitoring import outcomes, stores

    settings = load_settings(db=db, log_db=log_db)
    conn = _open(stores.open_store, settings)
    try:
        got = outcomes.import_file(conn, Path(file))
        total = outcomes.counts(conn)
    except outcomes.OutcomeError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        conn.close()
    click.echo(
        f"{got['written']} of {got['received']} outcomes written (the others were already stored or older); "
        f"{total['outcomes']} outcomes stored, {total['defaults']} defaults"
    )


@outcomes_command.command("simulate")
@click.option("--share", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True,
              help="share of the logged clients (with a label) that get an outcome")  # fmt: skip
@click.option("--seed", type=int, default=None, help="random seed [env CREDIT_SEED, 42]")
@db_option
@log_db_option
def simulate_command(share: float, seed: int | None, db: str | None, log_db: str | None) -> None:
    """Outcomes for the clients in the prediction log, drawn from the data's own labels (the TARGET of the
    generated or imported training data), observed now. For demonstrations: the whole loop without real
    outcomes. Clients without a label (test split) get none. The model was trained on these very labels, so
    the realised figures of simulated outcomes are in-sample (optimistic)."""
    from app.config import load_settings
    from app.monitoring import outcomes, stores

    settings = load_settings(db=db, log_db=log_db, seed=seed)
    conn = _open(stores.open_store, settings)
    try:
        data = _open(stores.open_data, settings)
    except click.ClickException:
        conn.close()
        raise
    try:
        got = outcomes.simulate(conn, data, share=share, seed=settings.seed)
    except outcomes.OutcomeError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        data.close()
        conn.close()
    click.echo(
        f"{got['written']} outcomes written for {got['received']} of {got['logged_clients']} logged clients "
        f"({got['without_label']} without a label)"
    )


@click.command("performance")
@click.option("--since", default=None, help="decisions from: ISO 8601 (UTC if naive) or a duration like 24h, 7d")
@click.option("--until", default=None, help="decisions before (exclusive), same formats")
@click.option("--last", type=click.IntRange(min=1), default=None, help="only the N most recent predictions")
@click.option("--period", type=click.Choice(["day", "week", "month", "all"]), default="day", show_default=True,
              help="calendar period of the per-period figures")  # fmt: skip
@click.option("--min-outcomes", type=click.IntRange(min=1), default=None,
              help="fewest outcomes for a figure [env CREDIT_MIN_OUTCOMES, 100]")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None, help="also write an HTML report")
@click.option("--fail-below-auc", type=click.FloatRange(0, 1), default=None,
              help="exit with status 1 when a model's realised AUC is below this")  # fmt: skip
@db_option
@log_db_option
@model_option
def performance_command(
    since, until, last, period, min_outcomes, as_json, html_path, fail_below_auc, db, log_db, model_dir
) -> None:
    """Realised performance: observed outcomes joined with the decision served at the time (the log row, not a
    re-score): realised AUC, calibration by score band, cost per client at the threshold, per model id and per
    period.

    Exit status: 0 ok; 1 a model's realised AUC is below --fail-below-auc; 2 no outcome joins a decision in the
    window, or --fail-below-auc is given and no model has enough outcomes to judge.
    """
    from app.config import load_settings
    from app.monitoring import performance, stores
    from app.monitoring.drift import DriftError, parse_time
    from app.monitoring.html import render

    settings = load_settings(db=db, log_db=log_db, model_dir=model_dir, min_outcomes=min_outcomes)
    try:
        t0, t1 = parse_time(since), parse_time(until)
    except DriftError as exc:
        raise click.BadParameter(str(exc)) from None
    fn_cost, fp_cost = _costs(settings)
    conn = _open(stores.open_store, settings)
    try:
        rep = performance.report(
            conn,
            fn_cost=fn_cost,
            fp_cost=fp_cost,
            since=t0,
            until=t1,
            last=last,
            period=period,
            min_outcomes=settings.min_outcomes,
            thresholds=model_thresholds(settings.model_path),
        )
    except performance.PerformanceError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        conn.close()
    if html_path:
        Path(html_path).write_text(render(rep), encoding="utf-8")
    click.echo(json.dumps(rep, indent=2) if as_json else summary_text(rep))
    if html_path and not as_json:
        click.echo(f"HTML report: {html_path}")
    if rep["matched"] == 0:
        click.echo("Error: no outcome joins a decision logged in the window", err=True)
        sys.exit(EXIT_EMPTY)
    if fail_below_auc is not None:
        judged = [m for m in rep["models"] if not m["too_few_outcomes"]]
        if not judged:
            click.echo("Error: no model has enough outcomes to judge its AUC", err=True)
            sys.exit(EXIT_EMPTY)
        below = [m["model_id"][:12] for m in judged if m["auc"] < fail_below_auc]
        if below:
            click.echo(f"realised AUC below {fail_below_auc}: {', '.join(below)}", err=True)
            sys.exit(EXIT_BELOW)


def summary_text(rep: dict) -> str:
    w = rep["window"]
    unscored = rep["never_scored"]
    example = f" (e.g. {', '.join(map(str, unscored['client_ids'][:5]))})" if unscored["count"] else ""
    lines = [
        f"window: {w['since'] or 'first decision'} .. {w['until'] or 'now'}"
        + ("" if w["last"] is None else f" (last {w['last']} predictions)"),
        f"outcomes: {rep['outcomes_total']} stored, {rep['matched']} joined with the decision served, "
        f"{rep['never_scored']['count']} never scored"
        + example
        + f", {rep['outside_window']} decided outside the window",
        f"{'model':<14} {'period':<12} {'outcomes':>8} {'defaults':>8} {'AUC':>7} {'cost/client':>11}"
        f" {'accept-all':>10}",
    ]

    def line(model: str, period: str, f: dict) -> str:
        head = f"{model:<14} {period:<12} {f['outcomes']:>8} {f['defaults']:>8}"
        if f["too_few_outcomes"]:
            return f"{head}  too few outcomes ({f['reason']})"
        return f"{head} {f['auc']:>7.4f} {f['cost_per_client']:>11.4f} {f['accept_all_cost_per_client']:>10.4f}"

    lines.append(line("(all)", "window", rep["overall"]))
    for m in rep["models"]:
        lines.append(line(m["model_id"][:12], "window", m))
        lines.extend(line("", p["period"], p) for p in m["periods"])
    lines.extend(challenger_text(c) for c in rep.get("challenger", []))
    lines.append(f"{rep['seconds']:.2f} s")
    return "\n".join(lines)


def model_thresholds(model_dir: Path) -> dict[str, float]:
    from app.scoring.challenger import thresholds

    return thresholds(model_dir) if model_dir.is_dir() else {}


def challenger_text(c: dict) -> str:
    """Champion vs challenger on the same clients (the shadow rows)."""
    d = c["score_distribution"]

    def fig(f: dict) -> str:
        if f["too_few_outcomes"]:
            return f"too few outcomes ({f['reason']})"
        return f"AUC {f['auc']:.4f}, cost/client {f['cost_per_client']:.4f}, approval {f['approval_rate']:.3f}"

    return (
        f"challenger {c['challenger_model_id'][:12]} vs champion {c['champion_model_id'][:12]} on the same clients: "
        f"{c['shadow_rows']} shadow scores (score PSI {d['psi']:.4f}), {c['matched']} with outcomes\n"
        f"  champion:   {fig(c['champion'])}\n  challenger: {fig(c['challenger'])}"
    )


def _costs(settings) -> tuple[float, float]:
    """The model's own costs (manifest) when there is a model folder, else the settings'."""
    path = settings.model_path / "manifest.json"
    if path.is_file():
        costs = json.loads(path.read_text()).get("costs") or {}
        return float(costs.get("fn", settings.fn_cost)), float(costs.get("fp", settings.fp_cost))
    return settings.fn_cost, settings.fp_cost


def _open(opener, settings):
    from app.monitoring.stores import StoreUnavailable

    try:
        return opener(settings)
    except StoreUnavailable as exc:
        raise click.ClickException(str(exc)) from None
