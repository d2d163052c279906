"""Test helpers: a real `credit ui` subprocess (and the fake API of tests/fake_api.py) on free loopback ports.

with UiServer(api_url, key) as dash:
    page.goto(dash.url)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from apiserver import ServerProcess, free_port

ROOT = Path(__file__).resolve().parent.parent


class _Process(ServerProcess):
    """Run from the repository root; up as soon as it answers below 500."""

    poll_seconds = 0.2
    stop_seconds = 20.0

    def __init__(self, cmd: list[str], url: str, ready_path: str, env: dict[str, str], timeout: float) -> None:
        super().__init__(url, ready_path, timeout)
        self.cmd, self.env, self.cwd = cmd, env, ROOT

    def is_ready(self, status: int) -> bool:
        return status < 500


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
        cmd = [sys.executable, "-m", "app.cli.main", "ui", "--port", str(self.port), "--api", api_url, "--key", key]
        cmd += ["--host", host, "--lang", lang]
        super().__init__(cmd, f"http://{host}:{self.port}", "/login", _env(env), timeout)


class FakeApi(_Process):
    """tests/fake_api.py (keys 'admin-key' and 'officer-key') on a free port."""

    name = "fakeapi"

    def __init__(self, timeout: float = 60.0) -> None:
        self.port = free_port()
        cmd = [sys.executable, str(ROOT / "tests" / "fake_api.py"), "--port", str(self.port)]
        super().__init__(cmd, f"http://127.0.0.1:{self.port}", "/healthz", _env(None), timeout)
