"""Where monitoring reads and writes: the operational store (prediction log, outcomes; app.store, migrated on
open) and the data file (clients' attributes, labels; read-only)."""

from __future__ import annotations

import apsw

from app.config import Settings
from app.errors import CreditError


class StoreUnavailable(CreditError, RuntimeError):
    """A file cannot be opened (the message names it and the cause)."""


def open_store(settings: Settings) -> apsw.Connection:
    """The operational store, created and migrated as needed; an old in-file log is copied in once."""
    from app import store

    try:
        conn = store.open_store(settings.log_db_path)
        store.import_legacy(conn, settings.db_path)
    except store.StoreError as exc:
        raise StoreUnavailable(str(exc)) from None
    return conn


def open_data(settings: Settings) -> apsw.Connection:
    from app.scoring.db import DatabaseMissingError, connect

    try:
        return connect(settings.db_path, readonly=True)
    except DatabaseMissingError as exc:
        raise StoreUnavailable(str(exc)) from None
