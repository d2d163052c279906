"""apsw connection factory: pragmas, and the compiled model loaded as an SQLite extension.

`connect(db, bundle)` loads the library of a verified app.scoring.bundle.ModelBundle (a model folder path
is verified first) as an extension: that same versioned file (model_dir/model-<id12>.so, never the
score.so symlink: dlopen caches by path) with entry point sqlite3_score_init. The connection then has score(client_id),
decision(client_id), score_features(blob), model_id(), model_threshold(), the eponymous table
score_model_info, and the TEMP views of sql/views.sql. A connection keeps the model it was opened
with for its whole life; connections opened after `credit compile` get the new one.

`connect(db, champion, challenger=bundle)` (or `load_model(conn, bundle, challenger=True)`) also loads a
challenger's library with the entry point sqlite3_challenger_init: challenger_score(client_id),
challenger_decision(client_id), challenger_score_features(blob), challenger_model_id(),
challenger_model_threshold() (score_ext_challenger.c), beside the champion's names.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import apsw

from app import SQL_DIR, store
from app.scoring.bundle import ModelBundle, ModelError

VIEWS_SQL = SQL_DIR / "views.sql"
ENTRY_POINT = "sqlite3_score_init"
CHALLENGER_ENTRY_POINT = "sqlite3_challenger_init"
BUSY_TIMEOUT_MS = 5000

__all__ = [
    "BUSY_TIMEOUT_MS",
    "DatabaseMissingError",
    "ModelError",
    "connect",
    "file_stamp",
    "load_model",
    "read_meta",
    "verify_data",
]


class DatabaseMissingError(FileNotFoundError):
    """The database file does not exist (and we refuse to create an empty one)."""


def _apply_pragmas(conn: apsw.Connection, readonly: bool) -> None:
    conn.set_busy_timeout(BUSY_TIMEOUT_MS)
    # double-quoted strings are identifiers only ("abc" is never a string literal)
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DML, 0)
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DDL, 0)
    conn.pragma("foreign_keys", True)
    if not readonly and not conn.readonly("main"):
        store.switch_to_wal(conn, BUSY_TIMEOUT_MS)
        conn.pragma("synchronous", "normal")  # durable enough in WAL mode, much cheaper commits


def as_bundle(model: ModelBundle | Path | str) -> ModelBundle:
    return model if isinstance(model, ModelBundle) else ModelBundle.load(model)


def load_model(conn: apsw.Connection, model: ModelBundle | Path | str, *, challenger: bool = False) -> ModelBundle:
    """Load the verified library of `model` into `conn`, then create the TEMP views (with challenger=True: its
    challenger_* functions, no views).

    Raises app.scoring.bundle.ModelError when the folder, manifest or library is wrong.
    """
    model = as_bundle(model)
    # Enable the C API loader only (not the SQL load_extension() function), and only for this call.
    previous = conn.config(apsw.SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, -1)
    conn.config(apsw.SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1)
    try:
        conn.load_extension(model.model.load_path, CHALLENGER_ENTRY_POINT if challenger else ENTRY_POINT)
    except apsw.ExtensionLoadingError as exc:
        if challenger:
            raise ModelError(
                f"{model.library_path}: cannot load as the challenger's SQL functions ({exc}); libraries compiled "
                "before challengers existed lack sqlite3_challenger_init: re-run `credit compile --challenger`"
            ) from None
        raise ModelError(f"{model.library_path}: cannot load as an SQLite extension: {exc}") from None
    finally:
        conn.config(apsw.SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, previous)
    sql_id = conn.execute(f"SELECT {'challenger_' if challenger else ''}model_id()").get
    if sql_id != model.model_id:
        raise ModelError(f"{model.library_path}: SQL model_id() is {sql_id}, manifest says {model.model_id}")
    if not challenger:
        conn.execute(VIEWS_SQL.read_text(encoding="utf-8"))
    return model


def read_meta(conn: apsw.Connection) -> dict[str, str]:
    """The database's meta table (source, data and schema fingerprints...); empty when it has none."""
    try:
        return {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM main.meta")}
    except apsw.SQLError:
        return {}


def verify_data(conn: apsw.Connection, bundle: ModelBundle, *, allow_other: bool = False) -> str | None:
    """Refuse (DataMismatchError) a database whose features are not the ones `bundle` was trained on.

    With allow_other, return the mismatch as a warning for the caller to log instead."""
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM main.feature_names ORDER BY idx")]
    except apsw.SQLError:
        names = []
    return bundle.check_data(read_meta(conn), names, db_label=conn.filename or "(memory)", allow_other=allow_other)


def connect(
    db_path: Path | str,
    model: ModelBundle | Path | str | None = None,
    *,
    readonly: bool = False,
    challenger: ModelBundle | Path | str | None = None,
    immutable: bool = False,
) -> apsw.Connection:
    """Open `db_path` with the project's pragmas; with a model bundle (or folder), load the scoring functions.

    readonly opens with SQLITE_OPEN_READONLY. A missing file raises DatabaseMissingError when
    readonly or when a model is loaded (a scoring connection never creates an empty database);
    otherwise the file is created.

    immutable (with readonly): the caller promises the file does not change while the connection is open and
    reopens it when it does (the API: app.service.state.Service.conn compares the file's stamp on every
    request). SQLite then takes no file lock and re-reads no change counter per statement (`immutable=1`):
    for a rollback-journal file, as `credit ingest` leaves it, that is 8-9 system calls less per statement. A
    WAL-mode file is opened as usual (its readers must see the write-ahead log).
    """
    path = Path(db_path)
    must_exist = readonly or model is not None
    if must_exist and not path.is_file():
        raise DatabaseMissingError(f"database {path} does not exist (run `credit ingest` first, or pass --db)")
    if readonly:
        flags = apsw.SQLITE_OPEN_READONLY
    else:
        flags = apsw.SQLITE_OPEN_READWRITE | (0 if must_exist else apsw.SQLITE_OPEN_CREATE)
    name = str(path)
    if immutable and readonly and not _wal_mode(path):
        name, flags = f"file:{quote(str(path.resolve()))}?immutable=1", flags | apsw.SQLITE_OPEN_URI
    conn = apsw.Connection(name, flags=flags)
    try:
        _apply_pragmas(conn, readonly)
        if model is not None:
            load_model(conn, model)
        if challenger is not None:
            load_model(conn, challenger, challenger=True)
    except BaseException:
        conn.close()
        raise
    return conn


def _wal_mode(path: Path) -> bool:
    """Whether the database file's header says WAL mode (file format bytes 18-19 are 2; 1 is rollback)."""
    try:
        with path.open("rb") as f:
            header = f.read(20)
    except OSError:
        return False
    return header[18:20] == b"\x02\x02"


def file_stamp(path: Path | str) -> tuple[int, ...] | None:
    """What changes when a file is rewritten, replaced or touched: (device, inode, size, mtime, ctime) now, or
    None when there is none. `credit ingest` replaces the data file with a new one (a new inode); a write in place
    changes its size or times: a connection opened on the old file can tell by comparing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
