"""The command line's actor is a verified account (app/cli/actor.py, app/accounts.py): `--as ACCOUNT` with the
password from CREDIT_PASSWORD or a hidden prompt, checked against the dashboard's accounts with the dashboard's
throttle on failed passwords (shared by every `credit` process through a private file); clear errors naming the
setting when no account store is configured. No model is needed: a command authenticates before it opens anything."""

from __future__ import annotations

import json
import stat
import time

from cli_accounts import ACCOUNTS, accounts_file, as_env
from click.testing import CliRunner

from app.accounts import FREE_FAILURES, FileThrottle, LoginThrottle
from app.cli.actor import THROTTLE_FILE
from app.cli.main import cli


def review_request(tmp_path, who: str, env: dict) -> object:
    """`credit review request` of a request id the empty store does not hold: past authentication it says so."""
    args = [
        "review",
        "request",
        "req-unknown",
        "--view",
        "I was ill",
        "--as",
        who,
        "--log-db",
        str(tmp_path / "log.db"),
    ]
    return CliRunner().invoke(cli, args, env=env)


def test_a_verified_account_acts_and_a_wrong_password_does_not(tmp_path):
    out = review_request(tmp_path, "alice", as_env(tmp_path, "alice"))
    assert out.exit_code == 1 and "no logged decision with request id req-unknown" in out.output, out.output
    out = review_request(tmp_path, "alice", as_env(tmp_path, "alice", password="not-her-password"))
    assert out.exit_code == 1 and "wrong account name or password for 'alice'" in out.output, out.output
    assert "not-her-password" not in out.output
    out = review_request(tmp_path, "mallory", as_env(tmp_path, "alice"))  # no such account: the same message
    assert out.exit_code == 1 and "wrong account name or password for 'mallory'" in out.output, out.output


def test_the_password_is_asked_for_hidden_when_not_in_the_environment(tmp_path):
    env = {**as_env(tmp_path, "alice"), "CREDIT_PASSWORD": None}
    args = ["review", "request", "req-unknown", "--view", "x", "--as", "alice", "--log-db", str(tmp_path / "l.db")]
    out = CliRunner().invoke(cli, args, env=env, input=ACCOUNTS["alice"][1] + "\n")
    assert "password of alice" in out.output and ACCOUNTS["alice"][1] not in out.output
    assert out.exit_code == 1 and "no logged decision" in out.output, out.output


def test_as_is_required_and_no_account_store_names_the_settings(tmp_path):
    out = CliRunner().invoke(cli, ["review", "request", "r", "--view", "x", "--log-db", str(tmp_path / "l.db")])
    assert out.exit_code == 2 and "--as" in out.output
    env = {"CREDIT_UI_USERS": "", "CREDIT_UI_USERS_FILE": str(tmp_path / "none"), "CREDIT_PASSWORD": "whatever1"}
    out = review_request(tmp_path, "alice", env)
    assert out.exit_code == 1 and "CREDIT_UI_USERS is empty and CREDIT_UI_USERS_FILE" in out.output
    assert str(tmp_path / "none") in out.output and "credit ui-account" in out.output
    bad = tmp_path / "bad-accounts"
    bad.write_text("# accounts\nalice:boss:scrypt$1$2$3$x$y\n")
    out = review_request(tmp_path, "alice", {**env, "CREDIT_UI_USERS_FILE": str(bad)})
    assert out.exit_code == 1 and f"{bad} line 2: unknown role 'boss'" in out.output, out.output


def test_failed_passwords_are_throttled_across_commands_like_the_dashboard(tmp_path):
    """FREE_FAILURES wrong passwords, then even the right one waits 2 s (the dashboard's LoginThrottle rule); the
    counts live in a 0600 file beside the store, so separate `credit` processes share them; a success clears them."""
    wrong = as_env(tmp_path, "alice", password="wrong-password")
    for _ in range(FREE_FAILURES):
        out = review_request(tmp_path, "alice", wrong)
        assert "wrong account name or password" in out.output, out.output
    out = review_request(tmp_path, "alice", as_env(tmp_path, "alice"))
    assert out.exit_code == 1 and "too many failed passwords for alice: try again in 2 s" in out.output, out.output
    path = tmp_path / THROTTLE_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    counts = json.loads(path.read_text())
    assert counts["name:alice"][0] == FREE_FAILURES  # the throttled try was not counted
    # the same wait as the dashboard's in-memory throttle after the same failures
    memory = LoginThrottle(clock=lambda: counts["name:alice"][1])
    for _ in range(FREE_FAILURES):
        memory.failed("alice", "cli:x")
    assert memory.wait_seconds("alice", "cli:x") == FileThrottle(
        path, clock=lambda: counts["name:alice"][1]
    ).wait_seconds("alice", "cli:other")
    time.sleep(2.1)
    out = review_request(tmp_path, "alice", as_env(tmp_path, "alice"))
    assert "no logged decision" in out.output, out.output  # past the wait, the right password is accepted
    assert "name:alice" not in json.loads(path.read_text())
    assert accounts_file(tmp_path).is_file()
