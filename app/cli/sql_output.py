"""The output of `credit sql`, bounded in time, bytes and memory whatever the query.

- Time: the SQLite progress handler stops the VM at the deadline, and every row written checks the same
  deadline, so fetching, encoding and writing all count (`TimeLimit`).
- Bytes: at most `max_bytes` bytes of output (`OutputCap`); nothing is written beyond it.
- Memory: rows are encoded one at a time. csv goes straight to stdout; json is spooled to an unnamed temporary
  file (its shape, one list or one list per result set, is known only at the end) and copied out; table keeps
  only its cells' text (a BLOB is shown as its length), at most MAX_ROWS rows and `max_bytes` bytes of it.
  One SQLite value is at most VALUE_MAX bytes (SQLITE_LIMIT_LENGTH, `apsw.TooBigError` beyond) and SQLite's own
  heap at most HEAP_MAX (sqlite3_hard_heap_limit64, `apsw.NoMemError` beyond), so a query such as
  `SELECT zeroblob(300000000)` or a 10 GB in-memory sort stops with a message instead of growing the process.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import BinaryIO

import apsw
import msgspec

MAX_ROWS = 100_000  # rows --format table holds to measure its columns (csv and json stream)
DEFAULT_MAX_BYTES = 256 * 1024 * 1024  # CREDIT_SQL_MAX_BYTES / --max-bytes
VALUE_MAX = 32 * 1024 * 1024  # bytes: the longest string or BLOB a query may make or return
HEAP_MAX = 256 * 1024 * 1024  # bytes: SQLite's own memory while the query runs
COPY_CHUNK = 1 << 20


class TimeLimit(Exception):
    """The deadline passed while rows were being fetched, encoded or written."""


class OutputCap(Exception):
    def __init__(self, written: int):
        super().__init__(written)
        self.written = written


class RowCap(Exception):
    def __init__(self, rows: int):
        super().__init__(rows)
        self.rows = rows


class Budget:
    """Bytes written so far against `max_bytes`, and the deadline (time.monotonic())."""

    def __init__(self, max_bytes: int, deadline: float):
        self.max_bytes = max_bytes
        self.deadline = deadline
        self.used = 0

    def take(self, n: int) -> None:
        if self.used + n > self.max_bytes:
            raise OutputCap(self.used)
        self.used += n
        if time.monotonic() > self.deadline:
            raise TimeLimit

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TimeLimit


def plain(value: object) -> object:
    return value.hex() if isinstance(value, bytes) else value


def result_sets(cursor: apsw.Cursor) -> Iterator[tuple[bool, list[str], tuple]]:
    """(starts a new result set, column names, row) for every row of every statement that returns rows."""
    columns: list[str] | None = None
    for row in cursor:
        names = [d[0] for d in cursor.get_description()]
        new = names != columns
        columns = names
        yield new, names, row


def csv_field(value: object) -> str:
    """One CSV field as the csv module writes it (QUOTE_MINIMAL), in a few C-speed string operations: the csv
    module scans a long field character by character (about 6 s for 60 MB of hex on a loaded machine), which
    would let one row run far past the time limit."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.hex()  # [0-9a-f] only: never quoted
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if any(c in text for c in QUOTED):
        return '"' + text.replace('"', '""') + '"'
    return text


QUOTED = (",", '"', "\r", "\n")


def csv_line(row: Sequence[object]) -> str:
    fields = [csv_field(v) for v in row]
    if fields == [""]:
        return '""\n'  # as the csv module: a lone empty field is quoted, or the line would be blank
    return ",".join(fields) + "\n"


def write_csv(cursor: apsw.Cursor, out: BinaryIO, budget: Budget) -> None:
    """Each row as it comes; a blank line between the statements' results."""
    first = True
    for new, names, row in result_sets(cursor):
        if new:
            head = ("" if first else "\n") + csv_line(names)
            first = False
            data = head.encode("utf-8")
            budget.take(len(data))
            out.write(data)
        data = csv_line(row).encode("utf-8")
        budget.take(len(data))
        out.write(data)
    out.flush()


def write_json(cursor: apsw.Cursor, out: BinaryIO, budget: Budget) -> None:
    """One JSON list of objects for one result set, a list of such lists for several (as before), spooled."""
    encoder = msgspec.json.Encoder()
    with tempfile.TemporaryFile(prefix="credit-sql-") as spool:
        sets = 0
        row_in_set = 0
        for new, names, row in result_sets(cursor):
            if new:
                sets += 1
                row_in_set = 0
                if sets > 1:
                    spool.write(b"],[")
                    budget.take(3)
            data = encoder.encode(dict(zip(names, map(plain, row), strict=True)))
            if row_in_set:
                data = b"," + data
            row_in_set += 1
            budget.take(len(data))
            spool.write(data)
        head, tail = (b"[[", b"]]") if sets > 1 else (b"[", b"]")
        budget.take(len(head) + len(tail) + 1)
        out.write(head)
        spool.seek(0)
        while chunk := spool.read(COPY_CHUNK):
            out.write(chunk)
            budget.check_time()
        out.write(tail + b"\n")
    out.flush()


def cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"<BLOB {len(value)} bytes>"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_table(cursor: apsw.Cursor, out: BinaryIO, budget: Budget) -> None:
    """Aligned columns: the cells' text is held (at most MAX_ROWS rows and the byte budget), then written."""
    max_rows = MAX_ROWS
    tables: list[tuple[list[str], list[list[str]], list[bool]]] = []
    for held, (new, names, row) in enumerate(result_sets(cursor), 1):
        if new:
            tables.append((names, [], [True] * len(names)))
        if held > max_rows:
            raise RowCap(held - 1)
        _names, cells, numeric = tables[-1]
        texts = [cell(v) for v in row]
        budget.take(sum(len(t) for t in texts) + 2 * len(texts))  # at least that much will be written
        for i, v in enumerate(row):
            numeric[i] = numeric[i] and isinstance(v, int | float | None)
        cells.append(texts)
    budget.used = 0  # the real output is counted again below, line by line
    if not tables:
        _emit(out, budget, "\n")
    for k, (names, cells, numeric) in enumerate(tables):
        if k:
            _emit(out, budget, "\n")
        for line in table_lines(names, cells, numeric):
            _emit(out, budget, line + "\n")
    out.flush()


def _emit(out: BinaryIO, budget: Budget, text: str) -> None:
    data = text.encode("utf-8")
    budget.take(len(data))
    out.write(data)


def table_lines(columns: Sequence[str], cells: Sequence[Sequence[str]], numeric: Sequence[bool]) -> Iterator[str]:
    widths = [len(c) for c in columns]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    numeric = [bool(cells) and n for n in numeric]

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric, strict=True))

    yield fmt(columns).rstrip()
    yield "  ".join("-" * w for w in widths)
    for r in cells:
        yield fmt(r).rstrip()
