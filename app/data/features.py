"""Per-client feature vectors: SQL definitions in sql/features_*.sql, packed as float32 BLOBs.

Layout (docs/contracts.md): features(client_id, x) with x = little-endian float32, NaN for missing;
feature_names(idx, name) gives the order of x; clients holds readable display columns.

How the Home Credit features are made: each sql/features_<source>.sql creates one TEMP TABLE (or
VIEW) `f_<source>` keyed by client_id, aggregated from one raw table; sql/features.sql joins them
all (LEFT JOIN ... USING (client_id)) onto the applications. Every column of that final SELECT
except client_id is a feature, and its SQL column name is the feature name.
"""

from __future__ import annotations

import hashlib
import numbers
import struct
from collections.abc import Iterable, Mapping
from itertools import islice

import apsw
import numpy as np
from tqdm import tqdm

from app import SQL_DIR
from app.data.finite import to_feature_float32
from app.errors import CreditError
from app.vectors import F32

# run in this order; each creates f_<source>
FEATURE_SCRIPTS = [
    "features_application.sql",
    "features_bureau.sql",
    "features_previous.sql",
    "features_pos_cash.sql",
    "features_installments.sql",
    "features_credit_card.sql",
]
FINAL_SCRIPT = "features.sql"
CLIENTS_SCRIPT = "clients.sql"
CHUNK_ROWS = 4096


class FeatureError(CreditError, ValueError):
    pass


def read_sql(name: str) -> str:
    return (SQL_DIR / name).read_text(encoding="utf-8")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_application_view(conn: apsw.Connection) -> None:
    """TEMP VIEW application_all: application_train UNION ALL application_test (common columns) + split."""
    test_cols = [r[1] for r in conn.execute("PRAGMA main.table_info(application_test)")]
    cols = ", ".join(quote_ident(c) for c in test_cols)
    conn.execute(
        "CREATE TEMP VIEW application_all AS "
        f"SELECT 'train' AS split, {cols} FROM main.application_train "
        f"UNION ALL SELECT 'test' AS split, {cols} FROM main.application_test"
    )


def build_features(conn: apsw.Connection, progress: bool = True) -> list[str]:
    """Run the SQL feature definitions over the raw Home Credit tables and write
    features / feature_names / clients. Returns the feature names (order of x)."""
    with conn:
        create_application_view(conn)
        steps = [*FEATURE_SCRIPTS, CLIENTS_SCRIPT]
        for script in tqdm(steps, desc="features (SQL)", disable=not progress, leave=False):
            try:
                conn.execute(read_sql(script))
            except apsw.SQLError as exc:
                raise FeatureError(f"sql/{script}: {exc}") from exc
        total = conn.execute("SELECT count(*) FROM application_all").fetchone()[0]
        names = write_feature_rows(conn, read_sql(FINAL_SCRIPT), progress=progress, total=total)
        for name, kind in conn.execute(
            "SELECT name, type FROM temp.sqlite_schema WHERE type IN ('table', 'view')"
        ).fetchall():
            conn.execute(f"DROP {kind.upper()} temp.{quote_ident(name)}")
    return names


def write_feature_rows(
    conn: apsw.Connection, select_sql: str, *, progress: bool = True, total: int | None = None
) -> list[str]:
    """Run `select_sql` (first column client_id, then one column per feature) and store each row
    as a float32 vector in `features`, the column names in `feature_names`."""
    cur = conn.cursor()
    cur.execute(select_sql)
    try:
        columns = [d[0] for d in cur.getdescription()]
    except apsw.ExecutionCompleteError:
        raise FeatureError("no clients: the feature query returned no rows") from None
    if not columns or columns[0] != "client_id":
        raise FeatureError(f"the feature query must start with client_id, got {columns[:1]}")
    names = columns[1:]
    seen: set[str] = set()
    dup = sorted({n for n in names if n in seen or seen.add(n)})
    if dup:
        raise FeatureError(f"duplicate feature names: {', '.join(dup)}")
    conn.execute("DELETE FROM features")
    conn.execute("DELETE FROM feature_names")
    conn.executemany("INSERT INTO feature_names(idx, name) VALUES (?, ?)", enumerate(names))
    insert = "INSERT INTO features(client_id, x) VALUES (?, ?)"
    with tqdm(total=total, desc="features", unit=" clients", disable=not progress, leave=False) as bar:
        while True:
            rows = list(islice(cur, CHUNK_ROWS))
            if not rows:
                break
            ids, X = pack_rows(rows, names)
            conn.executemany(insert, zip(ids, (row.tobytes() for row in X), strict=True))
            bar.update(len(rows))
    return names


def pack_rows(rows: list[tuple], names: list[str]) -> tuple[list[int], np.ndarray]:
    """(client ids, float32 matrix) from SQL rows; NULL -> NaN, overflow clamped (app.data.finite)."""
    ids = [r[0] for r in rows]
    try:
        X = np.array([r[1:] for r in rows], dtype=np.float64)
    except (TypeError, ValueError):
        for j, name in enumerate(names, 1):
            bad = next((r[j] for r in rows if r[j] is not None and not isinstance(r[j], int | float)), None)
            if bad is not None:
                raise FeatureError(f"feature {name} is not a number (got {bad!r}); fix its SQL") from None
        raise
    if any(not isinstance(i, int) for i in ids):
        raise FeatureError("client_id must be an integer")
    return ids, to_feature_float32(X).astype(F32, copy=False)


def feature_names(conn: apsw.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM feature_names ORDER BY idx")]


def load_matrix(
    conn: apsw.Connection, labelled_only: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[str]]:
    """(ids int64[n], X float32[n, p], y int8[n] or None, names), rows in client_id order.

    labelled_only=True: train clients with a label, and y; False: every client, y is None."""
    names = feature_names(conn)
    p = len(names)
    if labelled_only:
        rows = conn.execute(
            "SELECT f.client_id, f.x, l.target FROM features AS f JOIN labels AS l USING (client_id) "
            "ORDER BY f.client_id"
        ).fetchall()
    else:
        rows = conn.execute("SELECT client_id, x FROM features ORDER BY client_id").fetchall()
    n = len(rows)
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    bad = next((r[0] for r in rows if len(r[1]) != 4 * p), None)
    if bad is not None:
        raise FeatureError(f"client {bad}: feature vector has the wrong length (expected {p} float32)")
    buf = bytearray(b"".join(r[1] for r in rows))
    X = np.frombuffer(buf, dtype=F32).reshape(n, p)
    if np.dtype(np.float32) != F32:  # pragma: no cover (big-endian hosts)
        X = X.astype(np.float32)
    y = np.fromiter((r[2] for r in rows), dtype=np.int8, count=n) if labelled_only else None
    return ids, X, y, names


def vector_from_mapping(names: Iterable[str], mapping: Mapping[str, float | None]) -> np.ndarray:
    """float32 vector in `names` order; missing or None -> NaN; unknown names -> ValueError."""
    names = list(names)
    known = set(names)
    unknown = sorted(k for k in mapping if k not in known)
    if unknown:
        raise ValueError(f"unknown feature name(s): {', '.join(unknown)}")
    out = np.full(len(names), np.nan, dtype=np.float32)
    for i, name in enumerate(names):
        value = mapping.get(name)
        if value is None:
            continue
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
            raise ValueError(f"feature {name}: expected a number or null, got {value!r}")
        out[i] = value
    return out


def home_credit_feature_sql() -> str:
    """The text of every SQL script that defines the Home Credit features, in the order they run."""
    return "\n".join(read_sql(script) for script in [*FEATURE_SCRIPTS, CLIENTS_SCRIPT, FINAL_SCRIPT])


def schema_fingerprint(conn: apsw.Connection, source: str, feature_sql: str) -> str:
    """sha256 over the kind of source (home-credit, csv), the feature SQL and the feature names in order:
    what a model depends on. Two imports of different clients with the same definitions share it."""
    h = hashlib.sha256()
    h.update(source.split(":", 1)[0].encode("utf-8") + b"\0")
    h.update(feature_sql.encode("utf-8") + b"\0")
    for name in feature_names(conn):
        h.update(name.encode("utf-8") + b"\n")
    return h.hexdigest()


def data_fingerprint(conn: apsw.Connection) -> str:
    """sha256 over the feature names (in idx order, each + newline), then for every client in id order
    its id (int64 little-endian) and its x blob."""
    h = hashlib.sha256()
    for name in feature_names(conn):
        h.update(name.encode("utf-8") + b"\n")
    h.update(b"\0")
    for client_id, x in conn.execute("SELECT client_id, x FROM features ORDER BY client_id"):
        h.update(struct.pack("<q", client_id))
        h.update(x)
    return h.hexdigest()
