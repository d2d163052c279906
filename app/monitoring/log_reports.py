"""Reports on the prediction log (app/store/predlog.py): its latest rows, and the request counts, latencies,
decisions and hourly score histograms of a period (GET /monitoring/summary, /monitoring/log).
"""

from __future__ import annotations

import time

import apsw
import numpy as np

HIST_BINS = 10  # score histogram: [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0]


# the columns `latest` shows: no feature vectors
LOG_COLUMNS = ("id", "ts", "request_id", "client_id", "probability", "decision", "model_id", "latency_ms", "role")


def latest(conn: apsw.Connection, limit: int) -> list[dict]:
    """The `limit` most recent rows, newest first, without the feature vectors."""
    names = LOG_COLUMNS + ("endpoint", "user_name")
    cur = conn.execute(f"SELECT {', '.join(names)} FROM prediction_log ORDER BY id DESC LIMIT ?", (limit,))
    return [dict(zip(names, row, strict=True)) for row in cur]


def summary(conn: apsw.Connection, since: float | None = None, until: float | None = None) -> dict:
    """Request count, latency p50/p99, decisions, per-endpoint counts and a score histogram per hour."""
    until = time.time() if until is None else until
    since = 0.0 if since is None else since
    where = "ts >= ? AND ts <= ?"
    args = (since, until)
    lat = np.array([r[0] for r in conn.execute(f"SELECT latency_ms FROM prediction_log WHERE {where}", args)])
    count = int(lat.size)
    p50 = float(np.percentile(lat, 50)) if count else None
    p99 = float(np.percentile(lat, 99)) if count else None
    decisions = dict(conn.execute(f"SELECT decision, count(*) FROM prediction_log WHERE {where} GROUP BY 1", args))
    endpoints = dict(conn.execute(f"SELECT endpoint, count(*) FROM prediction_log WHERE {where} GROUP BY 1", args))
    hours: dict[int, list[int]] = {}
    for hour, b, n in conn.execute(
        f"SELECT CAST(ts / 3600 AS INTEGER), min(CAST(probability * {HIST_BINS} AS INTEGER), {HIST_BINS - 1}), count(*)"
        f" FROM prediction_log WHERE {where} GROUP BY 1, 2 ORDER BY 1, 2",
        args,
    ):
        hours.setdefault(int(hour), [0] * HIST_BINS)[max(int(b), 0)] += int(n)
    histogram = [
        {
            "hour": time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(h * 3600)),
            "hour_ts": float(h * 3600),
            "count": sum(c),
            "counts": c,
        }
        for h, c in sorted(hours.items())
    ]
    return {
        "since": since,
        "until": until,
        "requests": count,
        "latency_ms": {"p50": p50, "p99": p99},
        "decisions": {str(k): int(v) for k, v in decisions.items()},
        "endpoints": {str(k): int(v) for k, v in endpoints.items()},
        "bin_edges": [i / HIST_BINS for i in range(HIST_BINS + 1)],
        "score_histogram": histogram,
    }
