"""Who acts on the command line: an account of the dashboard's store, its password verified (issue 32).

Every command that records an act on a decision (`credit letter`, `credit review request|decide`, `credit override
record|approve`, `credit rights-export`) takes `--as ACCOUNT`: a name of CREDIT_UI_USERS / CREDIT_UI_USERS_FILE
(app/accounts.py, lines written by `credit ui-account`). The password comes from CREDIT_PASSWORD (for scripts) or
from a hidden prompt; it is checked like the dashboard's login, with the same throttle on failed passwords (counts
kept in a private file beside the operational store, shared by every `credit` process). The role recorded is the
account's, never the caller's word.
"""

from __future__ import annotations

import getpass
import math
import os
from pathlib import Path

import click

from app.config import Settings

PASSWORD_ENV = "CREDIT_PASSWORD"
THROTTLE_FILE = ".credit-cli-logins"  # beside the operational store

as_option = click.option(
    "--as",
    "account",
    required=True,
    metavar="ACCOUNT",
    help=f"the account acting (CREDIT_UI_USERS / CREDIT_UI_USERS_FILE); password from {PASSWORD_ENV} or a prompt",
)


def throttle_path(settings: Settings) -> Path:
    return settings.log_db_path.parent / THROTTLE_FILE


def authenticated(settings: Settings, name: str):
    """The `Actor` of account `name`, once its password is verified; a ClickException names what is wrong."""
    from app.accounts import AccountError, Authenticator, FileThrottle, load_accounts
    from app.rights.records import Actor

    try:
        accounts = load_accounts(settings.ui_users, settings.ui_users_file)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    if not accounts:
        raise click.ClickException(
            "no account to act as: CREDIT_UI_USERS is empty and CREDIT_UI_USERS_FILE "
            f"({settings.ui_users_file}) holds none; create one with `credit ui-account NAME --role officer` "
            "and put the line it prints in that file"
        )
    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        password = click.prompt(f"password of {name}", hide_input=True, err=True)
    auth = Authenticator(accounts, FileThrottle(throttle_path(settings)))
    account, wait = auth.check(name, password, address=f"cli:{getpass.getuser()}")
    if wait > 0:
        raise click.ClickException(f"too many failed passwords for {name}: try again in {math.ceil(wait)} s")
    if account is None:
        source = "CREDIT_UI_USERS" if settings.ui_users.strip() else f"CREDIT_UI_USERS_FILE ({settings.ui_users_file})"
        raise click.ClickException(f"wrong account name or password for {name!r} (accounts of {source})")
    return Actor(account.name, account.role)
