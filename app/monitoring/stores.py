"""Where monitoring reads and writes: the operational store (prediction log, outcomes) and the data file
(clients' attributes, labels). One place to change when the store moves to its own file."""

from __future__ import annotations

import apsw

from app.config import Settings
from app.monitoring import outcomes


def store_path(settings: Settings) -> str:
    """The file holding `prediction_log` and `outcomes` (today the data file)."""
    return str(settings.db_path)


def open_store(settings: Settings, *, write: bool = False) -> apsw.Connection:
    """A connection to the store with the outcomes table present (created if absent)."""
    from pathlib import Path

    from app.db import DatabaseMissingError, connect

    path = store_path(settings)
    if not Path(path).is_file():
        raise DatabaseMissingError(f"database {path} does not exist (run `credit ingest` first, or pass --db)")
    conn = connect(path)
    try:
        if write or not _has_outcomes(conn):
            outcomes.ensure_schema(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def open_data(settings: Settings) -> apsw.Connection:
    from app.db import connect

    return connect(settings.db_path, readonly=True)


def _has_outcomes(conn: apsw.Connection) -> bool:
    return bool(conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outcomes'").fetchall())
