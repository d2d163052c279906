"""`credit ingest-csv FILE --id COL --target COL`: any one-table credit CSV into the same layout as
`credit ingest` (features, feature_names, labels, clients, meta), so training and scoring work unchanged.

How columns become features (the generated SQL is stored in meta 'feature_sql', readable):
* id column (--id): unique integer client id; without --id the client id is the data row number (1, 2, ...).
* target column (--target): binary. 0/1 values are used as they are. Two text labels (yes/no,
  good/bad, ...) need `--positive LABEL` naming the label that means default (target = 1); for
  good/bad the default is 'bad'. Rows with an empty target are unlabelled (split 'test').
  The target is never a feature.
* numeric columns (every non-empty value parses as a number): the value, as is.
* text columns: one 0/1 column per level ("COL=level") for the `max_levels` (10) most frequent levels;
  a column with more levels also gets "COL#rank", the level's frequency rank (1 = most frequent,
  levels beyond the 254th share 255). Missing text -> NULL (NaN) in all of them.
  Text columns with a distinct value on more than half of the rows (identifiers, free text) and
  levels longer than 64 characters are not encoded (warning).
* Everything is stored through bound parameters: formula-like text (=cmd|...) stays plain data.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from app.data.features import quote_ident
from app.data.ingest import (
    NON_FINITE,
    IngestError,
    IngestWarning,
    building_database,
    explain_arrow_error,
    first_non_finite,
    read_header,
    write_meta,
)
from app.ids import MAX_ID

BLOCK_SIZE = 32 << 20  # longest row accepted
MAX_LEVEL_CHARS = 64
MAX_RANK = 255
MAX_FEATURES = 1900  # SQLite allows 2000 columns in a result
GOOD_BAD = {"good", "bad"}
MIN_LABELLED = 3  # labelled rows, with both classes present


class _Names:
    """Feature names safe for LightGBM and model.txt: letters, digits and _ = # . - only; unique."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def __call__(self, raw: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_=#.\-]+", "_", raw).strip("_") or "feature"
        name, k = base, 2
        while name.lower() in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name.lower())
        return name


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _unique_name(name: str, taken: set[str]) -> str:
    while name.lower() in taken:
        name += "_"
    taken.add(name.lower())
    return name


def read_table(path: Path, label: str) -> pa.Table:
    """Every column as text (stripped; '' -> NULL), with clear errors."""
    if not path.is_file():
        raise IngestError(f"{label}: file not found")
    if path.stat().st_size == 0:
        raise IngestError(f"{label}: the file is empty (0 bytes)")
    header = read_header(path, label)
    if any(not h for h in header):
        raise IngestError(f"{label} line 1: a column has an empty name")
    lowered = [h.lower() for h in header]
    dup = sorted({h for h in header if lowered.count(h.lower()) > 1})
    if dup:
        raise IngestError(f"{label} line 1: duplicate column name(s) {', '.join(dup)} (names are case-insensitive)")
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=BLOCK_SIZE, column_names=header, skip_rows=1),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header},
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise explain_arrow_error(exc, path, label, header, BLOCK_SIZE) from None
    cols = []
    for col in table.columns:
        col = pc.utf8_trim_whitespace(col)
        cols.append(pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col))
    return pa.table(cols, names=header)


def _as_numbers(col: pa.ChunkedArray) -> pa.ChunkedArray | None:
    try:
        return pc.cast(col, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _first_bad_line(values: list, ok) -> int:
    for i, v in enumerate(values):
        if not ok(v):
            return i + 2
    return -1


def _ids(table: pa.Table, id_col: str | None, label: str) -> list[int]:
    n = table.num_rows
    if id_col is None:
        return list(range(1, n + 1))
    values = table.column(id_col).to_pylist()

    def is_int(v):
        try:
            int(v)
        except (TypeError, ValueError):
            return False
        return True

    line = _first_bad_line(values, is_int)
    if line > 0:
        v = values[line - 2]
        shown = "an empty value" if v is None else repr(v[:60])
        raise IngestError(f"{label} line {line} column {id_col}: the id must be an integer, got {shown}")
    ids = [int(v) for v in values]
    line = _first_bad_line(ids, lambda i: 1 <= i <= MAX_ID)
    if line > 0:
        raise IngestError(
            f"{label} line {line} column {id_col}: id {values[line - 2][:40]} is outside 1 .. 2**53 "
            "(the API could never serve it)"
        )
    seen: dict[int, int] = {}
    for i, v in enumerate(ids):
        if v in seen:
            raise IngestError(f"{label} line {i + 2} column {id_col}: id {v} already used on line {seen[v] + 2}")
        seen[v] = i
    return ids


def _targets(table: pa.Table, target_col: str, positive: str | None, label: str) -> tuple[list[int | None], str]:
    """0/1/None per row and a sentence saying which label is 1. Labels compare case-insensitively."""
    values = table.column(target_col).to_pylist()
    levels = sorted({v.lower() for v in values if v is not None})
    if not levels:
        raise IngestError(f"{label} column {target_col}: the target is empty on every row")
    numeric = {}
    for v in levels:
        try:
            numeric[v] = float(v)
        except ValueError:
            break
    if positive is None and len(numeric) == len(levels) and set(numeric.values()) <= {0.0, 1.0}:
        return _enough([None if v is None else int(numeric[v.lower()]) for v in values], target_col, label), (
            "target 1 = '1'"
        )
    if len(levels) > 2:
        shown = ", ".join(repr(v[:30]) for v in levels[:10]) + (", ..." if len(levels) > 10 else "")
        raise IngestError(
            f"{label} column {target_col}: the target must be binary, found {len(levels)} values ({shown})"
        )
    if positive is None:
        if set(levels) <= GOOD_BAD and "bad" in levels:
            positive = "bad"
        else:
            shown = " / ".join(repr(v) for v in levels)
            raise IngestError(
                f"{label} column {target_col}: labels {shown}: say which one means default (target = 1) "
                "with --positive LABEL"
            )
    match = positive.strip().lower()
    if match not in levels:
        shown = " / ".join(repr(v) for v in levels)
        raise IngestError(f"{label} column {target_col}: --positive {positive!r} is not one of the labels {shown}")
    return _enough([None if v is None else int(v.lower() == match) for v in values], target_col, label), (
        f"target 1 = {match!r}"
    )


def _enough(targets: list[int | None], target_col: str, label: str) -> list[int | None]:
    """Refuse a target a model cannot learn from: fewer than MIN_LABELLED labelled rows, or a single class."""
    labelled = [t for t in targets if t is not None]
    if len(labelled) < MIN_LABELLED:
        raise IngestError(
            f"{label} column {target_col}: {len(labelled)} labelled row(s); at least {MIN_LABELLED} are needed"
        )
    if len(set(labelled)) < 2:
        raise IngestError(
            f"{label} column {target_col}: the target is {labelled[0]} on every labelled row (a constant target)"
        )
    return targets


def _encode_text(name: str, col: pa.ChunkedArray, max_levels: int, label: str, names: _Names) -> list[str]:
    """SQL expressions (`expr AS "feature"`) for one text column."""
    counts = pc.value_counts(col.drop_null())
    pairs = sorted(
        ((v.as_py(), c.as_py()) for v, c in zip(counts.field("values"), counts.field("counts"), strict=True)),
        key=lambda vc: (-vc[1], vc[0]),
    )
    present = col.length() - col.null_count
    if present and len(pairs) > max(max_levels, present // 2):
        warnings.warn(
            f"{label}: column {name} not encoded ({len(pairs)} distinct values: an identifier or free text?)",
            IngestWarning,
            stacklevel=3,
        )
        return []
    usable = [v for v, _ in pairs if len(v) <= MAX_LEVEL_CHARS and "\x00" not in v]
    if len(usable) < len(pairs):
        warnings.warn(
            f"{label}: column {name}: {len(pairs) - len(usable)} level(s) longer than {MAX_LEVEL_CHARS} "
            "characters are not encoded",
            IngestWarning,
            stacklevel=3,
        )
    ident = quote_ident(name)
    exprs = [
        f"CASE WHEN {ident} IS NULL THEN NULL WHEN {ident} = {_sql_text(v)} THEN 1 ELSE 0 END "
        f"AS {quote_ident(names(f'{name}={v}'))}"
        for v in usable[:max_levels]
    ]
    if len(pairs) > max_levels:
        whens = " ".join(f"WHEN {_sql_text(v)} THEN {r}" for r, v in enumerate(usable[: MAX_RANK - 1], 1))
        exprs.append(
            f"CASE {ident} {whens} ELSE CASE WHEN {ident} IS NULL THEN NULL ELSE {MAX_RANK} END END"
            f" AS {quote_ident(names(f'{name}#rank'))}"
        )
    return exprs


def ingest_csv(
    csv_path: Path,
    db_path: Path,
    *,
    id_col: str | None,
    target_col: str,
    positive: str | None = None,
    max_levels: int = 10,
    progress: bool = True,
    log_db: Path | None = None,
    notify: Callable[[str], None] | None = None,
) -> dict:
    """Import one CSV; returns a summary {rows, labelled, features, positive}. `db_path` is replaced atomically
    at the end; the operational store `log_db` (default beside it) keeps the log (`notify`: as in `ingest`)."""
    from app.data.features import data_fingerprint, write_feature_rows

    csv_path, db_path = Path(csv_path), Path(db_path)
    label = csv_path.name
    table = read_table(csv_path, label)
    if table.num_rows == 0:
        raise IngestError(f"{label}: the file has a header but no data rows")
    for what, col in (("--id", id_col), ("--target", target_col)):
        if col is not None and col not in table.column_names:
            raise IngestError(f"{label}: {what} column {col!r} not found; columns are: {', '.join(table.column_names)}")
    if id_col is not None and id_col == target_col:
        raise IngestError(f"{label}: --id and --target name the same column {id_col!r}")
    ids = _ids(table, id_col, label)
    targets, positive_text = _targets(table, target_col, positive, label)

    data_cols = [c for c in table.column_names if c not in (id_col, target_col)]
    if not data_cols:
        raise IngestError(f"{label}: no columns left besides the id and the target")
    taken = {"client_id", "target", "split"}
    sql_names = {c: _unique_name(c, taken) for c in data_cols}
    numbers = {c: _as_numbers(table.column(c)) for c in data_cols}
    for c, col in numbers.items():
        first = None if col is None else first_non_finite(col)
        if first is not None:
            raise IngestError(
                f"{label} line {first + 2} column {c}: {table.column(c)[first].as_py()[:60]!r} {NON_FINITE}"
            )

    exprs = []
    namer = _Names()
    for c in data_cols:
        if numbers[c] is not None:
            exprs.append(f"{quote_ident(sql_names[c])} AS {quote_ident(namer(c))}")
        else:
            exprs.extend(_encode_text(sql_names[c], table.column(c), max_levels, label, namer))
    if not exprs:
        raise IngestError(f"{label}: no usable feature column")
    if len(exprs) > MAX_FEATURES:
        raise IngestError(f"{label}: {len(exprs)} features is too many (limit {MAX_FEATURES}); lower --max-levels")
    feature_sql = "SELECT\n  client_id,\n  " + ",\n  ".join(exprs) + "\nFROM csv_data"

    with building_database(db_path, log_db, notify) as conn:
        typed = [f"{quote_ident(sql_names[c])} {'REAL' if numbers[c] is not None else 'TEXT'}" for c in data_cols]
        columns_sql = ",\n  ".join(typed)
        conn.execute(
            f"CREATE TABLE csv_data (\n  client_id INTEGER PRIMARY KEY,\n  target INTEGER,\n  {columns_sql}\n)"
        )
        conn.execute(
            f"CREATE TABLE clients (\n  client_id INTEGER PRIMARY KEY,\n  split TEXT NOT NULL,\n  {columns_sql}\n)"
        )
        values = [
            numbers[c].to_numpy().tolist() if numbers[c] is not None else table.column(c).to_pylist() for c in data_cols
        ]
        marks = ", ".join("?" * (len(data_cols) + 2))
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO csv_data VALUES ({marks})", zip(ids, targets, *values, strict=True))
        quoted = ", ".join(quote_ident(sql_names[c]) for c in data_cols)
        conn.execute(
            f"INSERT INTO clients SELECT client_id, CASE WHEN target IS NULL THEN 'test' ELSE 'train' END, {quoted} "
            "FROM csv_data"
        )
        conn.execute(
            "INSERT INTO labels(client_id, target) SELECT client_id, target FROM csv_data WHERE target IS NOT NULL"
        )
        names = write_feature_rows(conn, feature_sql, progress=progress, total=len(ids))
        write_meta(conn, f"csv:{label}", data_fingerprint(conn), feature_sql)
        conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?)",
            [
                ("positive_label", positive_text),
                ("id_column", id_col or "(row number)"),
                ("target_column", target_col),
                ("feature_sql", feature_sql),
            ],
        )
        conn.execute("COMMIT")
    labelled = sum(t is not None for t in targets)
    return {"rows": len(ids), "labelled": labelled, "features": len(names), "positive": positive_text}
