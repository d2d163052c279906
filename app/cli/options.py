"""What every `credit` command shares: the command class (domain errors -> `Error: ...`), the Settings
built once from a command's own options, and the options that touch data."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import click

from app.errors import CreditError
from app.ids import MAX_ID

if TYPE_CHECKING:
    from app.config import Settings


@contextlib.contextmanager
def domain_errors() -> Iterator[None]:
    """The one place where domain errors meet click: a `CreditError` becomes `Error: <message>`, exit 1.
    Domain code raises, never imports click; other exceptions and `sys.exit` codes pass through."""
    try:
        yield
    except CreditError as exc:
        raise click.ClickException(exc.message) from None


class CreditCommand(click.Command):
    """A click command whose domain errors are shown as `Error: <message>` (`domain_errors`)."""

    def invoke(self, ctx: click.Context) -> Any:
        with domain_errors():
            return super().invoke(ctx)


class CreditGroup(click.Group):
    """A click group whose subcommands are `CreditCommand`s."""

    command_class = CreditCommand

    def invoke(self, ctx: click.Context) -> Any:
        with domain_errors():
            return super().invoke(ctx)


def command(name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], click.Command]:
    """`@click.command(name)` with the `CreditCommand` class."""
    return click.command(name, cls=CreditCommand, **kwargs)


def settings_from(**given: Any) -> Settings:
    """Settings from defaults, CREDIT_* environment variables, then `given` (options left at None are skipped)."""
    from app.config import load_settings

    return load_settings(**given)


def with_settings(*fields: str, **renamed: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Build the command's `Settings` once from its own options and pass it as `settings=`.

    `fields` are options named like a Settings field (`db`, `model_dir`, `seed`...); `renamed` maps an
    option's parameter name to its field (`api="api_url"`). Those options are consumed: the command gets
    `settings` instead (defaults, then CREDIT_* environment variables, then the options given). A bad
    environment value is `Error: environment variable CREDIT_...` (exit 1). A flag left off (False) leaves
    its setting to the environment. Put it under the click
    decorators (nearest the function)."""
    mapping = {**{f: f for f in fields}, **renamed}

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {field: kwargs.pop(option) for option, field in mapping.items()}
            given = {field: value for field, value in given.items() if value is not False}  # a flag left off
            return fn(*args, settings=settings_from(**given), **kwargs)

        return wrapper

    return decorate


def say(message: str) -> None:
    """A command's progress and notes: one line on stderr (stdout stays for results)."""
    click.echo(message, err=True)


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
MAX_CLIENT_ID = MAX_ID  # the largest id a JSON client reads exactly (the API's limit too)


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
