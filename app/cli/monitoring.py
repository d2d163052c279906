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
@click.option("--replace", is_flag=True,
              help="correct stored outcomes: the file's outcome replaces the stored one even when it is older "
                   "(each replacement is recorded in outcome_corrections)")  # fmt: skip
@db_option
@log_db_option
@with_settings("db", "log_db")
def import_command(file: str, replace: bool, settings: Settings) -> None:
    """Import FILE.csv with the header client_id,defaulted,observed_at. client_id: digits 0-9, no leading zero,
    1 to 2**53. observed_at: ISO 8601 date or date-time, UTC when naive; a date alone (2026-11-30 or 20261130)
    means the end of that day; from 1900-01-01 to at most one day ahead of now. The latest observation of a
    client wins, so importing the same file again changes nothing; a client given twice in the file counts once.
    Any bad line: every error is listed by line and column and nothing is imported (exit status 1). The file
    is streamed (memory does not grow with it) and written in short transactions, so a running API is not held
    up."""
    from app.monitoring import outcomes, stores

    conn = _open(stores.open_store, settings)
    try:
        got = outcomes.import_file(conn, Path(file), replace=replace)
        total = outcomes.counts(conn)
    finally:
        conn.close()
    click.echo(
        f"{got['written']} of {got['received']} outcomes written ({got['unchanged']} already stored, "
        f"{got['duplicates']} repeated in the file)"
        + (f"; {got['corrected']} stored outcomes corrected (recorded in outcome_corrections)" if replace else "")
        + f"; {total['outcomes']} outcomes stored, {total['defaults']} defaults"
    )
    if got["older"]:
        click.echo(
            f"warning: {got['older']} outcomes not written: the store holds a later observation of these clients "
            "(to correct them, run the import again with --replace)",
            err=True,
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
        rep["human_decisions"] = human_section(conn, fn_cost, fp_cost, t0, t1, period)
    finally:
        conn.close()
    if html_path:
        Path(html_path).write_text(render(rep), encoding="utf-8")
    click.echo(json.dumps(rep, indent=2) if as_json else summary_text(rep) + human_text(rep["human_decisions"]))
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


@command("fairness")
@click.option("--since", default=None, help="decisions from: ISO 8601 (UTC if naive) or a duration like 24h, 7d")
@click.option("--until", default=None, help="decisions before (exclusive), same formats")
@click.option("--last", type=click.IntRange(min=1), default=None, help="only the N most recent predictions")
@click.option("--attributes", default=None, help="sensitive attributes, comma-separated [env CREDIT_SENSITIVE]")
@click.option("--min-group", type=click.IntRange(min=1), default=30, show_default=True,
              help="smallest group given a ratio (smaller groups are listed, not compared)")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None, help="also write an HTML report")
@db_option
@log_db_option
@model_option
@with_settings("db", "log_db", "model_dir")
def fairness_command(since, until, last, attributes, min_group, as_json, html_path, settings: Settings) -> None:
    """Fairness of the live decisions (each known client's latest decision in the window, with its outcome where
    observed) per group of each sensitive attribute: approval rate, its ratio to the best-treated group (the
    four-fifths rule flags a ratio below 0.8), default rate among the accepted, TPR and FPR; and the same for an
    installed challenger's shadow decisions on the same clients.

    Exit status: 0 no group flagged; 1 a group flagged by the four-fifths rule (champion); 2 no decision about a
    known client in the window.
    """
    from app.monitoring import fairness, fairness_report
    from app.monitoring.drift import DriftError, parse_time

    try:
        t0, t1 = parse_time(since), parse_time(until)
    except DriftError as exc:
        raise click.BadParameter(str(exc)) from None
    attrs = fairness.parse_attributes(attributes or settings.sensitive)
    # no decision in the window: fairness.NoDecisions, `Error: ...` with exit status 2 (CreditCommand)
    rep = fairness_report.report(settings.log_db_path, settings.db_path, model_dir=settings.model_path,
                                 attributes=attrs, since=t0, until=t1, last=last, min_group=min_group)  # fmt: skip
    if html_path:
        Path(html_path).write_text(fairness_report.html(rep), encoding="utf-8")
    click.echo(json.dumps(rep, indent=2) if as_json else fairness_report.text(rep))
    if html_path and not as_json:
        click.echo(f"HTML report: {html_path}")
    if rep["flagged"]:
        sys.exit(EXIT_BELOW)


def human_section(conn, fn_cost: float, fp_cost: float, since, until, period: str) -> dict:
    """Human decisions (overrides, reviews) beside the model's where outcomes are known, and their rates by officer,
    score band and period (app/rights/monitoring.py)."""
    from app.rights.monitoring import performance_section, rates

    return performance_section(conn, fn_cost, fp_cost, since, until) | {"rates": rates(conn, period, since, until)}


def human_text(section: dict) -> str:
    from app.rights.monitoring import performance_text

    return "\n" + performance_text(section)


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


def _evidently_table(report: dict, limit: int) -> list[str]:
    from app.monitoring.drift import SCORE_COLUMN

    w = report["window"]
    lines = [
        f"Evidently DataDriftPreset: {w['rows']:,} rows (compared {w['rows_compared']:,}), "
        f"{report['columns_compared']} columns",
        f"{'feature':<40} {'test':<32} {'score':>8} {'thr':>6}  drifted  counted",
    ]
    rows = report["features"][:limit] + ([report["score"]] if report.get("score") else [])
    for f in rows:
        sc = "-" if f["score"] is None else f"{f['score']:.4f}"
        counted = "score" if f["column"] == SCORE_COLUMN else ("yes" if f.get("counted", True) else "extra")
        lines.append(
            f"{f['column']:<40} {str(f['test'])[:32]:<32} {sc:>8} {f['threshold'] or 0:>6.3g}  "
            f"{'YES' if f['drifted'] else 'no':<7}  {counted}"
        )
    lines.append(
        f"drifted among the most important features: {report['n_drifted']}/{report['n_features']} "
        f"(share {report['share_drifted']:.2f}, limit {report['drift_share']}) -> "
        f"{'DATASET DRIFT' if report['dataset_drift'] else 'no dataset drift'}; "
        f"score {'drifted' if report['score_drifted'] else 'stable'}; {report['seconds']:.2f} s"
    )
    if report.get("n_extra"):
        lines.append(
            f"not counted: {report['n_extra_drifted']}/{report['n_extra']} extra features the PSI flagged "
            "(rows marked 'extra'), and the score"
        )
    if report.get("html"):
        lines.append(f"HTML report: {report['html']}")
    return lines


def drift_text(report: dict, limit: int) -> str:
    """The drift report as text: window, reference, verdict and why, the three signals, the PSI table."""
    v = report["verdict"]
    lines = [f"window: {report['window']['text']}", f"reference: {report['reference']['text']}"]
    if v["level"] == "no verdict":
        return "\n".join([v["reasons"][0], *lines])
    lines.append(f"verdict: {v['level'].upper()}")
    lines.extend(f"  - {r}" for r in v["reasons"])
    f, sc, d = v["features"], v["score"], v["decisions"]
    lines.append(f"features: top features' PSI, importance-weighted PSI {f['weighted_psi']:.3f} -> {f['level']}")
    lines.append(f"score:    PSI {sc['psi']:.3f} -> {sc['level']}" if sc["psi"] is not None else "score:    no bins")
    if d:
        p = "p < 0.001" if d["p_value"] < 0.001 else f"p = {d['p_value']:.3f}"
        lines.append(
            f"refusals: {d['window_refusal_rate']:.1%} of {d['window_requests']:,} against "
            f"{d['reference_refusal_rate']:.1%} of {d['reference_rows']:,} at training (z = {d['z']:.2f}, {p}) "
            f"-> {d['level']}"
        )
    lines.append(f"{'top feature (by importance)':<40} {'rank':>4} {'share':>6} {'PSI':>8}  level")
    lines.extend(
        f"{t['feature']:<40} {t['rank']:>4} {t['importance_share']:>6.1%} {t['psi']:>8.4f}  {t['level']}"
        for t in f["top"][:limit]
    )
    lines.append(f"{'feature (highest PSI first)':<40} {'PSI':>8}  above {report['psi_threshold']}")
    lines.extend(
        f"{x['feature']:<40} {x['psi']:>8.4f}  {'yes' if x['drifted'] else 'no'}" for x in report["features"][:limit]
    )
    if len(report["features"]) > limit:
        lines.append(f"... {len(report['features']) - limit} more features (use --json --details for all)")
    b = v["bands"]
    lines.append(
        f"bands: PSI < {b['psi_watch']} stable, {b['psi_watch']}-{b['psi_act']} watch, > {b['psi_act']} act "
        f"(a feature outside the top: act above {b['psi_severe']:g}); refusal rate: two-proportion z-test, "
        f"|z| > {b['z_watch']} watch, > {b['z_act']} act ({v['sources']})"
    )
    if report.get("evidently"):
        lines += ["", *_evidently_table(report["evidently"], limit)]
    lines.append(f"{report['seconds']:.2f} s")
    return "\n".join(lines)


def drift_json(report: dict, limit: int, details: bool) -> dict:
    from app.monitoring.drift import json_summary

    v = report["verdict"]
    out = {"verdict": v["level"], "reasons": v["reasons"], "window": report["window"], "reference": report["reference"]}
    if v["level"] == "no verdict":  # the fields of earlier versions
        return out | {"reason": v["reasons"][0], "rows": report["window"]["rows"], "min_rows": v["min_rows"]}
    psi = {k: x for k, x in report.items() if k not in ("verdict", "evidently", "reference", "empty")}
    ev = report.get("evidently")
    if not details:  # a summary: the first top features (all with --details), the --top rows of each table
        psi, ev = json_summary(psi, limit), (json_summary(ev, limit) if ev else None)
        v = v | {"features": v["features"] | {"top": v["features"]["top"][: min(limit, 5)]}}
    return out | {"signals": v, "psi": psi, "evidently": ev}


@command("drift")
@click.option("--since", default=None, help="window start: ISO 8601 (UTC if naive) or a duration like 24h, 7d")
@click.option("--until", default=None, help="window end (exclusive), same formats")
@click.option("--last", type=click.IntRange(min=1), default=None,
              help="only the N most recent predictions [default: the last 1,000 when no bound is given]")  # fmt: skip
@click.option("--evidently", is_flag=True, help="also run Evidently's DataDriftPreset (slow: seconds per column)")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="write Evidently's HTML report here (implies --evidently)")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="print a JSON summary (the --top features of each report)")
@click.option("--details", is_flag=True, help="with --json: every feature of each report")
@click.option("--min-rows", type=click.IntRange(min=1), default=None,
              help="fewest scored rows for a verdict [env CREDIT_DRIFT_MIN_ROWS, default 200]")  # fmt: skip
@click.option("--fail-on-drift", is_flag=True, help='exit with status 1 when the verdict is "act"')
@click.option("--psi-only", is_flag=True, hidden=True, help="the default now (kept for scripts)")
@click.option("--top", "limit", type=click.IntRange(min=1), default=25, show_default=True, help="rows per table")
@click.option("--columns", "max_columns", type=click.IntRange(min=1), default=20, show_default=True,
              help="Evidently: compare the N most important features (+ up to 5 PSI-flagged ones)")  # fmt: skip
@click.option("--rows", "max_rows", type=click.IntRange(min=100), default=10_000, show_default=True,
              help="Evidently: subsample the window to at most N rows")  # fmt: skip
@db_option
@log_db_option
@model_option
@with_settings("db", "log_db", "model_dir", min_rows="drift_min_rows")
def drift_command(since, until, last, evidently, html_path, as_json, details, fail_on_drift, psi_only, limit,
                  max_columns, max_rows, settings: Settings) -> None:  # fmt: skip
    """Drift of a window of the prediction log against the model's training reference: a verdict (stable,
    watch, act) from the model's most important features, the score's PSI and the refusal rate.

    \b
    Exit status: 0 stable or watch (or act without --fail-on-drift); 1 act with --fail-on-drift;
    2 no drift reference or unreadable log; 3 no verdict: fewer scored rows in the window than
    --min-rows (a window right after the demo has one or two).
    """
    from app import store
    from app.monitoring.drift import EXIT_DRIFT, EXIT_NO_VERDICT
    from app.monitoring.drift_check import NO_VERDICT, check
    from app.monitoring.verdict import Reference

    if psi_only and (html_path or evidently):
        raise click.UsageError("--html and --evidently need the Evidently report: drop --psi-only")
    reference = Reference.load(settings.model_path)
    conn = store.open_store(settings.log_db_path)  # an earlier version's data file may still hold a log
    store.import_legacy(conn, settings.db_path)
    try:
        report = check(conn, reference, since=since, until=until, last=last, min_rows=settings.drift_min_rows,
                       psi_threshold=settings.psi_threshold, drift_share=settings.drift_share,
                       model_dir=settings.model_path, evidently=evidently or bool(html_path), html_path=html_path,
                       max_columns=max_columns, max_rows=max_rows)  # fmt: skip
    finally:
        conn.close()
    click.echo(json.dumps(drift_json(report, limit, details), indent=2) if as_json else drift_text(report, limit))
    level = report["verdict"]["level"]
    if level == NO_VERDICT:
        sys.exit(EXIT_NO_VERDICT)
    if fail_on_drift and level == "act":
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
@click.option("--by-id/--applicants", "by_id", default=None,
              help="score stored clients by id (GET /clients/{id}/score; the default without --drift) or send "
              "their vectors as applicants (POST /score; always with --drift)")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@db_option
@with_settings("db", api="api_url")
def traffic_command(n, drift, key, concurrency, seed, by_id, as_json, settings: Settings) -> None:
    """Replay N scoring requests for random stored clients against the API: by id (the log knows the client,
    so `credit outcomes simulate`, `credit performance` and `credit fairness` follow), or with --drift as
    applicants whose vectors the drift changed.

    The clients are drawn from a LOCAL client database (--db, env CREDIT_DB, default
    data/credit.db), not fetched through the API: run it where that file is, e.g. next to the
    API, or with a copy of it.
    """
    from app.monitoring.traffic import run_traffic

    key = key or default_key(settings)
    out = run_traffic(settings.db_path, settings.api_url, n=n, drift=drift, key=key, concurrency=concurrency,
                      seed=seed, by_id=by_id)  # fmt: skip
    if as_json:
        click.echo(json.dumps(out, indent=2))
    else:
        if drift:
            click.echo(f"drift {drift}: " + ", ".join(f"{k} {v}" for k, v in out["drifted_features"].items()))
        lat = out["latency_ms"]
        click.echo(
            f"sent {out['sent']} ({out['mode']}) to {out['api']} in {out['seconds']:.2f} s ({out['per_second']:.0f}/s, "
            f"concurrency {concurrency}): ok {out['ok']}, status {out['status']}, decisions {out['decisions']}"
        )
        if lat:
            click.echo("latency ms: " + ", ".join(f"{k} {v:.2f}" for k, v in lat.items()))
        if out["errors"]:
            click.echo(f"errors: {out['errors']}", err=True)
    if out["ok"] == 0:
        raise click.ClickException("no request succeeded (is the API running? is the key right?)")
