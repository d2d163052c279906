"""`credit ui`: the NiceGUI dashboard for loan officers, a client of the HTTP API.

Everyone logs in, on every interface, loopback included: accounts from CREDIT_UI_USERS / CREDIT_UI_USERS_FILE
(app/accounts.py, written by `credit ui-account`). The session cookie is HttpOnly and SameSite=Strict; every answer
carries a CSP with frame-ancestors 'none'; cross-site requests are refused (ui/security.py); Socket.IO accepts only
the dashboard's own origin."""

from __future__ import annotations

import ipaddress
import os
import secrets

import click

from app.accounts import MIN_PASSWORD, NAME, AccountError, account_line, load_accounts
from app.cli.options import with_settings
from app.config import Settings
from app.service.auth import ROLES, KeyRing, load_keys
from ui.hosts import AllowedHosts, parse_hosts

SECRET_ENV = "CREDIT_UI_STORAGE_SECRET"


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def dashboard_keys(api_keys: str, keys_file: str | None = None, ui_key: str = "") -> tuple[str, str]:
    """(key for the client and model pages, key for monitoring).

    `ui_key` (CREDIT_UI_KEY, --key) serves both when set. Otherwise the API's own keys (app.service.auth.load_keys):
    the first officer key for everything an officer does, the first admin key only when monitoring is asked
    for; each falls back on the other when the key list has only one role."""
    return KeyRing(load_keys(api_keys, keys_file)).dashboard_keys(ui_key)


def build_config(
    *,
    api_url: str,
    key: str,
    lang: str,
    host: str,
    accounts: dict,
    admin_key: str | None = None,
    allowed_hosts: str = "localhost,127.0.0.1,[::1]",
    drift_min_rows: int | None = None,
):
    from ui.pages.common import UiConfig

    if not accounts:
        where = "loopback" if is_loopback(host) else f"{host}, which is reachable from other machines"
        raise click.ClickException(
            f"the dashboard (on {where}) has no accounts to log in with: create one with "
            "`credit ui-account NAME --role officer` and put the line it prints in CREDIT_UI_USERS_FILE "
            "(default .credit-ui-users) or CREDIT_UI_USERS"
        )
    return UiConfig(
        api_url=api_url,
        key=key,
        admin_key=key if admin_key is None else admin_key,
        lang=lang if lang in ("fr", "en") else "fr",
        accounts=dict(accounts),
        allowed_hosts=parse_hosts(allowed_hosts),
        **({} if drift_min_rows is None else {"drift_min_rows": drift_min_rows}),
    )


def register_pages() -> None:
    """Import the page modules: their @ui.page decorators register the routes."""
    from nicegui import app

    from ui.pages import client, letter, login, model, model_card, monitoring, rights_rates  # noqa: F401
    from ui.pages.common import close_api

    app.on_shutdown(close_api)


@click.command("ui")
@click.option("--port", type=int, default=None, help="dashboard port [env CREDIT_UI_PORT, default 8080]")
@click.option("--api", "api_url", default=None, help="API base URL [env CREDIT_API_URL, default http://127.0.0.1:8000]")
@click.option(
    "--key",
    default=None,
    help="API key for every page [env CREDIT_UI_KEY; default: the first officer key, admin key for monitoring]",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="bind address (everyone logs in, on any address)")
@click.option("--lang", type=click.Choice(["fr", "en"]), default=None, help="default language [env CREDIT_LANG]")
@with_settings("api_url", "lang", port="ui_port", key="ui_key")
def ui_command(host: str, settings: Settings) -> None:
    """Run the dashboard (NiceGUI) against the HTTP API."""
    officer_key, admin_key = dashboard_keys(settings.api_keys, settings.keys_file, settings.ui_key)
    try:
        accounts = load_accounts(settings.ui_users, settings.ui_users_file)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    cfg = build_config(
        api_url=settings.api_url,
        key=officer_key,
        admin_key=admin_key,
        lang=settings.lang,
        host=host,
        accounts=accounts,
        allowed_hosts=settings.ui_allowed_hosts,
        drift_min_rows=settings.drift_min_rows,
    )
    from nicegui import app, core, ui
    from starlette.middleware.sessions import SessionMiddleware

    from ui.pages.common import SESSION_SECONDS, configure
    from ui.security import BrowserGuard

    configure(cfg)
    register_pages()
    secret = os.environ.get(SECRET_ENV) or secrets.token_urlsafe(32)
    # innermost first: the session cookie (HttpOnly, SameSite=Strict), then the Host check (a DNS-rebinding page
    # reaches a loopback dashboard under its own host name), then, outermost, the browser guard (ui/security.py)
    app.add_middleware(SessionMiddleware, secret_key=secret, same_site="strict", max_age=SESSION_SECONDS)
    app.add_middleware(AllowedHosts, allowed=cfg.allowed_hosts)
    app.add_middleware(BrowserGuard)
    core.sio.eio.cors_allowed_origins = None  # engineio: only the origin of the request's own Host
    click.echo(f"dashboard on http://{host}:{settings.ui_port} (API {settings.api_url})", err=True)
    ui.run(
        host=host,
        port=settings.ui_port,
        title="Prêt à dépenser",
        reload=False,
        show=False,
        storage_secret=secret,  # NiceGUI sees the SessionMiddleware above and adds only its request tracking
        show_welcome_message=False,
        favicon="💶",
    )


@click.command("ui-account")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="officer", show_default=True, help="the account's role")
@click.option(
    "--password-stdin", is_flag=True, help="read the password from the first line of stdin instead of a prompt"
)
def ui_account_command(name: str, role: str, password_stdin: bool) -> None:
    """Print a dashboard account line (name:role:scrypt hash) for CREDIT_UI_USERS_FILE or CREDIT_UI_USERS."""
    if not NAME.fullmatch(name):
        raise click.ClickException(f"the name {name[:64]!r} is not 1-64 of A-Z a-z 0-9 . _ @ -")
    if password_stdin:
        password = click.get_text_stream("stdin").readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True, err=True)
    if len(password) < MIN_PASSWORD:
        raise click.ClickException(f"a password has at least {MIN_PASSWORD} characters")
    click.echo(account_line(name, role, password))
