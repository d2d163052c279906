"""API keys and roles.

Keys come from `settings.api_keys` ("key1:officer,key2:admin"), or when that is empty from
`settings.keys_file` (same `key:role` entries, one per line or comma separated, lines starting with `#` ignored).
Roles are ordered: officer < risk < admin (a key may do everything a lower role's key may). `risk` is the risk
team: it records outcomes (POST /outcomes) and reads realised performance and fairness.
A request presents `Authorization: Bearer KEY`. The presented key is compared with EVERY configured
key using `hmac.compare_digest`, so the time taken does not depend on which key (if any) matched.
Keys are never logged, echoed in a response or put in an error message.

The dashboard's keys (CREDIT_UI_KEY, else the first officer key and the first admin key: `dashboard_keys`) may
also name the logged-in dashboard user in `X-Credit-User` (app.service.http.check_user); the prediction log
records that name. Any other key naming a user is refused (403), so a user name in the log was vouched for by
the dashboard: give other API clients keys of their own (later entries of the same role).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from pathlib import Path

from app.errors import CreditError

ROLES = ("officer", "risk", "admin")  # increasing privilege
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}


class KeyConfigError(CreditError, ValueError):
    """The key configuration is malformed (the message never contains a key)."""


def config_entries(text: str) -> Iterator[tuple[int, str]]:
    """(line number, entry) of a setting holding entries separated by commas or newlines, `#` lines skipped."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("#"):
            continue
        for entry in line.split(","):
            if entry.strip():
                yield lineno, entry.strip()


def parse_keys(text: str, source: str = "CREDIT_API_KEYS") -> list[tuple[bytes, str]]:
    """Parse `key:role` entries separated by commas or newlines; returns [(key bytes, role)]."""
    keys: list[tuple[bytes, str]] = []
    for lineno, entry in config_entries(text):
        key, sep, role = entry.rpartition(":")
        key, role = key.strip(), role.strip()
        if not sep or not key:
            raise KeyConfigError(f"{source} line {lineno}: an entry is not of the form key:role")
        if role not in ROLE_RANK:
            raise KeyConfigError(f"{source} line {lineno}: unknown role {role!r} (expected one of {ROLES})")
        if any(c.isspace() for c in key):
            raise KeyConfigError(f"{source} line {lineno}: a key contains white space")
        keys.append((key.encode(), role))
    return keys


def load_keys(api_keys: str, keys_file: str | Path | None) -> list[tuple[bytes, str]]:
    """Keys from the settings string, else from the keys file (missing file -> no keys)."""
    if api_keys.strip():
        return parse_keys(api_keys)
    if keys_file:
        path = Path(keys_file)
        if path.is_file():
            return parse_keys(path.read_text(), source=str(path))
    return []


class KeyRing:
    def __init__(self, keys: list[tuple[bytes, str]], ui_key: str = ""):
        self._keys = list(keys)
        officer, admin = self.dashboard_keys(ui_key)
        self._trusted = [k.encode() for k in {officer, admin} if k]  # may name a dashboard user

    @classmethod
    def from_settings(cls, settings) -> KeyRing:
        """The keys of `settings` (CREDIT_API_KEYS, else the keys file): the one way keys are read."""
        return cls(load_keys(settings.api_keys, settings.keys_file), settings.ui_key)

    def dashboard_keys(self, ui_key: str = "") -> tuple[str, str]:
        """(key for the dashboard's client and model pages, key for its monitoring pages): `ui_key`
        (CREDIT_UI_KEY) for both when set, else the first officer key and the first admin key, each falling
        back on the other when the ring has only one of the two roles."""
        if ui_key:
            return ui_key, ui_key
        officer, admin = self.first_with_role("officer"), self.first_with_role("admin")
        return officer or admin or "", admin or officer or ""

    def may_name_user(self, authorization: str | None) -> bool:
        """Whether the bearer key in an Authorization header value is one of the dashboard's (constant time)."""
        scheme, _, presented = (authorization or "").strip().partition(" ")
        candidate = presented.strip().encode("utf-8", "surrogateescape")
        found = False
        for key in self._trusted:
            found |= hmac.compare_digest(candidate, key)
        return found and scheme.lower() == "bearer"

    def __len__(self) -> int:
        return len(self._keys)

    def role_for(self, authorization: str | None) -> str | None:
        """Role of the bearer key in an Authorization header value, or None (missing/unknown)."""
        if not authorization:
            return None
        scheme, _, presented = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        candidate = presented.strip().encode("utf-8", "surrogateescape")
        found: str | None = None
        for key, role in self._keys:  # no early exit: constant time over the key list
            if hmac.compare_digest(candidate, key) and found is None:
                found = role
        return found

    @staticmethod
    def allows(role: str, required: str) -> bool:
        return ROLE_RANK[role] >= ROLE_RANK[required]

    def first_with_role(self, role: str) -> str | None:
        for key, r in self._keys:
            if r == role:
                return key.decode()
        return None

    def client_key(self, preferred: str = "", role: str = "admin") -> str | None:
        """The key a client of the API presents: `preferred` (CREDIT_UI_KEY) if set, else the first key
        with `role`, else the first key (None when there are none)."""
        if preferred:
            return preferred
        key = self.first_with_role(role)
        if key is None and self._keys:
            key = self._keys[0][0].decode()
        return key
