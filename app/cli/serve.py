"""`credit serve` (click only: parse, call, print); the server itself is app/service/server.py."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click
import msgspec
import uvicorn

from app.cli.options import command, db_option, log_db_option, model_option, with_settings
from app.config import Settings
from app.service.httpguard import GuardedHttpToolsProtocol
from app.service.server import (
    GRACEFUL_SECONDS,
    KEEP_ALIVE_SECONDS,
    DrainingServer,
    _exit_cleanly,
    _supervise,
)


@command("serve")
@db_option
@log_db_option
@model_option
@click.option("--host", default=None, help="bind address [env CREDIT_HOST, default 127.0.0.1]")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="port [env CREDIT_PORT, default 8000]")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=None, help="worker processes [env CREDIT_WORKERS, default 1]"
)
@with_settings("db", "log_db", "model_dir", "host", "port", "workers")
def serve_command(settings: Settings) -> None:
    """Run the HTTP API (OpenAPI docs at /schema)."""
    if not Path(settings.db).is_file():
        raise click.ClickException(f"database {settings.db} not found (run `credit ingest` first or pass --db)")
    # the worker processes read their settings from the environment (app.service.api.app_from_env)
    settings = msgspec.structs.replace(
        settings,
        db=str(settings.db_path.resolve()),
        log_db=str(settings.log_db_path.resolve()),
        model_dir=str(settings.model_path.resolve()),
    )
    os.environ.update(settings.to_env())
    click.echo(
        f"credit API on http://{settings.host}:{settings.port} ({settings.workers} worker(s)); "
        f"db={settings.db} log={settings.log_db} model={settings.model_dir}",
        err=True,
    )
    # uvicorn re-raises the signal that stopped it once shutdown is complete; ending here with status 0
    # tells a supervisor (systemd, docker, Kubernetes) that the graceful stop succeeded.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    config = uvicorn.Config(
        "app.service.api:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        http=GuardedHttpToolsProtocol,  # header caps -> 431, header deadline, connection cap (app.service.httpguard)
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        log_level="info",
        lifespan="on",
    )
    if settings.workers > 1:
        _supervise(config)
        return
    server = DrainingServer(config)
    server.run()
    if not server.started:
        sys.exit(3)  # uvicorn's status for a server that could not start
