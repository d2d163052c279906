"""`credit partition` and `credit features` (click only: parse, call, print); the work is app/data/distributed.py."""

from __future__ import annotations

from pathlib import Path

import click

from app.cli.data import echo_warnings
from app.cli.options import command, db_option, log_db_option, say, with_settings
from app.config import Settings
from app.data.distributed import DEFAULT_CLIENTS_PER_PARTITION, build_features_on_dask, partition_sources

scheduler_option = click.option(
    "--scheduler", default=None, help="address of a running Dask scheduler, e.g. tcp://host:8786"
)
workers_option = click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="local worker processes (no --scheduler)",
)


@command("partition")
@click.argument("data_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True, help="output folder")
@click.option(
    "--clients-per-partition",
    type=click.IntRange(min=1),
    default=DEFAULT_CLIENTS_PER_PARTITION,
    show_default=True,
    help="clients per partition (one Dask task each)",
)
@click.option("--progress/--no-progress", default=True, help="progress bar on stderr")
def partition_command(data_dir: Path, out: Path, clients_per_partition: int, progress: bool) -> None:
    """Split the eight Home Credit CSVs of DATA_DIR into Parquet partitions by client, for `credit features`."""
    with echo_warnings():
        manifest = partition_sources(data_dir, out, clients_per_partition=clients_per_partition, progress=progress)
    click.echo(f"{out}: {manifest['clients']:,} clients in {len(manifest['partitions'])} partitions")


@command("features")
@click.option(
    "--sources", type=click.Path(file_okay=False, path_type=Path), required=True, help="`credit partition` folder"
)
@click.option(
    "--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
    help="feature export folder (the input of `credit score-batch`)",
)  # fmt: skip
@scheduler_option
@workers_option
@click.option("--progress/--no-progress", default=True, help="progress bar on stderr")
@db_option
@log_db_option
@with_settings("db", "log_db")
def features_command(
    sources: Path, out: Path, scheduler: str | None, workers: int, progress: bool, settings: Settings
) -> None:
    """Build the features on a Dask cluster (one task per partition) into Parquet and the SQLite serving file."""
    summary = build_features_on_dask(
        sources,
        out,
        settings.db_path,
        scheduler=scheduler,
        workers=workers,
        log_db=settings.log_db_path,
        progress=progress,
        notify=say,
    )
    click.echo(
        f"{settings.db_path} and {out}: {summary['rows']:,} clients x {summary['n_features']} features from "
        f"{summary['partitions']} partitions in {summary['seconds']:.1f} s on {summary['workers']} workers "
        f"({summary['cpu_seconds']:.1f} s CPU in tasks, worker peak RSS {summary['worker_peak_rss_mb']:.0f} MB)"
    )
