"""The operational store: the prediction log and other operational history, in a SQLite file of its own.

Client data (the data database, `--db`) is replaced wholesale by every `credit ingest`; what happened in
production (every score served, outcomes, monitoring history) must outlive that, so it lives here, in the
file `--log-db` (env CREDIT_LOG_DB; default next to the data database: data/credit.db -> data/credit-log.db).

- `open_store(path)` opens (creating if needed) the file in WAL mode and brings its schema up to date:
  `PRAGMA user_version` is the number of the last migration applied; the scripts `sql/store/NNN_name.sql` with
  a higher number are applied in order, each in one `BEGIN IMMEDIATE` transaction that also sets
  `user_version`, so several processes opening the store at once apply each migration exactly once.
- A store whose user_version is above the highest script (written by a newer version) is refused.
- `import_legacy(store, data_db)` copies the `prediction_log` of a data database written by an earlier
  version (which kept the log inside the data file) into the store, once per source file and idempotently
  (INSERT OR IGNORE by request_id). The API does it at startup and `credit ingest` before it replaces a file.

Imports only the standard library and apsw (the API imports it).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import apsw

from app import SQL_DIR
from app.errors import CreditError

MIGRATIONS_DIR = SQL_DIR / "store"
MIGRATION_NAME = re.compile(r"([0-9]{3})_[a-z0-9_]+\.sql")
BUSY_TIMEOUT_MS = 30_000

__all__ = [
    "StoreError",
    "default_path",
    "import_legacy",
    "migrate",
    "migrations",
    "open_store",
    "schema_version",
    "switch_to_wal",
]


class StoreError(CreditError, RuntimeError):
    """The store cannot be opened or migrated (the message names the file and the cause)."""


def default_path(db_path: str | Path) -> Path:
    """The store beside a data database: data/credit.db -> data/credit-log.db."""
    db = Path(db_path)
    return db.with_name(f"{db.stem}-log{db.suffix or '.db'}")


def migrations(folder: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    """(number, script) for every sql/store/NNN_name.sql, in order; numbers must run 1, 2, 3, ... without gaps."""
    found = []
    for path in folder.iterdir():
        m = MIGRATION_NAME.fullmatch(path.name)
        if m:
            found.append((int(m.group(1)), path))
        elif path.suffix == ".sql":
            raise StoreError(f"{path}: a store migration is named NNN_name.sql (three digits, lower case)")
    found.sort()
    numbers = [n for n, _ in found]
    if numbers != list(range(1, len(found) + 1)):
        raise StoreError(f"{folder}: migrations must be numbered 1..N without gaps or repeats, found {numbers}")
    return found


def schema_version(conn: apsw.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchall()[0][0])


def migrate(conn: apsw.Connection, folder: Path = MIGRATIONS_DIR) -> int:
    """Apply the missing migrations in order, each in one transaction; returns the schema version."""
    scripts = migrations(folder)
    latest = scripts[-1][0] if scripts else 0
    if schema_version(conn) > latest:
        raise StoreError(
            f"{conn.filename}: store schema version {schema_version(conn)} is newer than this program's ({latest})"
        )
    for number, path in scripts:
        if schema_version(conn) >= number:  # cheap check first; re-checked under the write lock
            continue
        sql = path.read_text(encoding="utf-8")
        conn.execute("BEGIN IMMEDIATE")
        try:
            if schema_version(conn) < number:  # another process may have applied it meanwhile
                conn.execute(sql)
                conn.execute(f"PRAGMA user_version = {number:d}")
            conn.execute("COMMIT")
        except BaseException as exc:
            if not conn.get_autocommit():
                conn.execute("ROLLBACK")
            if isinstance(exc, apsw.Error):
                raise StoreError(f"{conn.filename}: migration {path.name} failed: {type(exc).__name__}: {exc}") from exc
            raise
    return schema_version(conn)


def switch_to_wal(conn: apsw.Connection, timeout_ms: int = BUSY_TIMEOUT_MS) -> str:
    """The journal mode after asking for WAL. Two processes switching a new file at once both hold a shared lock
    and want an exclusive one: SQLite answers one of them BUSY at once, without its busy handler (that wait
    could deadlock), so the switch is retried here for up to the busy timeout."""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        try:
            mode = str(conn.execute("PRAGMA journal_mode").fetchall()[0][0]).lower()
            if mode != "wal":
                mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchall()[0][0]).lower()
            return mode
        except apsw.BusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def open_store(path: str | Path, *, readonly: bool = False) -> apsw.Connection:
    """A connection to the store at `path`, created and migrated as needed (readonly: must exist, no migration).

    Raises StoreError naming the file when it cannot be opened, put in WAL mode or migrated.
    """
    path = Path(path)
    if readonly and not path.is_file():
        raise StoreError(f"operational store {path} does not exist (nothing logged yet?)")
    try:
        if not readonly:
            path.parent.mkdir(parents=True, exist_ok=True)
        flags = apsw.SQLITE_OPEN_READONLY if readonly else apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
        conn = apsw.Connection(str(path), flags=flags)
    except (apsw.Error, OSError) as exc:
        raise StoreError(f"operational store {path}: cannot open: {type(exc).__name__}: {exc}") from exc
    try:
        conn.set_busy_timeout(BUSY_TIMEOUT_MS)
        conn.config(apsw.SQLITE_DBCONFIG_DQS_DML, 0)
        conn.config(apsw.SQLITE_DBCONFIG_DQS_DDL, 0)
        if not readonly:
            if conn.readonly("main"):
                raise StoreError(f"operational store {path} is read-only (check the file's and folder's permissions)")
            mode = switch_to_wal(conn)
            if mode != "wal":
                raise StoreError(f"operational store {path}: cannot switch to WAL (journal_mode is {mode})")
            migrate(conn)
    except StoreError:
        conn.close()
        raise
    except apsw.Error as exc:
        conn.close()
        raise StoreError(f"operational store {path}: {type(exc).__name__}: {exc}") from exc
    return conn


LEGACY_COLUMNS = "ts, request_id, client_id, features, probability, decision, model_id, latency_ms, role, endpoint"


def import_legacy(store: apsw.Connection, data_db: str | Path) -> int:
    """Copy the prediction_log of an old-layout data database into the store; returns the rows added.

    Runs once per source file (recorded in `legacy_import` with the source's max(id) and count: a source that
    grew since is copied again, and INSERT OR IGNORE by request_id keeps that idempotent). A data database
    without a prediction_log table, or a missing file, adds nothing.
    """
    data_db = Path(data_db)
    if not data_db.is_file():
        return 0
    source = str(data_db.resolve())
    try:
        src = apsw.Connection(str(data_db), flags=apsw.SQLITE_OPEN_READONLY)
    except apsw.Error:
        return 0
    try:
        src.set_busy_timeout(BUSY_TIMEOUT_MS)
        has = src.execute("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'prediction_log'")
        if not has.fetchall()[0][0]:
            return 0
        max_id, rows = src.execute("SELECT coalesce(max(id), 0), count(*) FROM prediction_log").fetchall()[0]
        seen = store.execute("SELECT max_id, rows FROM legacy_import WHERE source = ?", (source,)).fetchall()
        if seen and tuple(seen[0]) == (max_id, rows):
            return 0
        before = store.execute("SELECT count(*) FROM prediction_log").fetchall()[0][0]
        store.execute("BEGIN IMMEDIATE")
        try:
            store.executemany(
                f"INSERT OR IGNORE INTO prediction_log ({LEGACY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                src.execute(f"SELECT {LEGACY_COLUMNS} FROM prediction_log ORDER BY id"),
            )
            added = store.execute("SELECT count(*) FROM prediction_log").fetchall()[0][0] - before
            store.execute(
                "INSERT OR REPLACE INTO legacy_import (source, max_id, rows, copied, ts) VALUES (?, ?, ?, ?, ?)",
                (source, max_id, rows, added, time.time()),
            )
            store.execute("COMMIT")
        except BaseException:
            if not store.get_autocommit():
                store.execute("ROLLBACK")
            raise
        return int(added)
    finally:
        src.close()
