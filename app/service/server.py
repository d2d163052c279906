"""`credit serve`: run the HTTP API under uvicorn, with a draining phase before the graceful stop.

Settings reach the worker processes through the CREDIT_* environment variables (each worker builds the app
with the factory `app.service.api:app_from_env`). The access log is off (it would carry client ids but never the
Authorization header; uvicorn does not log headers).

SIGTERM or Ctrl-C: the listening socket is closed at once (new connections are refused, so a client
never sends a request that nobody will read), a request in flight gets its answer with `Connection:
close`, and so does the next request on every open keep-alive connection; the connections close one by
one. After DRAIN_SECONDS, or as soon as no connection is left, uvicorn's own graceful shutdown runs
(in-flight requests finish, at most GRACEFUL_SECONDS), then the shutdown hooks, and the process exits 0.
Without the draining phase uvicorn closes idle keep-alive connections immediately, and a request the
client had just written on one of them is lost unanswered.

Hostile and slow clients (app.service.httpguard): headers at most 16 KiB and 100 of them (431), URL
at most 8 KiB (414), headers complete within 10 s (else the connection is closed), the body within 30 s
(408), 1024 connections per
worker (503 beyond), keep-alive connections closed after 5 idle seconds; protocol errors answer 400 in the
API's JSON error shape.

With `--workers N` the parent binds the socket, runs N worker processes that share it, replaces a worker
that dies, and forwards SIGTERM/SIGINT to all of them.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import sys
import threading
from typing import Any

import uvicorn

GRACEFUL_SECONDS = 30
KEEP_ALIVE_SECONDS = 5  # an idle keep-alive connection is closed after this (uvicorn's own timer)
DRAIN_SECONDS = 2.0

log = logging.getLogger("uvicorn.error")


class DrainingServer(uvicorn.Server):
    """uvicorn's server with a draining phase before its graceful shutdown (see the module docstring)."""

    draining = False

    async def startup(self, sockets: list | None = None) -> None:
        self.config.loaded_app = _CloseWhenDraining(self.config.loaded_app, self)
        await super().startup(sockets)

    async def shutdown(self, sockets: list | None = None) -> None:
        self.draining = True
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for conn in list(self.server_state.connections):
            cycle = getattr(conn, "cycle", None)
            if cycle is not None and not cycle.response_complete:
                cycle.keep_alive = False  # uvicorn sends Connection: close and closes after this response
        deadline = asyncio.get_running_loop().time() + DRAIN_SECONDS
        while self.server_state.connections and not self.force_exit:
            if asyncio.get_running_loop().time() >= deadline:
                log.info("draining: %d idle connection(s) left, closing them", len(self.server_state.connections))
                break
            await asyncio.sleep(0.02)
        await super().shutdown(sockets)


class _CloseWhenDraining:
    """ASGI wrapper: while the server drains, every response says `Connection: close`."""

    def __init__(self, app: Any, server: DrainingServer):
        self.app, self.server = app, server

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.server.draining:
            await self.app(scope, receive, send)
            return

        async def send_closing(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)


def _run_worker(config: uvicorn.Config, sockets: list) -> None:
    config.configure_logging()
    DrainingServer(config).run(sockets=sockets)


def _supervise(config: uvicorn.Config) -> None:
    """Run config.workers processes on one shared socket; replace any that dies; stop all on SIGTERM/SIGINT."""
    multiprocessing.allow_connection_pickling()
    spawn = multiprocessing.get_context("spawn")
    sock = config.bind_socket()
    stop = threading.Event()

    def start() -> Any:
        proc = spawn.Process(target=_run_worker, args=(config, [sock]), daemon=False)
        proc.start()
        return proc

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    procs = [start() for _ in range(config.workers)]
    log.info("started %d workers (parent process %d)", len(procs), os.getpid())
    while not stop.wait(0.5):
        for i, proc in enumerate(procs):
            if not proc.is_alive():
                log.warning("worker %d exited with %s; starting a new one", proc.pid, proc.exitcode)
                procs[i] = start()
    sock.close()  # the workers close their copies as they start draining: then the port refuses connections
    for proc in procs:
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGTERM)
    for proc in procs:
        proc.join()


def _exit_cleanly(signum: int, _frame: object) -> None:
    sys.exit(0)
