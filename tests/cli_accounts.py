"""Accounts for the command line's `--as ACCOUNT` in tests: a real account file (scrypt hashes written by
app.accounts.account_line) and the environment a `credit` command reads it and the password from."""

from __future__ import annotations

from pathlib import Path

from app.accounts import account_line

ACCOUNTS = {  # name -> (role, password)
    "alice": ("officer", "alice-password"),
    "chloe": ("officer", "chloe-password"),
    "bob": ("risk", "bob-password"),
    "rita": ("risk", "rita-password"),
}


def accounts_file(root: Path) -> Path:
    path = root / "accounts"
    if not path.is_file():
        path.write_text("".join(account_line(n, role, pw) + "\n" for n, (role, pw) in ACCOUNTS.items()))
    return path


def as_env(root: Path, name: str, password: str | None = None) -> dict[str, str | None]:
    """The environment of a command acting as `name` (its own password unless another is given)."""
    return {
        "CREDIT_UI_USERS": "",
        "CREDIT_UI_USERS_FILE": str(accounts_file(root)),
        "CREDIT_PASSWORD": ACCOUNTS[name][1] if password is None else password,
    }
