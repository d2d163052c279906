"""GET /monitoring/drift/report (admin): the Evidently drift report as an HTML page, for the dashboard's button.

Same window rule as `credit drift`: below `drift_min_rows` scored rows there is no verdict and no report
(409 in the one error shape, saying how many rows there are). Evidently runs in a worker process
(app.monitoring.worker: seconds of pandas and plotly that would hold this process's GIL and make /healthz and
GET score wait); the handler awaits it without blocking the event loop. One report is built at a time and
kept for REPORT_TTL_S for the same window (the same newest log row), so repeated clicks are cheap.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from pathlib import Path
from typing import Annotated

import apsw
from litestar import Controller, Request, Response, get
from litestar.params import Parameter

from app.service.http import MAX_TS, SECURITY, TIME_PARAMS, ApiError
from app.service.http import operation as _operation
from app.store import predlog

REPORT_TTL_S = 60.0
REPORT_TIMEOUT_S = 300.0
_lock = asyncio.Lock()
_cache: dict[tuple, tuple[float, str]] = {}


class DriftReportController(Controller):
    path = "/monitoring/drift/report"
    tags = ["monitoring"]
    security = SECURITY

    @get(
        "/",
        opt={"role": "admin"},
        media_type="text/html",
        operation_class=_operation(errors=(400, 401, 403, 409, 501, 503), query={"since": TIME_PARAMS["since"]}),
    )
    async def drift_report(
        self,
        request: Request,
        last: Annotated[int | None, Parameter(ge=1, le=10_000_000, description="the last N logged scores")] = None,
        since: Annotated[float | None, Parameter(ge=0, le=MAX_TS, description="unix seconds UTC")] = None,
    ) -> Response:
        """Evidently's drift report (features + score, reference sample vs logged traffic) as an HTML page."""
        from app.monitoring import drift, worker
        from app.monitoring.drift_check import resolve_window

        svc = request.app.state.service
        if since is not None and not math.isfinite(since):
            raise ApiError(400, "since must be a finite number of unix seconds")
        since, _until, last = resolve_window(since, None, last)  # the window `credit drift` would judge
        model = svc.model
        if model is None:
            raise ApiError(503, "model unavailable", svc.model_error)
        conn = svc.log_conn()
        lo = 0.0 if since is None else since
        try:  # an indexed count: milliseconds
            source, vector = predlog.scored_vectors(conn)  # a stored client's vector is kept once per data version
            n, last_id = conn.execute(
                f"SELECT count(*), max(l.id) FROM {source} WHERE l.ts >= ? AND length({vector}) = ?",
                (lo, 4 * len(svc.feature_names)),
            ).fetchall()[0]
        except apsw.Error as exc:
            raise ApiError(503, "prediction log unavailable", f"{type(exc).__name__}: {exc}") from exc
        rows = min(n, last) if last else n
        message = drift.too_few_rows(rows, svc.settings.drift_min_rows)
        if message:
            raise ApiError(409, message, {"rows": rows, "min_rows": svc.settings.drift_min_rows})
        key = (model.model_id, last, since, last_id)
        async with _lock:
            hit = _cache.get(key)
            if hit and time.monotonic() - hit[0] < REPORT_TTL_S:
                return Response(hit[1], media_type="text/html")
            with tempfile.TemporaryDirectory(prefix="drift-report-") as tmp:
                html_path = Path(tmp) / "report.html"
                job = {
                    "store": str(svc.log_db_path),
                    "model_dir": str(svc.model_dir),
                    "since": since,
                    "last": last,
                    "html": str(html_path),
                    "drift_share": svc.settings.drift_share,
                    "psi_threshold": svc.settings.psi_threshold,
                }
                try:
                    await worker.run("evidently", job, REPORT_TIMEOUT_S)
                except worker.WorkerError as exc:
                    raise ApiError(503, "drift report unavailable", str(exc)) from exc
                html = html_path.read_text(encoding="utf-8")
            _cache.clear()
            _cache[key] = (time.monotonic(), html)
        return Response(html, media_type="text/html")
