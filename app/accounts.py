"""Accounts: who may act, with which role, and how their password is checked — the dashboard's login and the
command line's `--as ACCOUNT` (app/cli/rights.py) check the same store the same way.

An account is one entry `name:role:hash`, where role is officer, risk or admin (app.service.auth.ROLES) and hash is
a scrypt hash written by `credit ui-account` (memory-hard: n=2**14, r=8 -> 16 MiB and ~50 ms per check):

    scrypt$16384$8$1$<salt, base64>$<hash, base64>

Entries come from CREDIT_UI_USERS (comma or newline separated) or, when that is empty, from the file
CREDIT_UI_USERS_FILE (one per line, `#` comments). Passwords are never stored, logged or echoed.

`LoginThrottle` slows password guessing: after FREE_FAILURES failed logins for one name or from one address,
each further try must wait 2, 4, 8, ... seconds (at most MAX_WAIT_S) after the previous failure; a success
clears the name's count. The check itself runs at most MAX_PARALLEL_CHECKS at a time (each takes 16 MiB).
`FileThrottle` is the same rule for processes that live one command long (`credit ... --as NAME`): the counts are
kept in a private file under an exclusive lock, on the wall clock.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import CreditError
from app.service.auth import ROLE_RANK, ROLES, config_entries

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")  # also the X-Credit-User header's syntax (app.service.http)
MIN_PASSWORD = 8
FREE_FAILURES = 3
MAX_WAIT_S = 300.0


class AccountError(CreditError, ValueError):
    """The accounts configuration is malformed (the message never contains a password or a hash)."""


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    password_hash: str = field(repr=False)


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password has at least {MIN_PASSWORD} characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def _parse_hash(text: str) -> tuple[int, int, int, bytes, bytes]:
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise AccountError("a password hash is of the form scrypt$N$r$p$salt$hash (written by `credit ui-account`)")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    except ValueError:
        raise AccountError("a password hash has a malformed number or base64 field") from None
    if n < 2**14 or n & (n - 1) or r < 8 or p < 1 or len(salt) < 16 or len(digest) < 32:
        raise AccountError("a password hash is weaker than scrypt N=2**14, r=8 with a 16-byte salt")
    return n, r, p, salt, digest


def verify_password(password: str, password_hash: str) -> bool:
    n, r, p, salt, digest = _parse_hash(password_hash)
    candidate = hashlib.scrypt(
        password.encode("utf-8", "surrogateescape"), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=len(digest)
    )
    return hmac.compare_digest(candidate, digest)


_DUMMY_HASH = hash_password("x" * 16)  # checked for unknown names, so that they take as long as known ones


def parse_accounts(text: str, source: str = "CREDIT_UI_USERS") -> dict[str, Account]:
    accounts: dict[str, Account] = {}
    for lineno, entry in config_entries(text):
        parts = entry.split(":", 2)
        if len(parts) != 3:
            raise AccountError(f"{source} line {lineno}: an entry is not of the form name:role:hash")
        name, role, password_hash = (p.strip() for p in parts)
        if not NAME.fullmatch(name):
            raise AccountError(f"{source} line {lineno}: the name {name[:64]!r} is not 1-64 of A-Z a-z 0-9 . _ @ -")
        if role not in ROLE_RANK:
            raise AccountError(f"{source} line {lineno}: unknown role {role[:20]!r} (expected one of {ROLES})")
        try:
            _parse_hash(password_hash)
        except AccountError as exc:
            raise AccountError(f"{source} line {lineno} ({name}): {exc}") from None
        if name in accounts:
            raise AccountError(f"{source} line {lineno}: the name {name!r} appears twice")
        accounts[name] = Account(name, role, password_hash)
    return accounts


def load_accounts(users: str, users_file: str | Path | None) -> dict[str, Account]:
    """Accounts from CREDIT_UI_USERS, else from the file CREDIT_UI_USERS_FILE (missing file: none)."""
    if users.strip():
        return parse_accounts(users)
    if users_file:
        path = Path(users_file)
        if path.is_file():
            return parse_accounts(path.read_text(), source=str(path))
    return {}


def account_line(name: str, role: str, password: str) -> str:
    """The `name:role:hash` entry for a new account (checked like any configured entry)."""
    line = f"{name}:{role}:{hash_password(password)}"
    parse_accounts(line, source="the new account")
    return line


class LoginThrottle:
    """Failed logins per name and per client address, with exponential backoff (thread-safe)."""

    def __init__(self, free: int = FREE_FAILURES, max_wait: float = MAX_WAIT_S, clock=time.monotonic) -> None:
        self.free, self.max_wait, self.clock = free, max_wait, clock
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (count, time of the last failure)
        self._lock = threading.Lock()

    def _wait(self, key: str, now: float) -> float:
        count, last = self._failures.get(key, (0, 0.0))
        if count < self.free:
            return 0.0
        return max(0.0, min(self.max_wait, 2.0 ** (count - self.free + 1)) - (now - last))

    def wait_seconds(self, name: str, address: str) -> float:
        """Seconds before the next try for this name from this address is allowed (0: now)."""
        now = self.clock()
        with self._lock:
            return max(self._wait(f"name:{name.lower()}", now), self._wait(f"addr:{address}", now))

    def begin(self, name: str, address: str) -> float:
        """Start a try: 0 when allowed, and the try already counts as failed (so that tries sent at once cannot
        all pass before the first failure is recorded); else the seconds to wait, and nothing is counted."""
        now = self.clock()
        with self._lock:
            wait = max(self._wait(f"name:{name.lower()}", now), self._wait(f"addr:{address}", now))
            if wait == 0:
                self._count(name, address, now)
            return wait

    def failed(self, name: str, address: str) -> None:
        with self._lock:
            self._count(name, address, self.clock())

    def _count(self, name: str, address: str, now: float) -> None:
        for key in (f"name:{name.lower()}", f"addr:{address}"):
            count, _ = self._failures.get(key, (0, 0.0))
            self._failures[key] = (count + 1, now)
        if len(self._failures) > 100_000:  # a flood of random names: forget the oldest half
            for key, _ in sorted(self._failures.items(), key=lambda kv: kv[1][1])[:50_000]:
                del self._failures[key]

    def succeeded(self, name: str, address: str | None = None) -> None:
        """A right password: the name's failures are forgotten, and the try `begin` counted from `address`."""
        with self._lock:
            self._failures.pop(f"name:{name.lower()}", None)
            key = f"addr:{address}"
            if address is not None and key in self._failures:
                count, last = self._failures[key]
                if count <= 1:
                    del self._failures[key]
                else:
                    self._failures[key] = (count - 1, last)


class FileThrottle(LoginThrottle):
    """LoginThrottle whose counts live in a file (0600, JSON), read and written under an exclusive lock around each
    step, so that separate short-lived processes (each `credit` command) share one count; wall-clock times."""

    def __init__(self, path: str | Path, free: int = FREE_FAILURES, max_wait: float = MAX_WAIT_S, clock=time.time):
        super().__init__(free, max_wait, clock)
        self.path = Path(path)

    @contextmanager
    def _shared(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+", encoding="utf-8") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                data = json.loads(fh.read() or "{}")
                self._failures = {str(k): (int(v[0]), float(v[1])) for k, v in data.items()}
            except (ValueError, TypeError, IndexError, AttributeError):
                self._failures = {}  # unreadable: counting starts again (only this account's owner can write it)
            yield
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps({k: list(v) for k, v in self._failures.items()}))

    def wait_seconds(self, name: str, address: str) -> float:
        with self._shared():
            return super().wait_seconds(name, address)

    def begin(self, name: str, address: str) -> float:
        with self._shared():
            return super().begin(name, address)

    def failed(self, name: str, address: str) -> None:
        with self._shared():
            super().failed(name, address)

    def succeeded(self, name: str, address: str | None = None) -> None:
        with self._shared():
            super().succeeded(name, address)


class Authenticator:
    """Accounts + throttle + a bound on concurrent scrypt checks: the one place a password is checked."""

    MAX_PARALLEL_CHECKS = 2

    def __init__(self, accounts: dict[str, Account], throttle: LoginThrottle | None = None) -> None:
        self.accounts = dict(accounts)
        self.throttle = throttle or LoginThrottle()
        self._slots = threading.BoundedSemaphore(self.MAX_PARALLEL_CHECKS)

    def check(self, name: str, password: str, address: str) -> tuple[Account | None, float]:
        """(account, 0) on success; (None, seconds to wait) when throttled; (None, 0) on a wrong name/password."""
        name = name.strip()
        wait = self.throttle.begin(name, address)
        if wait > 0:
            return None, wait
        account = self.accounts.get(name)
        with self._slots:
            ok = verify_password(password, account.password_hash if account else _DUMMY_HASH)
        if ok and account is not None:
            self.throttle.succeeded(name, address)
            return account, 0.0
        return None, 0.0
