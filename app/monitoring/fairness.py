"""Fairness of the live decisions, from the operational store: the latest decision per client in a window of the
prediction log, with the client's attributes (the data's `clients`, attached read-only) and observed outcome,
counted in SQL; and the champion against a challenger in shadow on the same clients.

The metrics themselves are app.scoring.fairness (pure, shared with training's model card); their names are
re-exported here for the callers that read both from this module.
"""

from __future__ import annotations

import math
import time
import urllib.parse
from pathlib import Path

import numpy as np

from app.scoring.fairness import (  # noqa: F401 (re-exported)
    AGE_BANDS,
    DEFAULT_ATTRIBUTES,
    MIN_GROUP,
    RATIO_FLOOR,
    UNKNOWN,
    FairnessError,
    NoDecisions,
    age_band,
    derived_features,
    fairness,
    group_table,
    parse_attributes,
    sensitive_values,
)


# the latest decision of each client (bare columns of max()), read from the covering index in client order
def _sql_group(attribute: str) -> str:
    """The SQL expression of an attribute's group over the attached data's `clients` (alias c); the same labels
    as age_band() and sensitive_values()."""
    if attribute == "age_band":
        whens = " ".join(f"WHEN c.age_years < {hi} THEN '{label}'" for _lo, hi, label in AGE_BANDS)
        return f"CASE WHEN c.age_years IS NULL THEN '{UNKNOWN}' {whens} ELSE '{AGE_BANDS[-1][1]}+' END"
    return f"coalesce(CAST(c.\"{attribute}\" AS TEXT), '{UNKNOWN}')"


# each client's latest decision in the window (bare columns of max(), from the covering index in client order),
# its attributes and its outcome, counted per distinct combination: a few dozen rows reach Python
COUNTS_SQL = """
WITH d AS (
    SELECT client_id, decision = 'refuse' AS refused, max(ts) FROM prediction_log INDEXED BY prediction_log_client_ts
    WHERE client_id IS NOT NULL AND ts >= ?1 AND ts < ?2 GROUP BY client_id)
SELECT {groups}, o.defaulted, d.refused, count(*)
FROM d LEFT JOIN data.clients AS c ON c.client_id = d.client_id LEFT JOIN outcomes AS o ON o.client_id = d.client_id
GROUP BY {positions}
"""


def _store_with_data(store_path: Path | str, data_path: Path | str):
    """A read-only connection to the operational store with the data file attached read-only as `data`."""
    import apsw

    conn = apsw.Connection(str(store_path), flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    try:
        conn.set_busy_timeout(5000)
        uri = "file:" + urllib.parse.quote(str(Path(data_path).resolve())) + "?mode=ro"
        conn.execute("ATTACH DATABASE ? AS data", (uri,))
    except BaseException:
        conn.close()
        raise
    return conn


def live_report(
    store_path: str | Path,
    data_path: str | Path,
    *,
    attributes: tuple[str, ...] = DEFAULT_ATTRIBUTES,
    since: float | None = None,
    until: float | None = None,
    min_group: int = MIN_GROUP,
    ratio_floor: float = RATIO_FLOOR,
) -> dict:
    """Fairness of the live decisions: the latest decision per known client in [since, until), with the
    client's observed outcome where there is one. Opens its own read-only connection to the store with the data
    file attached read-only, and counts in SQL."""
    t0 = time.perf_counter()
    lo = -math.inf if since is None else float(since)
    hi = math.inf if until is None else float(until)
    conn = _store_with_data(store_path, data_path)
    try:
        cols = {r[1] for r in conn.execute("PRAGMA data.table_info(clients)")}
        for a in attributes:
            col = "age_years" if a == "age_band" else a
            if col not in cols:
                raise FairnessError(f"sensitive attribute {a!r}: no column {col!r} in the clients table")
        k = len(attributes)
        sql = COUNTS_SQL.format(
            groups=", ".join(_sql_group(a) for a in attributes), positions=", ".join(str(i) for i in range(1, k + 3))
        )
        rows = conn.execute(sql, (lo, hi)).fetchall()
    finally:
        conn.close()
    if not rows:
        raise NoDecisions("no decisions about known clients logged in the window")
    cells = list(zip(*rows, strict=True))
    defaulted = np.array([np.nan if v is None else float(v) for v in cells[k]], dtype=np.float64)
    refused = np.array(cells[k + 1], dtype=bool)
    weights = np.array(cells[k + 2], dtype=np.float64)
    sens = {a: np.array(cells[i], dtype=object) for i, a in enumerate(attributes)}
    rep = fairness(sens, refused, defaulted, min_group=min_group, ratio_floor=ratio_floor, weights=weights)
    return rep | {
        "source": "live decisions (latest per client in the window)",
        "window": {"since": None if since is None else lo, "until": None if until is None else hi},
        "seconds": round(time.perf_counter() - t0, 3),
    }


# ---- champion vs challenger on the same clients (issue 19 item 4) --------------------------------------------

# each client's latest SHADOW row (both scores, sql/store/004) in the window: the champion's decision as served and
# the challenger's by its own threshold, counted per (groups, outcome, both decisions)
SHADOW_COUNTS_SQL = """
WITH d AS (
    SELECT client_id, decision = 'refuse' AS refused, challenger_score >= ?3 AS challenger_refused, max(ts)
    FROM prediction_log INDEXED BY prediction_log_shadow
    WHERE client_id IS NOT NULL AND challenger_score IS NOT NULL AND challenger_model_id = ?4
      AND ts >= ?1 AND ts < ?2
    GROUP BY client_id)
SELECT {groups}, o.defaulted, d.refused, d.challenger_refused, count(*)
FROM d LEFT JOIN data.clients AS c ON c.client_id = d.client_id LEFT JOIN outcomes AS o ON o.client_id = d.client_id
GROUP BY {positions}
"""


def challenger_report(
    store_path: str | Path,
    data_path: str | Path,
    *,
    challenger_id: str,
    threshold: float,
    attributes: tuple[str, ...] = DEFAULT_ATTRIBUTES,
    since: float | None = None,
    until: float | None = None,
    min_group: int = MIN_GROUP,
    ratio_floor: float = RATIO_FLOOR,
) -> dict:
    """Fairness of the champion's decisions and of the challenger's (its scores in shadow, its threshold) on the
    same clients: the latest shadow row per known client in the window."""
    lo = -math.inf if since is None else float(since)
    hi = math.inf if until is None else float(until)
    conn = _store_with_data(store_path, data_path)
    try:
        k = len(attributes)
        sql = SHADOW_COUNTS_SQL.format(
            groups=", ".join(_sql_group(a) for a in attributes), positions=", ".join(str(i) for i in range(1, k + 4))
        )
        rows = conn.execute(sql, (lo, hi, float(threshold), challenger_id)).fetchall()
    finally:
        conn.close()
    if not rows:
        raise FairnessError(f"no shadow scores of challenger {challenger_id[:12]} about known clients in the window")
    cells = list(zip(*rows, strict=True))
    defaulted = np.array([np.nan if v is None else float(v) for v in cells[k]], dtype=np.float64)
    weights = np.array(cells[k + 3], dtype=np.float64)
    sens = {a: np.array(cells[i], dtype=object) for i, a in enumerate(attributes)}
    kw = {"min_group": min_group, "ratio_floor": ratio_floor, "weights": weights}
    return {
        "challenger_model_id": challenger_id,
        "challenger_threshold": float(threshold),
        "champion": fairness(sens, np.array(cells[k + 1], dtype=bool), defaulted, **kw),
        "challenger": fairness(sens, np.array(cells[k + 2], dtype=bool), defaulted, **kw),
    }
