"""`credit ui`: the NiceGUI dashboard for loan officers, a client of the HTTP API."""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

import click

from app.config import load_settings

PASSWORD_ENV = "CREDIT_UI_PASSWORD"
SECRET_ENV = "CREDIT_UI_STORAGE_SECRET"


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def first_admin_key(api_keys: str, keys_file: str | None = None) -> str:
    """The first key with the admin role in 'key1:officer,key2:admin' (or the keys file's lines)."""
    text = api_keys
    if not text.strip() and keys_file and Path(keys_file).is_file():
        text = Path(keys_file).read_text(encoding="utf-8")
    pairs = [p.strip() for chunk in text.splitlines() for p in chunk.split(",") if p.strip() and not p.startswith("#")]
    parsed = [p.rsplit(":", 1) if ":" in p else [p, "officer"] for p in pairs]
    for key, role in parsed:
        if role.strip() == "admin":
            return key.strip()
    return parsed[0][0].strip() if parsed else ""


def build_config(*, api_url: str, key: str, lang: str, host: str, password: str | None):
    from ui.pages.common import UiConfig

    if not is_loopback(host) and not password:
        raise click.ClickException(
            f"the dashboard is bound to {host}, which is reachable from other machines: "
            f"set {PASSWORD_ENV} to require a password, or use --host 127.0.0.1"
        )
    return UiConfig(api_url=api_url, key=key, lang=lang if lang in ("fr", "en") else "fr", password=password or "")


def register_pages() -> None:
    """Import the page modules: their @ui.page decorators register the routes."""
    from nicegui import app

    from ui.pages import client, login, model, monitoring  # noqa: F401
    from ui.pages.common import close_api

    app.on_shutdown(close_api)


@click.command("ui")
@click.option("--port", type=int, default=None, help="dashboard port [env CREDIT_UI_PORT, default 8080]")
@click.option("--api", "api_url", default=None, help="API base URL [env CREDIT_API_URL, default http://127.0.0.1:8000]")
@click.option("--key", default=None, help="API key [env CREDIT_UI_KEY, default the first admin key]")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help=f"bind address (non-loopback needs {PASSWORD_ENV})"
)
@click.option("--lang", type=click.Choice(["fr", "en"]), default=None, help="default language [env CREDIT_LANG]")
def ui_command(port: int | None, api_url: str | None, key: str | None, host: str, lang: str | None) -> None:
    """Run the dashboard (NiceGUI) against the HTTP API."""
    settings = load_settings(ui_port=port, api_url=api_url, ui_key=key, lang=lang)
    api_key = settings.ui_key or first_admin_key(settings.api_keys, settings.keys_file)
    cfg = build_config(
        api_url=settings.api_url, key=api_key, lang=settings.lang, host=host, password=os.environ.get(PASSWORD_ENV)
    )
    from nicegui import ui

    from ui.pages.common import configure

    configure(cfg)
    register_pages()
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
