"""Click options shared by every `credit` command that touches data."""

from __future__ import annotations

import click

db_option = click.option(
    "--db",
    "db",
    type=click.Path(dir_okay=False),
    default=None,
    help="SQLite database [env CREDIT_DB, default data/credit.db]",
)
model_option = click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="model folder [env CREDIT_MODEL_DIR, default compiled/]",
)
log_db_option = click.option(
    "--log-db",
    "log_db",
    type=click.Path(dir_okay=False),
    default=None,
    help="operational store: prediction log and history [env CREDIT_LOG_DB, default beside the database: <db>-log.db]",
)
