"""Test helpers: a real `credit ui` subprocess on a free loopback port, and the test dashboards' accounts.

with UiServer(api_url, key) as dash:
    page.goto(dash.url)
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from apiserver import ServerProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
# the test dashboards' accounts: name -> (role, password); `users_env()` hashes them once per test process
ACCOUNTS = {
    "agent": ("officer", "agent-password-7c1f"),
    "risque": ("risk", "risk-password-2b9e"),
    "admin": ("admin", "admin-password-5d0a"),
}


@functools.cache
def users_text() -> str:
    from app.accounts import account_line

    return ",".join(account_line(name, role, pw) for name, (role, pw) in ACCOUNTS.items())


def users_env() -> dict[str, str]:
    return {"CREDIT_UI_USERS": users_text()}


def login(pg, url: str, name: str = "admin") -> None:
    """Log a playwright page in as one of ACCOUNTS, then wait for the landing page."""
    pg.goto(url + "/login")
    pg.locator("input[data-testid=user], [data-testid=user] input").first.fill(name)
    box = pg.locator("input[data-testid=password], [data-testid=password] input").first
    box.fill(ACCOUNTS[name][1])
    box.press("Enter")
    pg.get_by_test_id("search").wait_for()


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
        super().__init__(cmd, f"http://{host}:{self.port}", "/login", _env({**users_env(), **(env or {})}), timeout)
