"""`credit outcomes import|simulate` and `credit performance` (click only: parse, call, print)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from app.cli.options import CreditGroup, command, db_option, log_db_option, model_option, with_settings
from app.config import Settings
from app.monitoring.traffic import DRIFTS

EXIT_OK, EXIT_BELOW, EXIT_EMPTY = 0, 1, 2


@click.group("outcomes", cls=CreditGroup)
def outcomes_command() -> None:
    """Observed outcomes (did the client default, and when): import them, or simulate them for a demo."""


@outcomes_command.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@db_option
@log_db_option
@with_settings("db", "log_db")
def import_command(file: str, settings: Settings) -> None:
    """Import FILE.csv with the header client_id,defaulted,observed_at (observed_at: ISO 8601 date or date-time,
    UTC when naive; a date alone means the end of that day). The latest observation of a client wins, so
    importing the same file again changes nothing. Any bad line: every error is listed by line and column
    and nothing is imported (exit status 1)."""
    from app.monitoring import outcomes, stores

    conn = _open(stores.open_store, settings)
    try:
        got = outcomes.import_file(conn, Path(file))
        total = outcomes.counts(conn)
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
@with_settings("seed", "db", "log_db")
def simulate_command(share: float, settings: Settings) -> None:
    """Outcomes for the clients in the prediction log, drawn from the data's own labels (the TARGET of the
    generated or imported training data), observed now. For demonstrations: the whole loop without real
    outcomes. Clients without a label (test split) get none. The model was trained on these very labels, so
    the realised figures of simulated outcomes are in-sample (optimistic)."""
    from app.monitoring import outcomes, stores

    conn = _open(stores.open_store, settings)
    try:
        data = _open(stores.open_data, settings)
    except click.ClickException:
        conn.close()
        raise
    try:
        got = outcomes.simulate(conn, data, share=share, seed=settings.seed)
    finally:
        data.close()
        conn.close()
    click.echo(
        f"{got['written']} outcomes written for {got['received']} of {got['logged_clients']} logged clients "
        f"({got['without_label']} without a label)"
    )


@command("performance")
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
@with_settings("min_outcomes", "db", "log_db", "model_dir")
def performance_command(since, until, last, period, as_json, html_path, fail_below_auc, settings: Settings) -> None:
    """Realised performance: observed outcomes joined with the decision served at the time (the log row, not a
    re-score): realised AUC, calibration by score band, cost per client at the threshold, per model id and per
    period.

    Exit status: 0 ok; 1 a model's realised AUC is below --fail-below-auc; 2 no outcome joins a decision in the
    window, or --fail-below-auc is given and no model has enough outcomes to judge.
    """
    from app.monitoring import performance, stores
    from app.monitoring.drift import DriftError, parse_time
    from app.monitoring.html import render

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


def _costs(settings: Settings) -> tuple[float, float]:
    """The model's own costs (manifest) when there is a model folder, else the settings'."""
    from app.scoring.bundle import MANIFEST, read_manifest

    if (settings.model_path / MANIFEST).is_file():
        costs = read_manifest(settings.model_path)[0].costs or {}
        return float(costs.get("fn", settings.fn_cost)), float(costs.get("fp", settings.fp_cost))
    return settings.fn_cost, settings.fp_cost


def _open(opener, settings):
    from app.monitoring.stores import StoreUnavailable

    try:
        return opener(settings)
    except StoreUnavailable as exc:
        raise click.ClickException(str(exc)) from None


def _print_table(report: dict, limit: int) -> None:
    from app.monitoring.drift import SCORE_COLUMN

    w = report["window"]
    click.echo(
        f"window: {w.get('first_ts')} .. {w.get('last_ts')}  rows={w['rows']}"
        + (f" (compared {w['rows_compared']})" if "rows_compared" in w else "")
    )
    if report["method"] == "psi":
        click.echo(f"{'feature':<40} {'PSI':>8}  drifted")
        for f in report["features"][:limit]:
            click.echo(f"{f['feature']:<40} {f['psi']:>8.4f}  {'YES' if f['drifted'] else 'no'}")
        if report["score_psi"] is not None:
            click.echo(f"{'(score)':<40} {report['score_psi']:>8.4f}  {'YES' if report['score_drifted'] else 'no'}")
    else:
        click.echo(f"{'feature':<40} {'test':<32} {'score':>8} {'thr':>6}  drifted  counted")
        rows = report["features"][:limit] + ([report["score"]] if report.get("score") else [])
        for f in rows:
            sc = "-" if f["score"] is None else f"{f['score']:.4f}"
            counted = "score" if f["column"] == SCORE_COLUMN else ("yes" if f.get("counted", True) else "extra")
            click.echo(
                f"{f['column']:<40} {str(f['test'])[:32]:<32} {sc:>8} {f['threshold'] or 0:>6.3g}  "
                f"{'YES' if f['drifted'] else 'no':<7}  {counted}"
            )
    shown = len(report["features"][:limit])
    more = len(report["features"]) - shown
    if more > 0:
        click.echo(f"... {more} more features (use --json --details for all)")
    what = "drifted features" if report["method"] == "psi" else "drifted among the most important features"
    line = (
        f"{what}: {report['n_drifted']}/{report['n_features']} "
        f"(share {report['share_drifted']:.2f}, limit {report['drift_share']}) -> "
        f"{'DATASET DRIFT' if report['dataset_drift'] else 'no dataset drift'}; "
        f"score {'drifted' if report['score_drifted'] else 'stable'}; {report['seconds']:.2f} s"
    )
    click.echo(line)
    if report.get("n_extra"):
        click.echo(
            f"not counted: {report['n_extra_drifted']}/{report['n_extra']} extra features the PSI flagged "
            "(rows marked 'extra'), and the score"
        )
    if report.get("html"):
        click.echo(f"HTML report: {report['html']}")


@command("drift")
@click.option("--since", default=None, help="window start: ISO 8601 (UTC if naive) or a duration like 24h, 7d")
@click.option("--until", default=None, help="window end (exclusive), same formats")
@click.option("--last", type=click.IntRange(min=1), default=None, help="only the N most recent predictions")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None, help="write Evidently HTML here")
@click.option("--json", "as_json", is_flag=True, help="print a JSON summary (the --top features of each report)")
@click.option("--details", is_flag=True, help="with --json: every feature of each report")
@click.option(
    "--min-rows",
    type=click.IntRange(min=1),
    default=None,
    help="fewest scored rows for a verdict [env CREDIT_DRIFT_MIN_ROWS, default 200]",
)
@click.option("--fail-on-drift", is_flag=True, help="exit with status 1 when the data set has drifted")
@click.option("--psi-only", is_flag=True, help="only the fast PSI report (no Evidently)")
@click.option("--top", "limit", type=int, default=25, show_default=True, help="rows shown in the table")
@click.option(
    "--columns",
    "max_columns",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Evidently: compare the N most important features (+ up to 5 PSI-flagged ones)",
)
@click.option(
    "--rows",
    "max_rows",
    type=click.IntRange(min=100),
    default=10_000,
    show_default=True,
    help="Evidently: subsample the window to at most N rows",
)
@db_option
@log_db_option
@model_option
@with_settings("db", "log_db", "model_dir", min_rows="drift_min_rows")
def drift_command(
    since,
    until,
    last,
    html_path,
    as_json,
    details,
    fail_on_drift,
    psi_only,
    limit,
    max_columns,
    max_rows,
    settings: Settings,
) -> None:
    """Drift of the logged predictions against the training reference (PSI, then Evidently).

    \b
    Exit status: 0 no drift (or drift without --fail-on-drift); 1 drift with --fail-on-drift;
    2 no drift reference or unreadable log; 3 no verdict: fewer scored rows in the window than
    --min-rows (a window right after the demo has one or two).
    """
    from app import store
    from app.monitoring.drift import (
        EXIT_DRIFT,
        EXIT_ERROR,
        EXIT_NO_VERDICT,
        DriftError,
        _manifest,
        evidently_report,
        json_summary,
        psi_report,
        too_few_rows,
    )

    if html_path and psi_only:
        raise click.UsageError("--html needs the Evidently report: drop --psi-only")
    manifest = _manifest(settings.model_path)
    # the log lives in the operational store; a data database of an earlier version may still hold one
    conn = store.open_store(settings.log_db_path)
    store.import_legacy(conn, settings.db_path)
    try:
        try:
            report = psi_report(
                conn,
                manifest,
                since=since,
                until=until,
                last=last,
                psi_threshold=settings.psi_threshold,
                drift_share=settings.drift_share,
            )
        except DriftError as e:
            if "no predictions logged" not in str(e):
                click.echo(f"Error: {e}", err=True)
                sys.exit(EXIT_ERROR)
            report = None
        rows = report["window"]["rows"] if report else 0
        message = too_few_rows(rows, settings.drift_min_rows)
        if message:
            if as_json:
                out = {"verdict": "no verdict", "reason": message, "rows": rows, "min_rows": settings.drift_min_rows}
                click.echo(json.dumps(out, indent=2))
            else:
                click.echo(message)
            sys.exit(EXIT_NO_VERDICT)
        try:
            ev = None
            if not psi_only:
                ev = evidently_report(
                    conn,
                    settings.model_path,
                    since=since,
                    until=until,
                    last=last,
                    html_path=html_path,
                    drift_share=settings.drift_share,
                    psi_threshold=settings.psi_threshold,
                    max_columns=max_columns,
                    max_current_rows=max_rows,
                )
        except DriftError as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(EXIT_ERROR)
    finally:
        conn.close()
    drifted = report["dataset_drift"] or bool(ev and ev["dataset_drift"])
    if as_json:
        if not details:
            report, ev = json_summary(report, limit), (json_summary(ev, limit) if ev else None)
        verdict = "drift" if drifted else "no drift"
        out = {"verdict": verdict, "dataset_drift": drifted, "psi": report, "evidently": ev}
        click.echo(json.dumps(out, indent=2, default=str))
    else:
        _print_table(report, limit)
        if ev is not None:
            click.echo("")
            click.echo("Evidently DataDriftPreset:")
            _print_table(ev, limit)
    if fail_on_drift and drifted:
        sys.exit(EXIT_DRIFT)


def default_key(settings: Settings) -> str | None:
    """The key `credit traffic` sends: CREDIT_UI_KEY, else the first admin key of CREDIT_API_KEYS / the keys file,
    else the first key (the API's key ring, read here so that app.monitoring needs nothing of the service)."""
    from app.monitoring.traffic import TrafficError
    from app.service.auth import KeyConfigError, KeyRing

    try:
        return KeyRing.from_settings(settings).client_key(settings.ui_key, "admin")
    except KeyConfigError as e:
        raise TrafficError(str(e)) from None


@command("traffic")
@click.option("--n", "n", type=click.IntRange(min=1), default=1000, show_default=True, help="requests to send")
@click.option("--drift", type=click.Choice(DRIFTS), default=None, help="simulated drift applied to what is sent")
@click.option("--api", default=None, help="API base URL [env CREDIT_API_URL, default http://127.0.0.1:8000]")
@click.option("--key", default=None, help="API key [env CREDIT_UI_KEY, else the first admin key]")
@click.option("--concurrency", type=click.IntRange(min=1, max=512), default=8, show_default=True)
@click.option("--seed", type=int, default=None, help="random seed for the choice of clients")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@db_option
@with_settings("db", api="api_url")
def traffic_command(n, drift, key, concurrency, seed, as_json, settings: Settings) -> None:
    """Replay N scoring requests (random clients' features, as applicants) against the API.

    The applicants are drawn from a LOCAL client database (--db, env CREDIT_DB, default
    data/credit.db), not fetched through the API: run it where that file is, e.g. next to the
    API, or with a copy of it.
    """
    from app.monitoring.traffic import run_traffic

    key = key or default_key(settings)
    out = run_traffic(settings.db_path, settings.api_url, n=n, drift=drift, key=key, concurrency=concurrency, seed=seed)
    if as_json:
        click.echo(json.dumps(out, indent=2))
    else:
        if drift:
            click.echo(f"drift {drift}: " + ", ".join(f"{k} {v}" for k, v in out["drifted_features"].items()))
        lat = out["latency_ms"]
        click.echo(
            f"sent {out['sent']} to {out['api']}/score in {out['seconds']:.2f} s ({out['per_second']:.0f}/s, "
            f"concurrency {concurrency}): ok {out['ok']}, status {out['status']}, decisions {out['decisions']}"
        )
        if lat:
            click.echo("latency ms: " + ", ".join(f"{k} {v:.2f}" for k, v in lat.items()))
        if out["errors"]:
            click.echo(f"errors: {out['errors']}", err=True)
    if out["ok"] == 0:
        raise click.ClickException("no request succeeded (is the API running? is the key right?)")
