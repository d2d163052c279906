"""`credit serve`: run the HTTP API under uvicorn.

Settings reach the worker processes through the CREDIT_* environment variables (uvicorn imports the factory
`app.api:app_from_env` in each worker). The access log is off (it would carry client ids but never the
Authorization header; uvicorn does not log headers). SIGTERM or Ctrl-C: uvicorn stops accepting connections,
lets in-flight requests finish (at most 30 s), runs the shutdown hooks and exits 0.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click

from app.config import SETTINGS_DOC, load_settings
from app.options import db_option, model_option

GRACEFUL_SECONDS = 30


def _exit_cleanly(signum: int, _frame: object) -> None:
    sys.exit(0)


@click.command("serve")
@db_option
@model_option
@click.option("--host", default=None, help="bind address [env CREDIT_HOST, default 127.0.0.1]")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="port [env CREDIT_PORT, default 8000]")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=None, help="worker processes [env CREDIT_WORKERS, default 1]"
)
def serve_command(
    db: str | None, model_dir: str | None, host: str | None, port: int | None, workers: int | None
) -> None:
    """Run the HTTP API (OpenAPI docs at /schema)."""
    import uvicorn

    settings = load_settings(db=db, model_dir=model_dir, host=host, port=port, workers=workers)
    if not Path(settings.db).is_file():
        raise click.ClickException(f"database {settings.db} not found (run `credit ingest` first or pass --db)")
    overrides = {
        "db": str(Path(settings.db).resolve()),
        "model_dir": str(Path(settings.model_dir).resolve()),
        "host": settings.host,
        "port": settings.port,
        "workers": settings.workers,
    }
    env_names = {name: var for name, var, _d, _h in SETTINGS_DOC}
    for name, value in overrides.items():
        os.environ[env_names[name]] = str(value)
    click.echo(
        f"credit API on http://{settings.host}:{settings.port} ({settings.workers} worker(s)); "
        f"db={overrides['db']} model={overrides['model_dir']}",
        err=True,
    )
    # uvicorn re-raises the signal that stopped it once shutdown is complete; ending here with status 0
    # tells a supervisor (systemd, docker, Kubernetes) that the graceful stop succeeded.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    uvicorn.run(
        "app.api:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        log_level="info",
        lifespan="on",
    )
