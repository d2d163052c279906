"""`credit train`, `credit compile` and `credit explain` (click only: parse, call, print).

The domain modules are imported inside each command: `credit explain` stays free of LightGBM and
scikit-learn, and `credit --help` imports none of them."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from app.cli.options import CLIENT_ID, command, db_option, log_db_option, model_option, say, with_settings
from app.config import Settings
from app.model.search import CELLS_PER_THREAD
from app.model.train import CANDIDATES  # light: train imports LightGBM and scikit-learn only when it runs


def _parse_monotone(values: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in values:
        name, sep, sign = item.rpartition("=")
        if not sep or sign not in ("+1", "1", "-1", "0"):
            raise click.BadParameter(f"{item!r}: expected NAME=+1, NAME=-1 or NAME=0", param_hint="--monotone")
        out[name] = int(sign)
    return out


@command("train")
@db_option
@model_option
@click.option("--fn-cost", type=float, default=None, help="cost of accepting a defaulter [env CREDIT_FN_COST, 10]")
@click.option("--fp-cost", type=float, default=None, help="cost of refusing a good client [env CREDIT_FP_COST, 1]")
@click.option("--seed", type=int, default=None, help="random seed [env CREDIT_SEED, 42]")
@click.option("--folds", type=click.IntRange(2, 20), default=5, show_default=True, help="outer cross-validation folds")
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=None,
    help=f"LightGBM threads at most (a fit takes 1 plus one per {CELLS_PER_THREAD:,} cells of its data) "
    "[default: every core]",
)
@click.option(
    "--trials", type=click.IntRange(1, 1000), default=None, help="search trials per search [default: by size]"
)
@click.option("--budget-seconds", type=click.FloatRange(min=0), default=None, help="stop starting trials after this")
@click.option(
    "--candidates",
    default=",".join(CANDIDATES),
    show_default=True,
    help="comma-separated candidates for the champion: lightgbm, scorecard, blend (of those two)",
)
@click.option("--monotone", multiple=True, help="monotone constraint NAME=+1|-1 (repeatable; LightGBM candidate)")
@click.option("--force", is_flag=True, help="write the model even if it does not beat the trivial policy")
@click.option(
    "--exclude-sensitive/--include-sensitive",
    default=None,
    help="keep the features derived from CREDIT_SENSITIVE out of the model [env CREDIT_EXCLUDE_SENSITIVE, exclude]",
)
@click.option("--quick", is_flag=True, help="few small trees (tests, smoke runs)")
@click.option(
    "--scheduler", default=None, help="train on this Dask scheduler (docs/distributed.md), e.g. tcp://host:8786"
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="train on a local Dask cluster of N processes"
)
@click.option(
    "--features",
    "features_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="with --scheduler/--workers: the `credit features` output to read",
)
@click.option("--sample-rows", type=click.IntRange(min=100), default=None, help="with Dask: search sample [50000]")
@click.option(
    "--held-out-share", type=click.FloatRange(0, 0.5, max_open=True), default=None, help="with Dask: held out [0.1]"
)
@with_settings("db", "model_dir", "fn_cost", "fp_cost", "seed")
def train_command(
    settings: Settings,
    folds: int,
    threads: int | None,
    trials: int | None,
    budget_seconds: float | None,
    candidates: str,
    monotone: tuple[str, ...],
    force: bool,
    exclude_sensitive: bool | None,
    quick: bool,
    scheduler: str | None,
    workers: int | None,
    features_dir: Path | None,
    sample_rows: int | None,
    held_out_share: float | None,
) -> None:
    """Nested cross-validation of a tuned LightGBM and a logistic scorecard; champion by honest cost, calibrated.

    With --scheduler or --workers: the same procedure on a stratified sample, the final fit on a Dask cluster
    and a held-out slice scored to confirm the figures (docs/distributed.md)."""
    from app.model import report
    from app.model.train import train
    from app.scoring.bundle import as_manifest

    s = settings
    dask = scheduler is not None or workers is not None
    if not dask and (features_dir or sample_rows or held_out_share is not None):
        raise click.UsageError("--features, --sample-rows and --held-out-share need --scheduler or --workers")
    if dask and features_dir is None:
        raise click.UsageError("--scheduler/--workers need --features DIR (the output of `credit features`)")
    fit = train
    if dask:
        from app.model.distributed import DEFAULT_HELD_OUT_SHARE, DEFAULT_SAMPLE_ROWS, train_on_dask

        fit = functools.partial(
            train_on_dask,
            features_dir,
            scheduler=scheduler,
            workers=workers or 2,
            sample_rows=sample_rows or DEFAULT_SAMPLE_ROWS,
            held_out_share=DEFAULT_HELD_OUT_SHARE if held_out_share is None else held_out_share,
        )
    try:
        m = fit(
            s.db_path,
            s.model_path,
            fn_cost=s.fn_cost,
            fp_cost=s.fp_cost,
            seed=s.seed,
            folds=folds,
            quick=quick,
            progress=say,
            num_threads=threads,
            trials=trials,
            budget_seconds=budget_seconds,
            candidates=tuple(c.strip() for c in candidates.split(",") if c.strip()),
            monotone=_parse_monotone(monotone),
            force=force,
            sensitive_attributes=s.sensitive,
            exclude_sensitive=s.exclude_sensitive if exclude_sensitive is None else exclude_sensitive,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    manifest = as_manifest(m)
    for row in report.table(manifest):
        click.echo(row)
    held = manifest.distributed.held_out if manifest.distributed is not None else None
    if held is not None:
        click.echo(
            f"held-out slice ({held.rows:,} clients neither the search nor any fit saw): AUC {held.auc:.4f}, "
            f"cost/client {held.cost_per_client:.4f} (nested on the sample: AUC {manifest.metrics.oof_auc:.4f}, "
            f"cost/client {manifest.metrics.cost_per_client:.4f})"
        )
    click.echo(f"report {s.model_path / 'report.html'}", file=sys.stdout)
    click.echo(f"model_id {manifest.model_id} -> {s.model_path}", file=sys.stdout)


@command("compile")
@model_option
@click.option("--cc", default=None, help="C compiler [env CC, default gcc]")
@click.option("--opt", default="-O3", show_default=True, help="optimisation flag (-O1, -O2, -O3)")
@click.option("--no-tl2cgen", is_flag=True, help="skip the reference tl2cgen C in build/tl2cgen/")
@click.option("--challenger", is_flag=True, help="install the compiled model as the challenger of the serving folder")
@click.option(
    "--into",
    type=click.Path(file_okay=False),
    default=None,
    help="serving folder for --challenger [env CREDIT_MODEL_DIR, default compiled/]",
)
@log_db_option
@with_settings("model_dir")
def compile_command(
    settings: Settings,
    cc: str | None,
    opt: str,
    no_tl2cgen: bool,
    challenger: bool,
    into: str | None,
    log_db: str | None,
) -> None:
    """Compile the model to a native library (parity-checked against LightGBM).

    With --challenger, the model trained in --model DIR is compiled into a new bundle of the serving folder
    (--into) and scored in shadow beside the champion; `credit promote` makes it the champion."""
    from app.model.compile import compile_model

    def compile_fn(folder: Path, shown_as: Path | None = None) -> dict:
        return compile_model(
            folder,
            progress=say,
            cc=cc,
            flags=(opt, "-fno-plt"),
            tl2cgen_reference=not no_tl2cgen,
            shown_as=shown_as,
        )

    if challenger:
        from app.cli.promote import install_challenger_into

        install_challenger_into(settings.model_path, into, log_db, compile_fn)
        return
    lib = compile_fn(settings.model_path)
    click.echo(
        f"{settings.model_path / lib['file']}: sha256 {lib['sha256'][:16]}..., parity max|diff| "
        f"{lib['parity_max_abs_diff']:.3g}, {lib['compile_seconds']:.1f} s"
    )


@command("explain")
@click.argument("client_id", type=CLIENT_ID)
@click.option(
    "--top", default=4, show_default=True, type=click.IntRange(0, 100), help="reasons and contributions shown"
)
@click.option("--lang", type=click.Choice(["fr", "en"]), default=None, help="language [default: CREDIT_LANG, fr]")
@click.option("--json", "as_json", is_flag=True, help="print the whole explanation as JSON")
@db_option
@model_option
@with_settings("db", "model_dir")
def explain_command(client_id: int, top: int, lang: str | None, as_json: bool, settings: Settings) -> None:
    """Explain one client's score: SHAP contributions and the main reasons for refusal."""
    from app.model.explain import Explainer, _check_feature_names, explain_client
    from app.scoring.db import connect

    lang = lang or settings.lang
    if not settings.db_path.exists():
        raise click.ClickException(f"{settings.db_path}: database not found (run `credit ingest` first)")
    explainer = Explainer.load(settings.model_path)
    conn = connect(settings.db_path, readonly=True)
    try:
        _check_feature_names(conn, explainer)
        out = explain_client(conn, explainer, client_id, top=top, lang=lang)
    finally:
        conn.close()
    if out is None:
        raise click.ClickException(f"client {client_id} not found in {settings.db_path}")
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    fr = lang == "fr"
    decision = out["decision"]
    word = {"accept": "accepté" if fr else "accept", "refuse": "refusé" if fr else "refuse"}[decision]
    click.echo(
        f"{'Client' if not fr else 'Client'} {client_id}: "
        f"{'probabilité de défaut' if fr else 'default probability'} {out['probability']:.3f} "
        f"({'seuil' if fr else 'threshold'} {out['threshold']:.3f}) -> {word}"
    )
    if out["reasons"]:
        click.echo("Principales raisons de risque :" if fr else "Main risk reasons:")
        for r in out["reasons"]:
            click.echo(f"  - {r['sentence']}")
    else:
        click.echo("Aucun facteur ne pousse vers le refus." if fr else "No feature pushes towards refusal.")
    n = min(top, len(out["contributions"]))
    if n:
        click.echo(
            f"Contributions au logit (positives : vers le refus), les {n} principales :"
            if fr
            else f"Contributions (log-odds; positive: towards refusal), top {n}:"
        )
    width = max((len(c["label"]) for c in out["contributions"][:n]), default=10)
    for c in out["contributions"][:n]:
        v = ("non renseigné" if fr else "missing") if c["value"] is None else f"{c['value']:.6g}"
        click.echo(f"  {c['label']:<{width}}  {c['shap']:+.4f}  ({c['feature']} = {v})")
    if fr:
        click.echo(f"  valeur de base : {out['base_value']:+.4f} ; marge : {out['margin']:+.4f}")
    else:
        click.echo(f"  base value: {out['base_value']:+.4f}; margin: {out['margin']:+.4f}")
