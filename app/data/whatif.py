"""What-if on a client's application: change raw application values (AMT_CREDIT, AMT_INCOME_TOTAL, ...)
and recompute the application features with the very SQL the ingest used (sql/features_application.sql),
so derived features (CREDIT_INCOME_RATIO, EXT_SOURCE_MEAN, ...) follow the edit. The other sources'
features (bureau, previous applications, ...) keep their stored values.

The recomputation runs on TEMP objects inside a savepoint that is rolled back: nothing is written.
"""

from __future__ import annotations

from typing import Any

import apsw
import numpy as np

from app.data.features import pack_rows, quote_ident, read_sql
from app.errors import CreditError

APPLICATION_SCRIPT = "features_application.sql"
KEY = "SK_ID_CURR"
MAX_TEXT = 200
INF = float("inf")  # compared, not converted: a JSON integer of 400 digits does not fit a float


class WhatIfError(CreditError, ValueError):
    """A change that cannot be applied (unknown column, wrong type); `detail` names the column(s)."""

    def __init__(self, message: str, detail: dict[str, Any]):
        super().__init__(message)
        self.detail = detail


def application_columns(conn: apsw.Connection) -> dict[str, str] | None:
    """Column -> declared type of the application columns features are made from; None without the tables."""
    cols = {r[1]: str(r[2]).upper() for r in conn.execute("PRAGMA main.table_info(application_test)")}
    train = {r[1] for r in conn.execute("PRAGMA main.table_info(application_train)")}
    if KEY not in cols or KEY not in train:
        return None
    return cols


def application_row(conn: apsw.Connection, client_id: int, cols: dict[str, str]) -> dict[str, Any] | None:
    """The client's raw application values (train or test), or None if the client has none."""
    select = ", ".join(quote_ident(c) for c in cols)
    for table in ("application_train", "application_test"):
        row = conn.execute(f"SELECT {select} FROM main.{table} WHERE {KEY} = ?", (client_id,)).fetchone()
        if row is not None:
            return dict(zip(cols, row, strict=True))
    return None


def check_changes(changes: dict[str, Any], cols: dict[str, str]) -> None:
    """Every changed column exists (and is not the key); numbers for numeric columns, text for TEXT ones."""
    unknown = sorted(c for c in changes if c not in cols or c == KEY)
    if unknown:
        raise WhatIfError("unknown application columns", {"unknown_columns": unknown[:50]})
    for col, value in changes.items():
        if value is None:
            continue
        if cols[col] == "TEXT":
            if not isinstance(value, str) or len(value) > MAX_TEXT:
                raise WhatIfError(f"{col} must be text of at most {MAX_TEXT} characters or null", {"column": col})
        elif isinstance(value, bool) or not isinstance(value, int | float) or value != value or value in (INF, -INF):
            raise WhatIfError(f"{col} must be a finite number or null", {"column": col})
        elif cols[col] == "INTEGER" and not isinstance(value, int):
            raise WhatIfError(f"{col} must be an integer or null", {"column": col})
        elif abs(value) > 1e15:
            raise WhatIfError(f"{col} is out of range (|value| <= 1e15)", {"column": col})


def application_features(
    conn: apsw.Connection, row: dict[str, Any], cols: dict[str, str]
) -> tuple[list[str], np.ndarray]:
    """(feature names, float32 values) of sql/features_application.sql for one application row."""
    names, values = application_features_many(conn, [row], cols)
    return names, values[0]


def application_features_many(
    conn: apsw.Connection, rows: list[dict[str, Any]], cols: dict[str, str]
) -> tuple[list[str], np.ndarray]:
    """(feature names, float32[len(rows), k]) of sql/features_application.sql for several application rows, in
    their order, in one pass of the script (the counterfactual search, app/rights/counterfactual.py)."""
    conn.execute("SAVEPOINT whatif")
    try:
        decl = ", ".join(f"{quote_ident(c)} {t}" for c, t in cols.items())
        conn.execute(f"CREATE TEMP TABLE whatif_application ({decl})")
        marks = ", ".join("?" for _ in cols)
        key = list(cols).index(KEY)
        conn.executemany(  # the key is the row's position, so the result comes back in the callers' order
            f"INSERT INTO temp.whatif_application VALUES ({marks})",
            [[i if j == key else row[c] for j, c in enumerate(cols)] for i, row in enumerate(rows)],
        )
        conn.execute("CREATE TEMP VIEW application_all AS SELECT 'what-if' AS split, * FROM temp.whatif_application")
        conn.execute(read_sql(APPLICATION_SCRIPT))
        cur = conn.execute("SELECT * FROM temp.f_application ORDER BY client_id")
        names = [d[0] for d in cur.getdescription()][1:]
        out = cur.fetchall()
    finally:
        conn.execute("ROLLBACK TO whatif")
        conn.execute("RELEASE whatif")
    _ids, values = pack_rows(out, names)
    return names, values


def application_features_varying(
    conn: apsw.Connection,
    row: dict[str, Any],
    cols: dict[str, str],
    varying: list[str],
    values: np.ndarray,
    outputs: list[str],
) -> np.ndarray:
    """float32[len(values), len(outputs)]: the features `outputs` of sql/features_application.sql for `row` with the
    numeric columns `varying` set to each row of `values`, in one pass of the script. The fixed columns are stored
    once and the candidates are a small table of the varying ones (a view joins them), so a batch of hundreds of
    candidates costs little more than its few changed numbers (app/rights/counterfactual.py)."""
    conn.execute("SAVEPOINT whatif")
    try:
        decl = ", ".join(f"{quote_ident(c)} {t}" for c, t in cols.items())
        conn.execute(f"CREATE TEMP TABLE whatif_base ({decl})")
        conn.execute(f"INSERT INTO temp.whatif_base VALUES ({', '.join('?' for _ in cols)})", [row[c] for c in cols])
        vary = ", ".join(f"v{j} REAL" for j in range(len(varying)))
        conn.execute(f"CREATE TEMP TABLE whatif_vary (i INTEGER PRIMARY KEY, {vary})")
        marks = ", ".join("?" for _ in range(len(varying) + 1))
        conn.executemany(
            f"INSERT INTO temp.whatif_vary VALUES ({marks})",
            [(i, *map(float, v)) for i, v in enumerate(np.asarray(values, dtype=np.float64).tolist())],
        )
        where = {c: j for j, c in enumerate(varying)}
        select = ", ".join(
            f"w.i AS {quote_ident(c)}"
            if c == KEY
            else f"w.v{where[c]} AS {quote_ident(c)}"
            if c in where
            else f"b.{quote_ident(c)}"
            for c in cols
        )
        conn.execute(
            f"CREATE TEMP VIEW application_all AS SELECT 'what-if' AS split, {select}"
            " FROM temp.whatif_vary w CROSS JOIN temp.whatif_base b"
        )
        conn.execute(read_sql(APPLICATION_SCRIPT))
        out = conn.execute(
            f"SELECT client_id, {', '.join(quote_ident(c) for c in outputs)} FROM temp.f_application ORDER BY client_id"
        ).fetchall()
    finally:
        conn.execute("ROLLBACK TO whatif")
        conn.execute("RELEASE whatif")
    _ids, X = pack_rows(out, outputs)
    return X


def what_if(
    conn: apsw.Connection, client_id: int, changes: dict[str, Any], feature_names: list[str], x: np.ndarray
) -> tuple[np.ndarray, dict[str, Any]] | None:
    """The client's vector `x` with its application features recomputed after `changes`, and the raw
    values before the changes; None when the client has no application row. WhatIfError for bad changes;
    LookupError when the database has no application tables (a database made by `credit ingest-csv`)."""
    cols = application_columns(conn)
    if cols is None:
        raise LookupError("this database has no Home Credit application tables")
    check_changes(changes, cols)
    before = application_row(conn, client_id, cols)
    if before is None:
        return None
    names, values = application_features(conn, {**before, **changes}, cols)
    index = {n: i for i, n in enumerate(feature_names)}
    out = x.astype(np.float32, copy=True)
    for name, value in zip(names, values, strict=True):
        if name in index:
            out[index[name]] = value
    return out, before
