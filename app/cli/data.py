"""`credit generate`, `credit ingest` and `credit ingest-csv` (click only: parse, call, print)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import click

from app.cli.options import command, db_option, log_db_option, say, with_settings
from app.config import Settings
from app.data.ingest import IngestWarning, ingest
from app.data.ingest_csv import ingest_csv
from app.data.synthetic import generate
from app.scoring.db import connect


@command("generate")
@click.option("--clients", type=click.IntRange(min=1), default=None, help="clients [env CREDIT_CLIENTS, default 20000]")
@click.option("--out", "out", type=click.Path(file_okay=False), default=None, help="folder [env CREDIT_DATA_DIR]")
@click.option("--seed", type=int, default=None, help="random seed [env CREDIT_SEED, default 42]")
@click.option("--test-share", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.15, show_default=True,
              help="share of clients written to application_test.csv")  # fmt: skip
@click.option("--progress/--no-progress", default=True, help="progress bar on stderr")
@with_settings("clients", "seed", out="data_dir")
def generate_command(settings: Settings, test_share: float, progress: bool) -> None:
    """Write synthetic Home Credit CSV files (Kaggle layout) into a folder."""
    out_dir = Path(settings.data_dir)
    rows = generate(out_dir, settings.clients, settings.seed, test_share=test_share, progress=progress)
    click.echo(f"wrote {settings.clients} clients (seed {settings.seed}) to {out_dir}")
    width = max(len(name) for name in rows)
    for name, count in rows.items():
        click.echo(f"  {name:<{width}}  {count:>12,}")
    click.echo(f"  {'total':<{width}}  {sum(rows.values()):>12,}")


@command("ingest")
@click.argument("data_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--progress/--no-progress", default=True, help="show a progress bar per file (stderr)")
@db_option
@log_db_option
@with_settings("db", "log_db")
def ingest_command(data_dir: Path | None, progress: bool, settings: Settings) -> None:
    """Import the eight Home Credit CSVs from DATA_DIR (default: settings data_dir) and build features.

    Safe while the API runs: the new database replaces the old file atomically and the API switches to it."""
    data_dir = data_dir or Path(settings.data_dir)
    with echo_warnings():
        ingest(data_dir, settings.db_path, progress=progress, log_db=settings.log_db_path, notify=say)
    conn = connect(settings.db_path, readonly=True)
    try:
        n, p = conn.execute("SELECT (SELECT count(*) FROM features), (SELECT count(*) FROM feature_names)").fetchone()
    finally:
        conn.close()
    click.echo(f"{settings.db_path}: {n} clients, {p} features", err=True)


@command("ingest-csv")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--id", "id_col", default=None, help="column holding a unique integer client id (default: row number)")
@click.option("--target", "target_col", required=True, help="binary target column (empty = unlabelled)")
@click.option("--positive", default=None, help="target label meaning default (target = 1), e.g. --positive yes")
@click.option(
    "--max-levels",
    default=10,
    show_default=True,
    type=click.IntRange(1, 100),
    help="one-hot columns per text column (most frequent levels)",
)
@click.option("--progress/--no-progress", default=True, help="progress bar on stderr")
@db_option
@log_db_option
@with_settings("db", "log_db")
def ingest_csv_command(
    file: Path,
    id_col: str | None,
    target_col: str,
    positive: str | None,
    max_levels: int,
    progress: bool,
    settings: Settings,
) -> None:
    """Import one credit CSV FILE (numeric and text columns, a binary target) as clients and features."""
    with echo_warnings():
        summary = ingest_csv(
            file,
            settings.db_path,
            id_col=id_col,
            target_col=target_col,
            positive=positive,
            max_levels=max_levels,
            progress=progress,
            log_db=settings.log_db_path,
            notify=say,
        )
    click.echo(
        f"{settings.db_path}: {summary['rows']} clients ({summary['labelled']} labelled, {summary['positive']}), "
        f"{summary['features']} features",
        err=True,
    )


@contextlib.contextmanager
def echo_warnings() -> Iterator[None]:
    """Echo the block's warnings to stderr when it ends, even on error (every IngestWarning, repeats included)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", IngestWarning)
        try:
            yield
        finally:
            for w in caught:
                click.echo(f"warning: {w.message}", err=True)
