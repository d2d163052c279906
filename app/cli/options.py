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

allow_other_data_option = click.option(
    "--allow-other-data",
    is_flag=True,
    help="score a database whose feature schema is not the model's (printed as a warning) "
    "[env CREDIT_ALLOW_OTHER_DATA]",
)
log_db_option = click.option(
    "--log-db",
    "log_db",
    type=click.Path(dir_okay=False),
    default=None,
    help="operational store: prediction log and history [env CREDIT_LOG_DB, default beside the database: <db>-log.db]",
)
MAX_CLIENT_ID = 2**53  # the largest id a JSON client reads exactly (the API's limit too)


class ClientId(click.ParamType):
    """A client id: a whole number from 1 to 2**53 (SK_ID_CURR in the Kaggle files, e.g. 100002)."""

    name = "CLIENT_ID"

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            text = str(value).strip()
            number = int(text) if text.isascii() and text.isdigit() else None
        if number is None or not 1 <= number <= MAX_CLIENT_ID:
            self.fail(
                f"{value!r} is not a client id: a client id is a whole number from 1 to {MAX_CLIENT_ID:,} "
                '(SK_ID_CURR in the Kaggle files, e.g. 100002); `credit sql "SELECT client_id FROM clients LIMIT 5"` '
                "lists some",
                param,
                ctx,
            )
        return number


CLIENT_ID = ClientId()
