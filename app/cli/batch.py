"""`credit export` and `credit score-batch` (click only: parse, call, print); the work is app/scoring/batch.py."""

from __future__ import annotations

import time
from pathlib import Path

import click

from app.cli.options import allow_other_data_option, command, db_option, model_option, say, with_settings
from app.config import Settings
from app.scoring.batch import DEFAULT_ROWS_PER_PARTITION, export_features, run_batch


@command("export")
@db_option
@click.option("--out", "out", type=click.Path(file_okay=False), required=True, help="output folder")
@click.option(
    "--rows-per-partition",
    type=click.IntRange(min=1),
    default=DEFAULT_ROWS_PER_PARTITION,
    show_default=True,
    help="rows per Parquet file",
)
@with_settings("db")
def export_command(settings: Settings, out: str, rows_per_partition: int) -> None:
    """Export client_id + features as partitioned Parquet for `credit score-batch`."""
    t0 = time.perf_counter()
    manifest = export_features(settings.db_path, Path(out), rows_per_partition=rows_per_partition)
    click.echo(
        f"exported {manifest['rows']:,} rows x {manifest['n_features']} features into "
        f"{len(manifest['partitions'])} partitions in {out} ({time.perf_counter() - t0:.1f} s)"
    )


@command("score-batch")
@click.option("--input", "input_dir", type=click.Path(file_okay=False), required=True, help="`credit export` folder")
@click.option("--output", "output_dir", type=click.Path(file_okay=False), required=True, help="output folder")
@model_option
@click.option("--scheduler", default=None, help="address of a running Dask scheduler, e.g. tcp://host:8786")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="local worker processes")
@click.option(
    "--threads-per-worker", type=click.IntRange(min=1), default=1, show_default=True, help="threads per local worker"
)
@click.option("--retries", type=click.IntRange(min=0), default=2, show_default=True, help="retries per partition")
@click.option("--force", is_flag=True, help="rescore partitions whose output is already current")
@allow_other_data_option
@with_settings("model_dir", "allow_other_data")
def score_batch_command(
    input_dir: str,
    output_dir: str,
    settings: Settings,
    scheduler: str | None,
    workers: int,
    threads_per_worker: int,
    retries: int,
    force: bool,
) -> None:
    """Score Parquet partitions on a Dask cluster (a local one unless --scheduler)."""
    if scheduler and (workers != 2 or threads_per_worker != 1):
        click.echo("note: --workers/--threads-per-worker are ignored with --scheduler", err=True)
    result = run_batch(
        Path(input_dir),
        Path(output_dir),
        settings.model_path,
        scheduler=scheduler,
        workers=workers,
        threads_per_worker=threads_per_worker,
        retries=retries,
        force=force,
        allow_other_data=settings.allow_other_data,
        notify=say,
    )
    scored = [d for d in result.done if d["status"] == "scored"]
    skipped = [d for d in result.done if d["status"] == "skipped"]
    rate = sum(d["rows"] for d in scored) / result.seconds if result.seconds else 0.0
    click.echo(
        f"{len(scored)} partitions scored, {len(skipped)} already current (skipped), {len(result.failed)} failed; "
        f"{result.rows:,} rows in {result.seconds:.2f} s on {result.workers} workers ({rate:,.0f} rows/s scored; "
        f"cluster start-up and model shipping {result.startup_seconds:.1f} s)"
    )
    if result.failed:
        for name, err in result.failed:
            click.echo(f"FAILED {name}: {err}", err=True)
        raise click.ClickException(
            f"{len(result.failed)} partition(s) failed: {', '.join(n for n, _ in result.failed)}"
        )
