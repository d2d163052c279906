"""GET /monitoring/fairness's report: built by the worker process (app.monitoring.worker), kept per window for
FRESH_S whatever is logged meanwhile (a dashboard reloaded under live traffic does not start a worker each time),
and up to CACHE_TTL_S while the log and the outcomes are unchanged (their newest row ids). The report says when
it was computed (`cached_at`, unix seconds)."""

from __future__ import annotations

import asyncio
import time

from app.monitoring.worker import WorkerError, run

CACHE_TTL_S = 300.0
FRESH_S = 30.0
TIMEOUT_S = 300.0
_lock = asyncio.Lock()
_cache: dict[tuple, tuple[float, dict, tuple]] = {}

__all__ = ["WorkerError", "report"]


def _version(svc) -> tuple:
    """(newest log row, newest outcome row): a new decision or outcome makes a new report."""
    conn = svc.log_conn()
    out = []
    for sql in ("SELECT max(id) FROM prediction_log", "SELECT max(rowid), count(*) FROM outcomes"):
        try:
            out.append(tuple(conn.execute(sql).fetchall()[0]))
        except Exception:  # noqa: BLE001 - a store without the table yet: no version, the worker says why
            out.append(None)
    return tuple(out)


async def report(svc, *, attributes: tuple[str, ...], since, until, min_group: int) -> dict:
    challenger = svc.challenger.model_id if svc.challenger is not None else None
    key = (attributes, since, until, min_group, challenger)
    version = _version(svc)
    async with _lock:  # one report at a time; a second caller of the same window gets the first one's
        hit = _cache.get(key)
        if hit:
            age = time.monotonic() - hit[0]
            if age < FRESH_S or (age < CACHE_TTL_S and hit[2] == version):
                return hit[1]
        job = {
            "store": str(svc.log_db_path),
            "data": str(svc.db_path),
            "model_dir": str(svc.model_dir),
            "attributes": list(attributes),
            "since": since,
            "until": until,
            "min_group": min_group,
        }
        rep = await run("fairness", job, TIMEOUT_S)
        rep["cached_at"] = time.time()
        _cache.clear()
        _cache[key] = (time.monotonic(), rep, version)
        return rep
