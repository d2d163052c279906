"""Observed outcomes: did a client default, and when was it observed.

Table `outcomes` (store migration sql/store/002_outcomes.sql) lives beside the prediction log in the
operational store (app.store), so it outlives re-imports of the client data.
One row per client; the latest observation wins: a write replaces a row only when its `observed_at` is at
least the stored one, so re-importing a file is idempotent and an older observation never overwrites a
newer one, unless the caller asks to `replace` (a correction, recorded in outcome_corrections, migration 005).

One rule for the CLI and the API: client ids by app/ids.py, dates by `parse_date` (1900-01-01 .. now + one
day; `20261130` and `2026-11-30` both mean the end of that day), duplicates within one file or request counted
once (`Batch`), and writes in short transactions (`write`, WRITE_BATCH rows each).

Sources: `credit outcomes import FILE.csv [--replace]` (`import_file`, streamed), `POST /outcomes`, and for
demonstrations `credit outcomes simulate` (`simulate`: the generator's own labels for clients that were scored).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path

import apsw

from app.errors import CreditError
from app.ids import parse_client_id

COLUMNS = ("client_id", "defaulted", "observed_at")
MAX_ERRORS = 20  # errors listed before the import gives up
MIN_TS = datetime(1900, 1, 1, tzinfo=UTC).timestamp()  # observations before 1900 are refused
FUTURE_TOLERANCE = 86_400.0  # seconds: an observation may be dated at most one day ahead of now
WRITE_BATCH = 500  # outcomes per write transaction: the API's log writer waits at most one batch
WRITE_PAUSE = 0.005  # seconds between two batches: the log writers (retrying every 0.5 ms) get the lock then
DAY = 86_400.0

UPSERT_SQL = (
    "INSERT INTO outcomes (client_id, defaulted, observed_at, source, recorded_at) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (client_id) DO UPDATE SET defaulted = excluded.defaulted, observed_at = excluded.observed_at,"
    " source = excluded.source, recorded_at = excluded.recorded_at"
)
CORRECTION_SQL = (
    "INSERT INTO outcome_corrections (client_id, old_defaulted, old_observed_at, old_source, new_defaulted,"
    " new_observed_at, source, corrected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class OutcomeError(CreditError, ValueError):
    """Bad outcome input; `errors` lists every problem found (each names its line and column)."""

    def __init__(self, message: str, errors: list[str] | None = None):
        super().__init__(message if not errors else message + ":\n" + "\n".join(errors))
        self.errors = errors or [message]


@dataclass(frozen=True, slots=True)
class Outcome:
    client_id: int
    defaulted: int
    observed_at: float  # unix seconds UTC


def parse_date(text: str, now: float | None = None) -> float:
    """ISO 8601 date or date-time -> unix seconds UTC, by one rule for the CLI and the API.

    A date alone, in either ISO form (`2026-11-30` or `20261130`), means the END of that day (UTC), so a
    decision logged that day counts as made before the outcome. A date-time without an offset is UTC.
    Refused (ValueError): anything not ASCII, dates before 1900-01-01, and dates later than `now` (default: the
    clock) plus FUTURE_TOLERANCE (one day, for clocks and time zones; for a date alone, its day must start
    within that bound)."""
    if not text.isascii() or not text or text != text.strip():
        raise ValueError(f"observed_at must be an ISO 8601 date or date-time, got {text[:40]!r}")
    now = time.time() if now is None else now
    try:
        day = date.fromisoformat(text) if "T" not in text and " " not in text else None
    except ValueError:
        day = None
    try:
        if day is not None:
            start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
            ts = start + DAY - 0.001
        else:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            start = ts = dt.timestamp()
    except ValueError:
        raise ValueError(f"observed_at must be an ISO 8601 date or date-time, got {text[:40]!r}") from None
    except OverflowError:
        raise ValueError(f"observed_at out of range: {text[:40]!r}") from None
    if ts < MIN_TS:
        raise ValueError(f"observed_at is before 1900-01-01: {text[:40]!r}")
    if start > now + FUTURE_TOLERANCE:
        ahead = datetime.fromtimestamp(now + FUTURE_TOLERANCE, UTC).isoformat(timespec="seconds")
        raise ValueError(f"observed_at is in the future: {text[:40]!r} (at most one day ahead: {ahead})")
    return ts


def parse_value(column: str, raw: str, now: float | None = None) -> int | float:
    """One field of an outcome; ValueError with a short reason."""
    if column == "client_id":
        return parse_client_id(raw)
    if column == "defaulted":
        if raw not in ("0", "1"):
            raise ValueError(f"defaulted must be 0 or 1, got {raw[:40]!r}")
        return int(raw)
    return parse_date(raw, now)


def read_rows(lines: Iterable[str], name: str, now: float | None = None) -> Iterator[tuple[int, Outcome]]:
    """(line number, outcome) for each row of a CSV with the header client_id,defaulted,observed_at (any order,
    no other columns), streamed. Raises OutcomeError at the end listing every bad field as `FILE line L column C
    (name): reason` (1-based, the header is line 1), up to MAX_ERRORS of them; rows already yielded must then
    be discarded by the caller."""
    now = time.time() if now is None else now
    reader = csv.reader(lines)
    header = _header(reader, name)
    errors: list[str] = []
    pos = {c: header.index(c) for c in COLUMNS}
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not f.strip() for f in row):
                continue
            if len(row) != len(header):
                errors.append(f"{name} line {line}: {len(row)} fields, expected {len(header)}")
            else:
                outcome = _outcome(row, pos, now, f"{name} line {line}", errors)
                if outcome is not None and not errors:
                    yield line, outcome
            if len(errors) >= MAX_ERRORS:
                break
    except csv.Error as exc:
        errors.append(f"{name} line {reader.line_num}: {exc}")
    except UnicodeDecodeError as exc:
        errors.append(f"{name} line {reader.line_num + 1}: not UTF-8 text (byte {exc.start} of its block)")
    if errors:
        raise OutcomeError(f"{name}: {len(errors)} error(s), nothing imported", errors[:MAX_ERRORS])


def _header(reader: Iterator[list[str]], name: str) -> list[str]:
    """The CSV's header, stripped; OutcomeError for an empty file or a header that is not exactly COLUMNS."""
    try:
        header = next(reader)
    except StopIteration:
        raise OutcomeError(f"{name}: empty file (expected the header {','.join(COLUMNS)})") from None
    except csv.Error as exc:
        raise OutcomeError(f"{name} line 1: {exc}") from None
    except UnicodeDecodeError as exc:
        raise OutcomeError(f"{name} line 1: not UTF-8 text (byte {exc.start} of its block)") from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    errors = [
        f"{name} line 1 column {i} ({h!r}): unknown column (expected {', '.join(COLUMNS)})"
        for i, h in enumerate(header, 1)
        if h not in COLUMNS
    ]
    errors += [f"{name} line 1: missing column {c!r}" for c in COLUMNS if c not in header]
    dup = sorted({h for h in header if header.count(h) > 1})
    errors += [f"{name} line 1: column {h!r} appears twice" for h in dup]
    if errors:
        raise OutcomeError(f"{name}: bad header", errors)
    return header


def _outcome(row: list[str], pos: dict[str, int], now: float, where: str, errors: list[str]) -> Outcome | None:
    """The row's outcome; None, with an error per bad field appended to `errors`, when a field does not parse."""
    values: dict[str, int | float] = {}
    for col in COLUMNS:
        try:
            values[col] = parse_value(col, row[pos[col]], now)
        except ValueError as exc:
            errors.append(f"{where} column {pos[col] + 1} ({col}): {exc}")
    if len(values) != len(COLUMNS):
        return None
    cid, defaulted, when = (values[c] for c in COLUMNS)
    return Outcome(int(cid), int(defaulted), float(when))


class Batch:
    """Outcomes staged in a private temporary SQLite file (not in memory, not in the store): duplicates and
    contradictions within one file or request are found there, then `rows()` gives one outcome per client (its
    latest observation), in client order, without holding them all."""

    def __init__(self) -> None:
        self.conn = apsw.Connection("")  # an unnamed temporary database file, deleted on close
        self.conn.execute("PRAGMA journal_mode = OFF").fetchall()  # a row each: run them one by one
        self.conn.execute("PRAGMA synchronous = OFF").fetchall()
        self.conn.execute(
            "CREATE TABLE staged (client_id INTEGER NOT NULL, defaulted INTEGER NOT NULL, observed_at REAL NOT NULL,"
            " place TEXT NOT NULL)"
        )
        self.received = 0

    def add(self, items: Iterable[tuple[str, Outcome]]) -> None:
        """Stage (where, outcome) pairs; `where` names the line or item for error messages."""
        insert = "INSERT INTO staged VALUES (?, ?, ?, ?)"
        it = iter(items)
        while chunk := list(islice(it, 10_000)):
            with self.conn:
                self.conn.executemany(insert, [(o.client_id, o.defaulted, o.observed_at, w) for w, o in chunk])
            self.received += len(chunk)

    def check(self, name: str) -> int:
        """Number of duplicate rows (a client given again); OutcomeError when one client is given both
        outcomes for the same instant (which one is true cannot be decided)."""
        self.conn.execute("CREATE INDEX staged_client ON staged (client_id, observed_at, defaulted)")
        clashes = self.conn.execute(
            "SELECT client_id, group_concat(place, ', ' ORDER BY rowid) FROM staged GROUP BY client_id, observed_at"
            " HAVING min(defaulted) != max(defaulted) LIMIT ?",
            (MAX_ERRORS,),
        ).fetchall()
        if clashes:
            raise OutcomeError(
                f"{name}: contradictory duplicates, nothing imported",
                [f"{name} {where}: client {cid} is given both defaulted 0 and 1 at the same instant"
                 for cid, where in clashes],
            )  # fmt: skip
        unique = self.conn.execute("SELECT count(DISTINCT client_id) FROM staged").fetchall()[0][0]
        return self.received - unique

    def rows(self) -> Iterator[Outcome]:
        """The latest observation of each client (SQLite's max(): the row holding the maximum)."""
        for cid, defaulted, ts in self.conn.execute(
            "SELECT client_id, defaulted, max(observed_at) FROM staged GROUP BY client_id ORDER BY client_id"
        ):
            yield Outcome(cid, defaulted, ts)

    def close(self) -> None:
        self.conn.close()


def write(
    conn: apsw.Connection, outcomes: Iterable[Outcome], source: str, *, replace: bool = False,
    batch: int = WRITE_BATCH,
) -> dict[str, int]:  # fmt: skip
    """Write outcomes in short transactions of `batch` rows (`BEGIN IMMEDIATE ... COMMIT` each), so concurrent
    writers (the API's prediction log) wait at most one batch. Without `replace` the latest observation wins: an
    outcome older than the stored one is skipped and counted (`older`); the same outcome again changes nothing
    (`unchanged`). With `replace`, the given outcome replaces the stored one whatever its date, and every
    replaced row is recorded in outcome_corrections (old and new values, source, time): a correction path, never
    a silent drop. Returns received, written, unchanged, older, corrected."""
    got = {"received": 0, "written": 0, "unchanged": 0, "older": 0, "corrected": 0}
    it = iter(outcomes)
    while chunk := list(islice(it, batch)):
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for o in chunk:
                old = conn.execute(
                    "SELECT defaulted, observed_at, source FROM outcomes WHERE client_id = ?", (o.client_id,)
                ).fetchall()
                if old and (old[0][0], old[0][1]) == (o.defaulted, o.observed_at):
                    got["unchanged"] += 1
                    continue
                if old and replace:
                    conn.execute(CORRECTION_SQL, (o.client_id, *old[0], o.defaulted, o.observed_at, source, now))
                    got["corrected"] += 1
                elif old and o.observed_at < old[0][1]:
                    got["older"] += 1
                    continue
                conn.execute(UPSERT_SQL, (o.client_id, o.defaulted, o.observed_at, source, now))
                got["written"] += 1
            conn.execute("COMMIT")
        except BaseException:
            if not conn.get_autocommit():
                conn.execute("ROLLBACK")
            raise
        got["received"] += len(chunk)
        if len(chunk) == batch:
            time.sleep(WRITE_PAUSE)  # SQLite's lock is not fair: without a gap the next batch would win again
    return got


def upsert(conn: apsw.Connection, outcomes: list[Outcome], source: str) -> dict[str, int]:
    """Write distinct clients' outcomes (the latest observation wins); returns {"received", "written"}."""
    got = write(conn, outcomes, source)
    return {"received": got["received"], "written": got["written"]}


def parse_csv(text: str, name: str = "outcomes.csv", now: float | None = None) -> list[Outcome]:
    """The outcomes of a CSV text, one per client (its latest observation); OutcomeError for any bad line."""
    batch = Batch()
    try:
        batch.add((f"line {line}", o) for line, o in read_rows(io.StringIO(text, newline=""), name, now))
        batch.check(name)
        return list(batch.rows())
    finally:
        batch.close()


def import_file(
    conn: apsw.Connection, path: Path, *, replace: bool = False, now: float | None = None
) -> dict[str, int]:
    """`credit outcomes import`: read and check the whole file first, streamed into a private staging file
    (nothing is written to the store if any line is bad), then write it in short transactions. Memory does not
    grow with the file. If the write itself is interrupted (disk full, kill), running the same import again
    completes it: a re-import changes nothing that is already stored."""
    source = f"import:{path.name}" + (" --replace" if replace else "")
    batch = Batch()
    try:
        with open(path, encoding="utf-8", newline="") as f:
            batch.add((f"line {line}", o) for line, o in read_rows(f, str(path), now))
        duplicates = batch.check(str(path))
        # no fsync inside each batch's lock (WAL: durable at the next checkpoint or the log writer's next full
        # commit); a power cut can lose the last batches, which running the same import again writes
        sync = conn.execute("PRAGMA synchronous").fetchall()[0][0]
        conn.execute("PRAGMA synchronous = NORMAL")
        try:
            got = write(conn, batch.rows(), source, replace=replace)
        finally:
            conn.execute(f"PRAGMA synchronous = {int(sync)}")
    finally:
        batch.close()
    return {**got, "received": batch.received, "duplicates": duplicates}


def simulate(
    store: apsw.Connection,
    data: apsw.Connection,
    *,
    share: float = 1.0,
    seed: int = 42,
    observed_at: float | None = None,
) -> dict[str, int]:
    """Outcomes for clients in the prediction log, from the data's own labels (table `labels`: the
    generator's TARGET). A random `share` of the logged clients with a label gets an outcome observed at
    `observed_at` (default: now). Logged clients without a label (test split) are counted, not invented."""
    import numpy as np

    if not 0 < share <= 1:
        raise OutcomeError("share must be in (0, 1]")
    logged = np.array(
        [r[0] for r in store.execute("SELECT DISTINCT client_id FROM prediction_log WHERE client_id IS NOT NULL")],
        dtype=np.int64,
    )
    labels = dict(data.execute("SELECT client_id, target FROM labels"))
    labelled = np.array([c for c in logged.tolist() if c in labels], dtype=np.int64)
    without_label = len(logged) - len(labelled)
    rng = np.random.default_rng(seed)
    if share < 1:
        labelled = np.sort(rng.choice(labelled, size=int(round(share * len(labelled))), replace=False))
    when = time.time() if observed_at is None else observed_at
    out = upsert(store, [Outcome(int(c), int(labels[c]), when) for c in labelled.tolist()], "simulate")
    return {"logged_clients": int(len(logged)), "without_label": int(without_label), **out}


def counts(conn: apsw.Connection) -> dict[str, int]:
    n, d = conn.execute("SELECT count(*), coalesce(sum(defaulted), 0) FROM outcomes").fetchall()[0]
    return {"outcomes": int(n), "defaults": int(d)}
