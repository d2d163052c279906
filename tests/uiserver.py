"""Test helpers: a real `credit ui` subprocess (and the fake API of tests/fake_api.py) on free loopback ports.

with UiServer(api_url, key) as dash:
    page.goto(dash.url)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Process:
    name = "process"

    def __init__(self, cmd: list[str], url: str, ready_path: str, env: dict[str, str], timeout: float) -> None:
        self.cmd, self.url, self.ready_path, self.env, self.timeout = cmd, url, ready_path, env, timeout
        self.proc: subprocess.Popen | None = None
        self._dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.log_path = self._dir / "server.log"

    def start(self):
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.cmd, env=self.env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.close()
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=2.0).status_code < 500:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} not answering within {self.timeout}s:\n{self.output()}")

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
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


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    # PYTEST_CURRENT_TEST would make NiceGUI's ui.run() think it runs inside its own test harness
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDIT_", "NICEGUI_", "PYTEST_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class UiServer(_Process):
    """`credit ui` on a free port, talking to `api_url` with `key`."""

    name = "uiserver"

    def __init__(
        self,
        api_url: str,
        key: str,
        *,
        lang: str = "fr",
        host: str = "127.0.0.1",
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.port = free_port()
        cmd = [sys.executable, "-m", "app.cli", "ui", "--port", str(self.port), "--api", api_url, "--key", key]
        cmd += ["--host", host, "--lang", lang]
        super().__init__(cmd, f"http://{host}:{self.port}", "/login", _env(env), timeout)


class FakeApi(_Process):
    """tests/fake_api.py (keys 'admin-key' and 'officer-key') on a free port."""

    name = "fakeapi"

    def __init__(self, timeout: float = 60.0) -> None:
        self.port = free_port()
        cmd = [sys.executable, str(ROOT / "tests" / "fake_api.py"), "--port", str(self.port)]
        super().__init__(cmd, f"http://127.0.0.1:{self.port}", "/healthz", _env(None), timeout)
