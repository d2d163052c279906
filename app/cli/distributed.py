"""`credit partition` and `credit features` (click only: parse, call, print); the work is app/data/distributed.py."""

from __future__ import annotations

from pathlib import Path

import click

from app.cli.data import echo_warnings
from app.cli.options import CreditGroup, command, db_option, log_db_option, say, with_settings
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


@click.group("logs", cls=CreditGroup)
def logs_command() -> None:
    """Several API replicas judged together: export each replica's log to Parquet, merge them into one store."""


@logs_command.command("export")
@click.option("--replica", required=True, help="this replica's name (a folder under --out), e.g. api-1")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True, help="log folder")
@click.option("--since-id", type=click.IntRange(min=0), default=None, help="re-export log rows after this id")
@db_option
@log_db_option
@with_settings("db", "log_db")
def logs_export_command(replica: str, out: Path, since_id: int | None, settings: Settings) -> None:
    """Append this replica's log rows written since its last export to OUT/REPLICA/ (Parquet; safe to re-run)."""
    from app.monitoring.replicas import export_replica_log

    summary = export_replica_log(settings.log_db_path, out, replica, since_id=since_id)
    click.echo(
        f"{replica}: {summary['log_rows']:,} log rows and {summary['vectors']:,} vectors exported "
        f"to {out / replica} ({len(summary['files'])} files)"
    )


@logs_command.command("merge")
@click.option("--logs", "logs", type=click.Path(file_okay=False, path_type=Path), required=True, help="log folder")
@scheduler_option
@workers_option
@click.option("--progress/--no-progress", default=True, help="progress bar on stderr")
@db_option
@log_db_option
@with_settings("db", "log_db")
def logs_merge_command(logs: Path, scheduler: str | None, workers: int, progress: bool, settings: Settings) -> None:
    """Merge every replica's exported log into the store --log-db (one Dask task per replica; idempotent).

    Then `credit drift`, `credit performance` and fairness with the same --log-db judge all replicas together."""
    from app.monitoring.replicas import merge_replica_logs

    summary = merge_replica_logs(
        logs, settings.log_db_path, scheduler=scheduler, workers=workers, progress=progress, notify=say
    )
    for replica, counts in summary["added"].items():
        click.echo(f"  {replica}: +{counts['log']:,} log rows, +{counts['vectors']:,} vectors")
    click.echo(f"{settings.log_db_path}: {summary['rows']:,} log rows from {len(summary['replicas'])} replicas")
