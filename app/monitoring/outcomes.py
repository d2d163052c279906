"""Observed outcomes: did a client default, and when was it observed.

Table `outcomes` (store migration sql/store/002_outcomes.sql) lives beside the prediction log in the
operational store (app.store), so it outlives re-imports of the client data.
One row per client; the latest observation wins: a write replaces a row only when its `observed_at` is at
least the stored one, so re-importing a file is idempotent and an older observation never overwrites a
newer one. Every write is one `BEGIN IMMEDIATE ... COMMIT` transaction.

Sources: `credit outcomes import FILE.csv` (`parse_csv`), `POST /outcomes`, and for demonstrations
`credit outcomes simulate` (`simulate`: the generator's own labels for clients that were scored).
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import apsw

from app.errors import CreditError
from app.ids import MAX_ID

COLUMNS = ("client_id", "defaulted", "observed_at")
MAX_ERRORS = 20  # errors listed before the import gives up

UPSERT_SQL = (
    "INSERT INTO outcomes (client_id, defaulted, observed_at, source, recorded_at) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (client_id) DO UPDATE SET defaulted = excluded.defaulted, observed_at = excluded.observed_at,"
    " source = excluded.source, recorded_at = excluded.recorded_at"
    " WHERE excluded.observed_at > outcomes.observed_at"
    " OR (excluded.observed_at = outcomes.observed_at AND excluded.defaulted != outcomes.defaulted)"
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


def parse_date(text: str) -> float:
    """ISO 8601 date or date-time -> unix seconds UTC. A date alone (2025-03-31) means the END of that day,
    so a decision logged that day counts as made before the outcome. Naive date-times are UTC."""
    s = text.strip()
    try:
        if len(s) == 10:
            day = datetime.strptime(s, "%Y-%m-%d").replace(tzinfo=UTC)  # ValueError if not a date
            return (day + timedelta(days=1)).timestamp() - 0.001
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    except OverflowError:  # 9999-12-31 + one day
        raise ValueError(f"date out of range: {text!r}") from None


def parse_value(column: str, raw: str) -> int | float:
    """One field of an outcome; ValueError with a short reason."""
    s = raw.strip()
    if column == "client_id":
        if not s.isdigit() or not 1 <= int(s) <= MAX_ID:
            raise ValueError(f"client_id must be a whole number from 1 to 2**53, got {raw!r}")
        return int(s)
    if column == "defaulted":
        if s not in ("0", "1"):
            raise ValueError(f"defaulted must be 0 or 1, got {raw!r}")
        return int(s)
    try:
        ts = parse_date(s)
    except ValueError:
        raise ValueError(f"observed_at must be an ISO 8601 date or date-time, got {raw!r}") from None
    if not math.isfinite(ts):
        raise ValueError(f"observed_at out of range: {raw!r}")
    return ts


def parse_csv(text: str, name: str = "outcomes.csv") -> list[Outcome]:
    """Rows of a CSV with the header client_id,defaulted,observed_at (any order, no other columns).

    Raises OutcomeError listing every bad field as `FILE line L column C (name): reason` (1-based, the
    header is line 1), up to MAX_ERRORS of them. Within a file, duplicates are resolved like re-imports:
    the latest observed_at wins."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise OutcomeError(f"{name}: empty file (expected the header {','.join(COLUMNS)})") from None
    except csv.Error as exc:
        raise OutcomeError(f"{name} line 1: {exc}") from None
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
    pos = {c: header.index(c) for c in COLUMNS}
    latest: dict[int, Outcome] = {}
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not f.strip() for f in row):
                continue
            if len(row) != len(header):
                errors.append(f"{name} line {line}: {len(row)} fields, expected {len(header)}")
            else:
                values: dict[str, int | float] = {}
                for col in COLUMNS:
                    try:
                        values[col] = parse_value(col, row[pos[col]])
                    except ValueError as exc:
                        errors.append(f"{name} line {line} column {pos[col] + 1} ({col}): {exc}")
                if len(values) == len(COLUMNS):
                    o = Outcome(int(values["client_id"]), int(values["defaulted"]), float(values["observed_at"]))
                    old = latest.get(o.client_id)
                    if old is None or o.observed_at >= old.observed_at:
                        latest[o.client_id] = o
            if len(errors) >= MAX_ERRORS:
                break
    except csv.Error as exc:
        errors.append(f"{name} line {reader.line_num}: {exc}")
    if errors:
        raise OutcomeError(f"{name}: {len(errors)} error(s), nothing imported", errors[:MAX_ERRORS])
    return list(latest.values())


def upsert(conn: apsw.Connection, outcomes: list[Outcome], source: str) -> dict[str, int]:
    """Write outcomes in one transaction; returns {"received", "written"} (written = rows inserted or
    replaced by a later observation; a repeat of what is stored writes nothing)."""
    now = time.time()
    before = conn.total_changes()
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(UPSERT_SQL, [(o.client_id, o.defaulted, o.observed_at, source, now) for o in outcomes])
        conn.execute("COMMIT")
    except BaseException:
        if not conn.get_autocommit():
            conn.execute("ROLLBACK")
        raise
    return {"received": len(outcomes), "written": conn.total_changes() - before}


def import_file(conn: apsw.Connection, path: Path) -> dict[str, int]:
    """`credit outcomes import`: parse the whole file first (nothing is written if any line is bad)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise OutcomeError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    outcomes = parse_csv(text, str(path))
    return upsert(conn, outcomes, f"import:{path.name}")


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
