"""Test helper: a real `credit serve` subprocess on a free loopback port.

    with ApiServer(db, model_dir, keys=KEYS) as api:
        httpx.get(api.url + "/healthz")

The server's stdout and stderr go to a file (`api.output()`), so tests can check what it logged.
`stop()` sends SIGTERM and returns the exit code (0 for a graceful shutdown).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import httpx

OFFICER_KEY = "officer-test-key-6f1d0b9e2a"
ADMIN_KEY = "admin-test-key-93c4e7a15b"
KEYS = f"{OFFICER_KEY}:officer,{ADMIN_KEY}:admin"
OFFICER = {"Authorization": f"Bearer {OFFICER_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def served_in_process(pipeline: SimpleNamespace, dest: Path):
    """(the pipeline's private copy, the app, Litestar's in-process TestClient) for tests of what the app does
    with its files, not of the network."""
    from litestar.testing import TestClient

    from app.config import Settings
    from app.service.api import create_app

    data = copy_pipeline(pipeline, dest)
    app = create_app(Settings(db=str(data.db), model_dir=str(data.model_dir), api_keys=KEYS, keys_file=""))
    with TestClient(app) as client:
        yield data, app, client


def copy_pipeline(pipeline: SimpleNamespace, dest: Path) -> SimpleNamespace:
    """A private copy of a pipeline's database and model folder (the server writes the log into the db)."""
    dest.mkdir(parents=True, exist_ok=True)
    db = dest / "credit.db"
    shutil.copy(pipeline.db, db)
    model_dir = dest / "model"
    shutil.copytree(pipeline.model_dir, model_dir, symlinks=True)
    return SimpleNamespace(db=db, model_dir=model_dir, root=dest)


class ServerProcess:
    """A server subprocess, its stdout and stderr in `log_path` (`output()`); a context manager.

    A subclass sets `cmd`, `env` and `cwd` in its constructor; `start()` waits until `url + ready_path` answers.
    """

    name = "server"  # in error messages
    poll_seconds = 0.1
    stop_seconds = 30.0

    def __init__(self, url: str, ready_path: str, timeout: float) -> None:
        self.url, self.ready_path, self.timeout = url, ready_path, timeout
        self.cmd: list[str] = []
        self.env: dict[str, str] = {}
        self.cwd: Path | None = None
        self.proc: subprocess.Popen | None = None
        self._dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.log_path = self._dir / "server.log"

    def is_ready(self, status: int) -> bool:
        return status == 200

    def start(self):
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.cmd, env=self.env, cwd=self.cwd, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.close()
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if self.is_ready(httpx.get(self.url + self.ready_path, timeout=2.0).status_code):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(self.poll_seconds)
        self.stop()
        raise RuntimeError(f"{self.name} not answering {self.ready_path} within {self.timeout}s:\n{self.output()}")

    def stop(self, timeout: float | None = None) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.stop_seconds if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class ApiServer(ServerProcess):
    def __init__(
        self,
        db: Path,
        model_dir: Path,
        *,
        keys: str = KEYS,
        workers: int = 1,
        env: dict[str, str] | None = None,
        wait_for: str = "/readyz",
        timeout: float = 60.0,
    ):
        self.db, self.model_dir, self.workers = Path(db), Path(model_dir), workers
        self.port = free_port()
        super().__init__(f"http://127.0.0.1:{self.port}", wait_for, timeout)
        self.cmd = [sys.executable, "-m", "app.cli.main", "serve", "--db", str(self.db), "--model", str(self.model_dir)]
        self.cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_")}
        self.env.update(CREDIT_API_KEYS=keys, CREDIT_KEYS_FILE=str(self._dir / "no-keys-file"), PYTHONUNBUFFERED="1")
        self.env.update(env or {})
        self.cwd = self._dir

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, **kwargs)
