"""Realised performance: outcomes joined with the decision that was served, not a re-score.

Each outcome (client, defaulted, observed_at) is paired with the client's latest prediction-log row logged
at or before `observed_at` inside the window: the probability, decision and model id served then. From
those pairs, per model id and per calendar period of the decision: realised AUC (equal to sklearn's
`roc_auc_score` on the same rows), calibration by score band (mean predicted PD vs observed default rate),
and the cost per client of the decisions taken (fn_cost per accepted defaulter, fp_cost per refused good
client), beside accept-all. A group with fewer than `min_outcomes` outcomes, or with one class only,
reports `too_few_outcomes` and no figures. Outcomes of clients never scored are counted and listed.

Challenger in shadow (`challenger` section): the log rows that carry both scores (sql/store/004) compare the
champion and the challenger ON THE SAME CLIENTS: per (champion, challenger) pair, the realised figures of both
from the same joined outcomes (the challenger's decisions by its own threshold, when known), and the score
distributions of every shadow row in the window (10 bins, PSI of the challenger's against the champion's,
share of decisions that would differ).

Imports numpy only (no pandas, no sklearn): the API serves this.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from app.errors import CreditError
from app.monitoring.log_reports import HIST_BINS  # the score histogram's bins, [0, 0.1) ... [0.9, 1]

BANDS = (0.0, 0.02, 0.05, 0.10, 0.20, 0.30, 0.50, 1.0)  # score bands (predicted PD), last one closed
MIN_OUTCOMES = 100  # fewer outcomes than this in a group: no figures
MIN_BAND = 20  # fewer outcomes than this in a score band: no observed rate
PERIODS = ("day", "week", "month", "all")
MAX_LISTED = 20  # client ids listed for unmatched outcomes


class PerformanceError(CreditError, ValueError):
    pass


# ---- pure figures -----------------------------------------------------------------------------------------


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks for ties); needs both classes."""
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise PerformanceError("AUC needs at least one default and one non-default")
    order = np.argsort(p, kind="mergesort")
    sp = p[order]
    ranks = np.empty(len(p), dtype=np.float64)
    # mid-ranks: every run of equal scores gets the mean of its positions (1-based)
    starts = np.flatnonzero(np.r_[True, sp[1:] != sp[:-1]])
    ends = np.r_[starts[1:], len(sp)]
    mid = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(mid, ends - starts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def calibration(y: np.ndarray, p: np.ndarray, edges: tuple[float, ...] = BANDS, min_band: int = MIN_BAND) -> list[dict]:
    """Per score band [lo, hi) (the last band includes 1): count, mean predicted PD, observed default rate
    (None below `min_band` outcomes, with too_few_outcomes set)."""
    e = np.asarray(edges, dtype=np.float64)
    band = np.clip(np.searchsorted(e, p, side="right") - 1, 0, len(e) - 2)
    n = np.bincount(band, minlength=len(e) - 1)
    sum_p = np.bincount(band, weights=p, minlength=len(e) - 1)
    sum_y = np.bincount(band, weights=y.astype(np.float64), minlength=len(e) - 1)
    out = []
    for i in range(len(e) - 1):
        k = int(n[i])
        few = k < min_band
        out.append(
            {
                "band": [float(e[i]), float(e[i + 1])],
                "n": k,
                "mean_predicted": None if k == 0 else float(sum_p[i] / k),
                "observed_default_rate": None if few else float(sum_y[i] / k),
                "defaults": int(sum_y[i]),
                "too_few_outcomes": few,
            }
        )
    return out


def cost(y: np.ndarray, refused: np.ndarray, fn_cost: float, fp_cost: float) -> dict:
    """Cost of the decisions taken, per client, beside accepting everyone."""
    y = np.asarray(y).astype(bool)
    refused = np.asarray(refused).astype(bool)
    n = len(y)
    fn = int((~refused & y).sum())  # accepted, then defaulted
    fp = int((refused & ~y).sum())  # refused, would have repaid
    tp = int((refused & y).sum())
    tn = n - fn - fp - tp
    return {
        "cost_per_client": (fn_cost * fn + fp_cost * fp) / n,
        "accept_all_cost_per_client": fn_cost * int(y.sum()) / n,
        "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn},
        "approval_rate": float((~refused).mean()),
    }


def evaluate(
    y: np.ndarray,
    p: np.ndarray,
    refused: np.ndarray,
    *,
    fn_cost: float,
    fp_cost: float,
    min_outcomes: int = MIN_OUTCOMES,
    edges: tuple[float, ...] = BANDS,
    min_band: int = MIN_BAND,
) -> dict:
    """All figures for one group of joined rows, or too_few_outcomes and a reason."""
    n = len(y)
    defaults = int(np.asarray(y).sum())
    base = {"outcomes": n, "defaults": defaults, "default_rate": defaults / n if n else None}
    if n < min_outcomes:
        return base | {"too_few_outcomes": True, "reason": f"{n} outcomes, at least {min_outcomes} needed"}
    if defaults in (0, n):
        return base | {"too_few_outcomes": True, "reason": "all outcomes are of one class: no AUC"}
    return base | {
        "too_few_outcomes": False,
        "auc": auc(y, p),
        "mean_predicted": float(np.mean(p)),
        "calibration": calibration(y, p, edges, min_band),
        **cost(y, refused, fn_cost, fp_cost),
    }


# ---- the join ---------------------------------------------------------------------------------------------


@dataclass
class Joined:
    client_id: np.ndarray  # int64
    defaulted: np.ndarray  # int8
    ts: np.ndarray  # decision time, float64 unix seconds
    probability: np.ndarray  # float64, as served
    refused: np.ndarray  # bool, as served
    model_id: np.ndarray  # object (str)
    outcomes_total: int
    never_scored: int
    never_scored_ids: list[int]
    window: dict
    lo: float = -math.inf  # the bounds join() used (--last applied)
    hi: float = math.inf


# For each outcome, the client's latest decision at or before observed_at inside the window (SQLite: the bare
# columns of a max() aggregate come from the row holding the max); read from the covering index only.
JOIN_SQL = """
SELECT o.client_id, o.defaulted, max(l.ts), l.probability, l.decision = 'refuse', l.model_id
FROM outcomes AS o
JOIN prediction_log AS l INDEXED BY prediction_log_client_ts
    ON l.client_id = o.client_id AND l.ts <= o.observed_at AND l.ts >= ?1 AND l.ts < ?2
GROUP BY o.client_id
"""

UNSCORED_SQL = """
SELECT o.client_id FROM outcomes AS o
WHERE NOT EXISTS (SELECT 1 FROM prediction_log WHERE client_id = o.client_id AND ts <= o.observed_at)
ORDER BY o.client_id
"""


def _iso(ts: float | None) -> str | None:
    return None if ts is None or not math.isfinite(ts) else datetime.fromtimestamp(ts, UTC).isoformat("T", "seconds")


def join(conn, *, since: float | None = None, until: float | None = None, last: int | None = None) -> Joined:
    """Outcomes paired with the decisions served (see the module text). `last`: only the N most recent log
    rows count as decisions (ties at the cut-off time are kept)."""
    lo = -math.inf if since is None else float(since)
    hi = math.inf if until is None else float(until)
    if last is not None:
        if last <= 0:
            raise PerformanceError("--last must be a positive number of predictions")
        row = conn.execute(
            "SELECT ts FROM prediction_log WHERE ts >= ? AND ts < ? ORDER BY ts DESC, id DESC LIMIT 1 OFFSET ?",
            (lo, hi, last - 1),
        ).fetchall()
        if row:
            lo = max(lo, float(row[0][0]))
    rows = conn.execute(JOIN_SQL, (lo, hi)).fetchall()
    total = int(conn.execute("SELECT count(*) FROM outcomes").fetchall()[0][0])
    unscored = [r[0] for r in conn.execute(UNSCORED_SQL)]
    if rows:
        cid, dflt, ts, prob, refused, model = zip(*rows, strict=True)
    else:
        cid = dflt = ts = prob = refused = model = ()
    return Joined(
        client_id=np.array(cid, dtype=np.int64),
        defaulted=np.array(dflt, dtype=np.int8),
        ts=np.array(ts, dtype=np.float64),
        probability=np.array(prob, dtype=np.float64),
        refused=np.array(refused, dtype=bool),
        model_id=np.array(model, dtype=object),
        outcomes_total=total,
        never_scored=len(unscored),
        never_scored_ids=[int(c) for c in unscored[:MAX_LISTED]],
        window={"since": _iso(lo), "until": _iso(hi), "last": last},
        lo=lo,
        hi=hi,
    )


# The challenger's comparison reads a partial covering index (sql/store/004) of the shadow rows only.
SHADOW_JOIN_SQL = """
SELECT o.client_id, o.defaulted, max(l.ts), l.probability, l.decision = 'refuse', l.model_id,
       l.challenger_score, l.challenger_model_id
FROM outcomes AS o
JOIN prediction_log AS l INDEXED BY prediction_log_shadow
    ON l.client_id = o.client_id AND l.ts <= o.observed_at AND l.ts >= ?1 AND l.ts < ?2
    AND l.challenger_score IS NOT NULL
GROUP BY o.client_id
"""

SHADOW_DIST_SQL = f"""
SELECT model_id, challenger_model_id,
       min(CAST(probability * {HIST_BINS} AS INTEGER), {HIST_BINS - 1}),
       min(CAST(challenger_score * {HIST_BINS} AS INTEGER), {HIST_BINS - 1}),
       count(*), sum(decision = 'refuse'), sum(challenger_score >= ?3)
FROM prediction_log INDEXED BY prediction_log_shadow
WHERE challenger_score IS NOT NULL AND ts >= ?1 AND ts < ?2 AND challenger_model_id = ?4
GROUP BY 1, 2, 3, 4
"""

SHADOW_PAIRS_SQL = """
SELECT DISTINCT challenger_model_id FROM prediction_log INDEXED BY prediction_log_shadow
WHERE challenger_score IS NOT NULL AND ts >= ?1 AND ts < ?2
"""


def psi(expected: np.ndarray, actual: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index of `actual` against `expected` (bin counts; empty bins floored at eps)."""
    e = np.maximum(expected / max(expected.sum(), 1), eps)
    a = np.maximum(actual / max(actual.sum(), 1), eps)
    return float(np.sum((a - e) * np.log(a / e)))


def challenger_section(
    conn,
    *,
    lo: float,
    hi: float,
    fn_cost: float,
    fp_cost: float,
    thresholds: dict[str, float] | None = None,
    min_outcomes: int = MIN_OUTCOMES,
    edges: tuple[float, ...] = BANDS,
    min_band: int = MIN_BAND,
) -> list[dict]:
    """Champion vs challenger on the same clients, one entry per (champion, challenger) pair of the window."""
    thresholds = thresholds or {}
    kw = {"fn_cost": fn_cost, "fp_cost": fp_cost, "min_outcomes": min_outcomes, "edges": edges, "min_band": min_band}
    rows = conn.execute(SHADOW_JOIN_SQL, (lo, hi)).fetchall()
    joined: dict[tuple[str, str], list[tuple]] = {}
    for r in rows:
        joined.setdefault((r[5], r[7]), []).append(r)
    out = []
    for (challenger_id,) in conn.execute(SHADOW_PAIRS_SQL, (lo, hi)).fetchall():
        thr = thresholds.get(challenger_id)
        hist: dict[str, np.ndarray] = {}
        refused = {}
        for champion_id, _c, b1, b2, n, ref1, ref2 in conn.execute(
            SHADOW_DIST_SQL, (lo, hi, 2.0 if thr is None else thr, challenger_id)
        ).fetchall():
            h = hist.setdefault(champion_id, np.zeros((HIST_BINS, HIST_BINS), dtype=np.int64))
            h[max(int(b1), 0), max(int(b2), 0)] += int(n)
            r0 = refused.setdefault(champion_id, [0, 0])
            r0[0] += int(ref1)
            r0[1] += int(ref2)
        for champion_id, h in sorted(hist.items()):
            n = int(h.sum())
            champ_counts, chal_counts = h.sum(axis=1), h.sum(axis=0)
            pairs = joined.get((champion_id, challenger_id), [])
            entry = {
                "champion_model_id": champion_id,
                "challenger_model_id": challenger_id,
                "challenger_threshold": thr,
                "shadow_rows": n,
                "score_distribution": {
                    "bin_edges": [i / HIST_BINS for i in range(HIST_BINS + 1)],
                    "champion": champ_counts.tolist(),
                    "challenger": chal_counts.tolist(),
                    "psi": psi(champ_counts.astype(float), chal_counts.astype(float)),
                    "champion_refusal_rate": refused[champion_id][0] / n,
                    "challenger_refusal_rate": None if thr is None else refused[champion_id][1] / n,
                },
                "matched": len(pairs),
            }
            y = np.array([r[1] for r in pairs], dtype=np.int8)
            p1 = np.array([r[3] for r in pairs], dtype=np.float64)
            ref1 = np.array([r[4] for r in pairs], dtype=bool)
            p2 = np.array([r[6] for r in pairs], dtype=np.float64)
            ref2 = p2 >= thr if thr is not None else ref1
            entry["champion"] = evaluate(y, p1, ref1, **kw)
            entry["challenger"] = evaluate(y, p2, ref2, **kw)
            if thr is None:
                entry["challenger"]["note"] = "threshold unknown: cost and approval are the champion's decisions"
            if len(pairs):
                entry["decisions_differ"] = float(np.mean(ref1 != ref2)) if thr is not None else None
            out.append(entry)
    return out


def period_key(ts: np.ndarray, period: str) -> np.ndarray:
    """Calendar period of each decision time (UTC): '2025-03-31', '2025-W14', '2025-03' or 'all'."""
    if period not in PERIODS:
        raise PerformanceError(f"period must be one of {', '.join(PERIODS)}")
    if period == "all":
        return np.full(len(ts), "all", dtype=object)
    day_numbers, inverse = np.unique(np.floor(ts / 86400).astype("int64"), return_inverse=True)
    days = day_numbers.astype("datetime64[D]")  # labels are made once per distinct day
    if period == "day":
        labels = days.astype(str)
    elif period == "month":
        labels = days.astype("datetime64[M]").astype(str)
    else:  # ISO week: Monday-based; the year of the week's Thursday
        weekday = (day_numbers + 3) % 7  # 1970-01-01 was a Thursday -> 3
        thursday = days - weekday.astype("timedelta64[D]") + np.timedelta64(3, "D")
        year = thursday.astype("datetime64[Y]")
        week = (thursday - year.astype("datetime64[D]")).astype("int64") // 7 + 1
        labels = np.array([f"{y}-W{w:02d}" for y, w in zip(year.astype(str), week, strict=True)])
    return labels.astype(object)[inverse]


def report(
    conn,
    *,
    fn_cost: float,
    fp_cost: float,
    since: float | None = None,
    until: float | None = None,
    last: int | None = None,
    period: str = "day",
    min_outcomes: int = MIN_OUTCOMES,
    edges: tuple[float, ...] = BANDS,
    min_band: int = MIN_BAND,
    thresholds: dict[str, float] | None = None,
) -> dict:
    """The realised performance report: overall, per model id, and per model id and period; `challenger`: the
    champion/challenger comparisons of the shadow rows (`thresholds`: model id -> threshold, for the
    challenger's decisions)."""
    t0 = time.perf_counter()
    j = join(conn, since=since, until=until, last=last)
    keys = period_key(j.ts, period)
    kw = {"fn_cost": fn_cost, "fp_cost": fp_cost, "min_outcomes": min_outcomes, "edges": edges, "min_band": min_band}

    def figures(mask: np.ndarray) -> dict:
        return evaluate(j.defaulted[mask], j.probability[mask], j.refused[mask], **kw)

    model_ids, model_code = np.unique(j.model_id.astype(str), return_inverse=True)
    period_ids, period_code = np.unique(keys.astype(str), return_inverse=True)
    models = []
    for i, mid in enumerate(model_ids.tolist()):
        m = model_code == i
        periods = [
            {"period": str(period_ids[k]), **figures(m & (period_code == k))}
            for k in np.unique(period_code[m]).tolist()
        ]
        models.append({"model_id": mid, **figures(m), "periods": periods})
    overall = figures(np.ones(len(j.defaulted), dtype=bool))
    return {
        "window": j.window,
        "period": period,
        "costs": {"fn": fn_cost, "fp": fp_cost},
        "min_outcomes": min_outcomes,
        "outcomes_total": j.outcomes_total,
        "matched": int(len(j.defaulted)),
        "never_scored": {"count": j.never_scored, "client_ids": j.never_scored_ids},
        "outside_window": j.outcomes_total - j.never_scored - int(len(j.defaulted)),
        "overall": overall,
        "models": models,
        "challenger": challenger_section(conn, lo=j.lo, hi=j.hi, thresholds=thresholds, **kw),
        "seconds": round(time.perf_counter() - t0, 3),
    }
