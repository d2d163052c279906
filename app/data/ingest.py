"""Import the eight Home Credit CSV files into SQLite (apsw), then build the per-client features.

Same code path for the real Kaggle download and for `credit generate` output.

* Expected columns and types come from `app/data/kaggle_schema.json` only
  (int64 -> INTEGER, float64 -> REAL, object -> TEXT). Extra CSV columns are ignored with a warning.
* CSVs are read with pyarrow.csv in blocks with explicit column types, inserted with apsw
  `executemany` inside one transaction per file; indexes on the keys are created afterwards.
* The database is built in `<db>.tmp` (journal off, synchronous off) and moved over `<db>` with
  `os.replace()` only when everything succeeded, so a failed ingest never leaves a half-written
  database and never damages an existing one.
* Every problem is an `IngestError` (an `app.errors.CreditError`) naming the file, the column and,
  when a value cannot be parsed, the line (1 = the header line; one record per line).
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import apsw
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from tqdm import tqdm

from app.data import SCHEMA_PATH, load_schema  # noqa: F401 (re-exported)
from app.data.features import quote_ident, read_sql
from app.data.finite import FLOAT32_MAX
from app.errors import CreditError

SQL_TYPES = {"int64": "INTEGER", "float64": "REAL", "object": "TEXT"}
ARROW_TYPES = {"int64": pa.int64(), "float64": pa.float64(), "object": pa.string()}
# What an empty cell can look like (pandas writes "" for NaN).
NULL_VALUES = ["", "NaN", "nan"]
BLOCK_SIZE = 8 << 20  # bytes of CSV parsed per block
CACHE_KIB = 1 << 20  # page cache of the build connection (1 GiB)

# key columns: never empty; indexed after the load
KEYS: dict[str, tuple[str, ...]] = {
    "application_train": ("SK_ID_CURR",),
    "application_test": ("SK_ID_CURR",),
    "bureau": ("SK_ID_CURR", "SK_ID_BUREAU"),
    "bureau_balance": ("SK_ID_BUREAU",),
    "previous_application": ("SK_ID_CURR", "SK_ID_PREV"),
    "pos_cash_balance": ("SK_ID_CURR", "SK_ID_PREV"),
    "installments_payments": ("SK_ID_CURR", "SK_ID_PREV"),
    "credit_card_balance": ("SK_ID_CURR", "SK_ID_PREV"),
}


class IngestError(CreditError):
    """A problem with the input files; the message names file, column and line when known."""


class IngestWarning(UserWarning):
    """Something was ignored (e.g. an extra CSV column)."""


# --------------------------------------------------------------------------- schema helpers


def table_name(file_name: str) -> str:
    """`POS_CASH_balance.csv` -> `pos_cash_balance`."""
    return file_name.removesuffix(".csv").lower()


def raw_table_ddl(table: str, columns: list[tuple[str, str]]) -> str:
    cols = ",\n  ".join(f"{quote_ident(c)} {SQL_TYPES[t]}" for c, t in columns)
    return f"CREATE TABLE {quote_ident(table)} (\n  {cols}\n)"


# --------------------------------------------------------------------------- CSV reading


def read_header(path: Path, label: str) -> list[str]:
    """Column names of the first line; clear errors for empty / non-UTF-8 files."""
    with open(path, "rb") as f:
        first = f.readline()
    if not first.strip():
        raise IngestError(f"{label}: the file is empty (no header line)")
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError:
        raise IngestError(f"{label} line 1: the header is not valid UTF-8 (re-save the file as UTF-8)") from None
    text = text.removeprefix("\ufeff")
    return [c.strip() for c in next(csv.reader([text]))]


def check_not_truncated(path: Path, label: str) -> None:
    """A complete CSV written by pandas (Kaggle, generator) ends with a newline."""
    size = path.stat().st_size
    if size == 0:
        raise IngestError(f"{label}: the file is empty (0 bytes)")
    with open(path, "rb") as f:
        f.seek(size - 1)
        if f.read(1) not in (b"\n", b"\r"):
            raise IngestError(f"{label}: the file does not end with a newline; it looks truncated")


def _open_reader(
    source, header: list[str], columns: list[tuple[str, str]], block_size: int
) -> pacsv.CSVStreamingReader:
    # column names from our own parse of line 1 (stripped, BOM removed), not pyarrow's
    return pacsv.open_csv(
        source,
        read_options=pacsv.ReadOptions(block_size=block_size, use_threads=True, column_names=header, skip_rows=1),
        parse_options=pacsv.ParseOptions(newlines_in_values=False),
        convert_options=pacsv.ConvertOptions(
            column_types={c: ARROW_TYPES[t] for c, t in columns},
            include_columns=[c for c, _ in columns],
            null_values=NULL_VALUES,
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )


_CONVERSION = re.compile(
    r"In CSV column #(\d+): (?:Row #(\d+): )?CSV conversion error to (\w+): invalid value '(.*)'", re.S
)
_UTF8 = re.compile(r"In CSV column #(\d+): (?:Row #(\d+): )?CSV conversion error to \w+: invalid UTF8 data")
_COLUMNS = re.compile(r"Expected (\d+) columns, got (\d+): (.*)", re.S)
_TYPE_WORDS = {"double": "a number", "int64": "an integer"}


def _first_line_matching(path: Path, wanted: str) -> int | None:
    """1-based number of the first line whose text is `wanted` (error path only)."""
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if line.rstrip(b"\r\n").decode("utf-8", "replace") == wanted:
                return n
    return None


def _first_non_utf8_line(path: Path) -> int | None:
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return n
    return None


def _line_of_value(path: Path, header: list[str], column: str, value: str, block_size: int) -> int | None:
    """Line of the first cell of `column` equal to `value` (read the column as text)."""
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=block_size, column_names=header, skip_rows=1),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types={column: pa.string()}, include_columns=[column], check_utf8=False
            ),
        )
        seen = 0
        for batch in reader:
            idx = pc.index(batch.column(0), pa.scalar(value, pa.string())).as_py()
            if idx >= 0:
                return seen + idx + 2
            seen += batch.num_rows
    except (pa.ArrowException, OSError):
        return None
    return None


def explain_arrow_error(exc: Exception, path: Path, label: str, header: list[str], block_size: int) -> IngestError:
    """Turn a pyarrow CSV error into a message naming the file, the column and the line."""
    msg = str(exc)
    if "Empty CSV file" in msg:
        return IngestError(f"{label}: the file is empty")
    m = _UTF8.search(msg)
    if m:
        col = header[int(m.group(1))] if int(m.group(1)) < len(header) else f"#{m.group(1)}"
        line = _first_non_utf8_line(path)
        where = f" line {line}" if line else ""
        return IngestError(f"{label}{where} column {col}: text is not valid UTF-8 (re-save the file as UTF-8)")
    m = _CONVERSION.search(msg)
    if m:
        col = header[int(m.group(1))] if int(m.group(1)) < len(header) else f"#{m.group(1)}"
        value = m.group(4)
        line = _line_of_value(path, header, col, value, block_size) if col in header else None
        where = f" line {line}" if line else ""
        shown = value if len(value) <= 60 else value[:57] + "..."
        what = _TYPE_WORDS.get(m.group(3), m.group(3))
        return IngestError(f"{label}{where} column {col}: cannot parse {shown!r} as {what}")
    m = _COLUMNS.search(msg)
    if m:
        line = _first_line_matching(path, m.group(3))
        where = f" line {line}" if line else ""
        return IngestError(
            f"{label}{where}: expected {m.group(1)} columns, got {m.group(2)} (truncated or malformed row)"
        )
    if "straddling" in msg or "straddles" in msg:
        return IngestError(f"{label}: a row is longer than {block_size >> 20} MiB (or a quote is not closed)")
    return IngestError(f"{label}: cannot read the CSV: {msg.splitlines()[0] if msg else type(exc).__name__}")


def iter_batches(
    path: Path, label: str, columns: list[tuple[str, str]], header: list[str], block_size: int = BLOCK_SIZE
) -> Iterator[pa.RecordBatch]:
    """Record batches of exactly `columns` (in that order), with clear errors."""
    try:
        yield from _open_reader(path, header, columns, block_size)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise explain_arrow_error(exc, path, label, header, block_size) from None


# FLOAT32_MAX (app.data.finite): features are stored as float32, a larger raw number would become infinite


def first_non_finite(arr: pa.Array | pa.ChunkedArray) -> int | None:
    """Index of the first value that is infinite or beyond float32 (NaN/null are missing values), or None."""
    if not pa.types.is_floating(arr.type):
        return None
    bad = pc.fill_null(pc.greater(pc.abs(arr), pa.scalar(FLOAT32_MAX, arr.type)), False)
    if not pc.any(bad).as_py():
        return None
    return pc.index(bad, True).as_py()


NON_FINITE = "is not a finite number within float32 range (inf, -Infinity, 1e400 and longer numbers are refused)"


def batch_rows(batch: pa.RecordBatch, dtypes: list[str]) -> Iterator[tuple]:
    """Python rows for executemany. Numbers go through numpy (fast); NaN binds as SQL NULL."""
    cols = []
    for arr, t in zip(batch.columns, dtypes, strict=True):
        if t == "object":
            cols.append(arr.to_pylist())
        else:
            cols.append(arr.to_numpy(zero_copy_only=False).tolist())
    return zip(*cols, strict=True)


# --------------------------------------------------------------------------- loading


def load_table(
    conn: apsw.Connection,
    path: Path,
    file_name: str,
    columns: list[tuple[str, str]],
    *,
    keys: tuple[str, ...] = (),
    progress: bool = True,
    require_rows: bool = False,
) -> int:
    """Create the raw table and fill it from the CSV in one transaction. Returns the row count."""
    label = file_name
    if not path.is_file():
        raise IngestError(f"{label}: file not found in {path.parent}")
    check_not_truncated(path, label)
    header = read_header(path, label)
    dup = sorted({c for c in header if header.count(c) > 1 and c in dict(columns)})
    if dup:
        raise IngestError(f"{label}: column(s) appear twice in the header: {', '.join(dup)}")
    missing = [c for c, _ in columns if c not in header]
    if missing:
        raise IngestError(f"{label}: missing column(s) {', '.join(missing)}")
    expected = {c for c, _ in columns}
    extra = [c for c in header if c not in expected]
    if extra:
        warnings.warn(f"{label}: ignoring extra column(s) {', '.join(extra)}", IngestWarning, stacklevel=2)

    table = table_name(file_name)
    conn.execute(raw_table_ddl(table, columns))
    insert = f"INSERT INTO {quote_ident(table)} VALUES ({', '.join('?' * len(columns))})"
    dtypes = [t for _, t in columns]
    key_pos = [(i, c) for i, (c, _) in enumerate(columns) if c in keys]
    rows = 0
    with tqdm(
        total=path.stat().st_size,
        unit="B",
        unit_scale=True,
        desc=file_name,
        disable=not progress,
        leave=True,
        dynamic_ncols=True,
    ) as bar:
        conn.execute("BEGIN")
        for batch in iter_batches(path, label, columns, header):
            for i, c in key_pos:
                arr = batch.column(i)
                if arr.null_count:
                    first = pc.index(pc.is_null(arr), True).as_py()
                    raise IngestError(f"{label} line {rows + first + 2} column {c}: the key is empty")
            for i, (c, _t) in enumerate(columns):
                first = first_non_finite(batch.column(i))
                if first is not None:
                    value = batch.column(i)[first].as_py()
                    raise IngestError(f"{label} line {rows + first + 2} column {c}: {value!r} {NON_FINITE}")
            conn.executemany(insert, batch_rows(batch, dtypes))
            rows += batch.num_rows
            bar.update(min(BLOCK_SIZE, bar.total - bar.n))  # one batch ~ one block of the file
        conn.execute("COMMIT")
        bar.update(bar.total - bar.n)
    if require_rows and rows == 0:
        raise IngestError(f"{label}: the file has a header but no data rows")
    return rows


def _check_applications(conn: apsw.Connection) -> None:
    for table in ("application_train", "application_test"):
        dup = conn.execute(f"SELECT SK_ID_CURR FROM {table} GROUP BY SK_ID_CURR HAVING count(*) > 1 LIMIT 1").fetchall()
        if dup:
            raise IngestError(f"{table}.csv column SK_ID_CURR: client {dup[0][0]} appears more than once")
    both = conn.execute(
        "SELECT SK_ID_CURR FROM application_train INTERSECT SELECT SK_ID_CURR FROM application_test LIMIT 1"
    ).fetchall()
    if both:
        raise IngestError(f"client SK_ID_CURR {both[0][0]} is in both application_train.csv and application_test.csv")
    bad = conn.execute(
        "SELECT rowid, TARGET FROM application_train WHERE TARGET IS NULL OR TARGET NOT IN (0, 1) LIMIT 1"
    ).fetchall()
    if bad:
        rowid, value = bad[0]
        raise IngestError(f"application_train.csv line {rowid + 1} column TARGET: must be 0 or 1, got {value!r}")


def create_indexes(conn: apsw.Connection, tables: list[str]) -> None:
    for table in tables:
        for key in KEYS.get(table, ()):
            unique = "UNIQUE " if table.startswith("application_") else ""
            conn.execute(f"CREATE {unique}INDEX {table}_{key.lower()} ON {table}({key})")


def bulk_pragmas(conn: apsw.Connection) -> None:
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA locking_mode=EXCLUSIVE")
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    conn.execute(f"PRAGMA temp.cache_size=-{CACHE_KIB // 2}")


def finish_database(conn: apsw.Connection, tmp: Path, db_path: Path) -> None:
    """Analyze, close, then atomically move the temp file over the target.

    The data file is left in rollback-journal mode (DELETE): it is read-only once built (the API opens it
    read-only, the log is in the operational store), so readers create no -wal/-shm beside it, and a later
    re-import can rename a new file over it while an API is reading the old one.
    """
    conn.execute("PRAGMA locking_mode=NORMAL")
    conn.execute("PRAGMA analysis_limit=1000")  # approximate statistics: seconds, not minutes
    conn.execute("ANALYZE")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    _remove_side_files(db_path)  # a -wal left by an older WAL-mode file would be replayed onto the new one
    os.replace(tmp, db_path)
    _remove_side_files(db_path)  # and one created by a reader of the old file in between
    dir_fd = os.open(db_path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)


def _remove_side_files(db_path: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(str(db_path) + suffix).unlink(missing_ok=True)


def keep_log(db_path: Path, log_db: Path | None, notify: Callable[[str], None] | None = None) -> None:
    """Before `db_path` is replaced: copy a prediction log kept inside it by an earlier version into the store
    (`notify` is told how many rows moved)."""
    from app import store

    if not db_path.is_file():
        return
    conn = store.open_store(store.default_path(db_path) if log_db is None else log_db)
    try:
        added = store.import_legacy(conn, db_path)
    finally:
        conn.close()
    if added and notify is not None:
        notify(f"{db_path}: {added} prediction log rows moved to the operational store first")


def remove_temp(tmp: Path) -> None:
    for p in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm"), Path(str(tmp) + "-journal")):
        p.unlink(missing_ok=True)


@contextlib.contextmanager
def building_database(
    db_path: Path, log_db: Path | None = None, notify: Callable[[str], None] | None = None
) -> Iterator[apsw.Connection]:
    """A bulk-load connection to `<db>.tmp` holding the empty schema, moved over `db_path` when the block succeeds.

    Before the move, a prediction log still inside the old `db_path` (earlier versions kept it there) is copied
    into the operational store `log_db` (default beside the database), so a re-import never loses a log row.

    On any failure the temporary files are removed and `db_path` is left as it was; a database or value error
    becomes an IngestError naming the temporary file.
    """
    db_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = db_path.with_name(db_path.name + ".tmp")
    remove_temp(tmp)
    conn = None
    try:
        conn = apsw.Connection(str(tmp))
        bulk_pragmas(conn)
        conn.execute(read_sql("schema.sql"))
        yield conn
        keep_log(db_path, log_db, notify)
        finish_database(conn, tmp, db_path)
    except BaseException as exc:
        if conn is not None:
            conn.close()
        remove_temp(tmp)
        if isinstance(exc, apsw.Error | ValueError) and not isinstance(exc, IngestError):
            raise IngestError(f"building {tmp} failed: {type(exc).__name__}: {exc}") from exc
        raise


def write_meta(conn: apsw.Connection, source: str, fingerprint: str, feature_sql: str) -> None:
    from app.data.features import schema_fingerprint

    conn.execute("DELETE FROM meta")
    conn.executemany(
        "INSERT INTO meta(key, value) VALUES (?, ?)",
        [
            ("source", source),
            ("data_fingerprint", fingerprint),
            ("schema_fingerprint", schema_fingerprint(conn, source, feature_sql)),
            ("ingested_at", datetime.now(UTC).isoformat(timespec="seconds")),
        ],
    )


def ingest(
    data_dir: Path,
    db_path: Path,
    progress: bool = True,
    log_db: Path | None = None,
    notify: Callable[[str], None] | None = None,
) -> None:
    """Import the eight Home Credit CSVs from `data_dir` and build features into `db_path` (replaced at the end,
    atomically; the operational store `log_db` is never touched except to receive an old in-file log, which
    `notify` is told about). Ignored input is an `IngestWarning` (warnings module)."""
    from app.data.features import build_features, data_fingerprint, home_credit_feature_sql

    data_dir, db_path = Path(data_dir), Path(db_path)
    if not data_dir.is_dir():
        raise IngestError(f"data folder not found: {data_dir}")
    schema = load_schema()
    # fail fast on a missing file, before any work
    by_lower = {p.name.lower(): p for p in data_dir.iterdir() if p.is_file()}
    paths = {name: by_lower.get(name.lower(), data_dir / name) for name in schema}  # Kaggle names, any case
    absent = [name for name, path in paths.items() if not path.is_file()]
    if absent:
        raise IngestError(f"missing file(s) in {data_dir}: {', '.join(absent)}")

    with building_database(db_path, log_db, notify) as conn:
        tables = []
        for file_name, columns in schema.items():
            table = table_name(file_name)
            load_table(
                conn,
                paths[file_name],
                file_name,
                columns,
                keys=KEYS.get(table, ()),
                progress=progress,
                require_rows=table == "application_train",
            )
            tables.append(table)
        _check_applications(conn)
        create_indexes(conn, tables)
        conn.execute("BEGIN")
        conn.execute("INSERT INTO labels(client_id, target) SELECT SK_ID_CURR, TARGET FROM application_train")
        build_features(conn, progress=progress)
        write_meta(conn, "home-credit", data_fingerprint(conn), home_credit_feature_sql())
        conn.execute("COMMIT")
