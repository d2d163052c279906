"""`credit ui`: the NiceGUI dashboard for loan officers, a client of the HTTP API."""

from __future__ import annotations

import ipaddress
import os
import secrets

import click

from app.cli.options import with_settings
from app.config import Settings
from app.service.auth import KeyRing, load_keys
from ui.hosts import AllowedHosts, parse_hosts

PASSWORD_ENV = "CREDIT_UI_PASSWORD"
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
    if ui_key:
        return ui_key, ui_key
    ring = KeyRing(load_keys(api_keys, keys_file))
    officer, admin = ring.first_with_role("officer"), ring.first_with_role("admin")
    return officer or admin or "", admin or officer or ""


def build_config(
    *,
    api_url: str,
    key: str,
    lang: str,
    host: str,
    password: str | None,
    admin_key: str | None = None,
    allowed_hosts: str = "localhost,127.0.0.1,[::1]",
    drift_min_rows: int | None = None,
):
    from ui.pages.common import UiConfig

    if not is_loopback(host) and not password:
        raise click.ClickException(
            f"the dashboard is bound to {host}, which is reachable from other machines: "
            f"set {PASSWORD_ENV} to require a password, or use --host 127.0.0.1"
        )
    return UiConfig(
        api_url=api_url,
        key=key,
        admin_key=key if admin_key is None else admin_key,
        lang=lang if lang in ("fr", "en") else "fr",
        password=password or "",
        allowed_hosts=parse_hosts(allowed_hosts),
        **({} if drift_min_rows is None else {"drift_min_rows": drift_min_rows}),
    )


def register_pages() -> None:
    """Import the page modules: their @ui.page decorators register the routes."""
    from nicegui import app

    from ui.pages import client, letter, login, model, monitoring  # noqa: F401
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
@click.option(
    "--host", default="127.0.0.1", show_default=True, help=f"bind address (non-loopback needs {PASSWORD_ENV})"
)
@click.option("--lang", type=click.Choice(["fr", "en"]), default=None, help="default language [env CREDIT_LANG]")
@with_settings("api_url", "lang", port="ui_port", key="ui_key")
def ui_command(host: str, settings: Settings) -> None:
    """Run the dashboard (NiceGUI) against the HTTP API."""
    officer_key, admin_key = dashboard_keys(settings.api_keys, settings.keys_file, settings.ui_key)
    cfg = build_config(
        api_url=settings.api_url,
        key=officer_key,
        admin_key=admin_key,
        lang=settings.lang,
        host=host,
        password=os.environ.get(PASSWORD_ENV),
        allowed_hosts=settings.ui_allowed_hosts,
        drift_min_rows=settings.drift_min_rows,
    )
    from nicegui import app, ui

    from ui.pages.common import configure

    configure(cfg)
    register_pages()
    # a DNS-rebinding page reaches a loopback dashboard under its own host name: answer only the names allowed
    app.add_middleware(AllowedHosts, allowed=cfg.allowed_hosts)
    click.echo(f"dashboard on http://{host}:{settings.ui_port} (API {settings.api_url})", err=True)
    ui.run(
        host=host,
        port=settings.ui_port,
        title="Prêt à dépenser",
        reload=False,
        show=False,
        storage_secret=os.environ.get(SECRET_ENV) or secrets.token_urlsafe(32),
        show_welcome_message=False,
        favicon="💶",
    )
