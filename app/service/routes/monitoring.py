"""Monitoring (admin): traffic summary, the latest prediction log rows, drift against the training reference."""

from __future__ import annotations

import math
from typing import Annotated

import apsw
import msgspec
from litestar import Controller, get
from litestar.params import Parameter

from app.monitoring import log_reports
from app.service import schemas as s
from app.service.http import ADMIN, MAX_TS, SECURITY, TIME_PARAMS, ApiError, errors, operation
from app.service.state import Service


class MonitoringController(Controller):
    path = "/monitoring"
    tags = ["monitoring"]
    security = SECURITY

    @get("/summary", sync_to_thread=True, opt=ADMIN, responses=errors(400, 401, 403, 503),
         operation_class=operation(query=TIME_PARAMS))  # fmt: skip
    def monitoring_summary(
        self,
        svc: Service,
        since: Annotated[
            float | None, Parameter(ge=0, le=MAX_TS, description="unix seconds UTC (default: first row)")
        ] = None,
        until: Annotated[
            float | None, Parameter(ge=0, le=MAX_TS, description="unix seconds UTC (default: now)")
        ] = None,
    ) -> s.MonitoringSummary:
        """Scores served in [since, until]: count, latency p50/p99, decisions, endpoints, score histogram per hour."""
        for name, v in (("since", since), ("until", until)):
            if v is not None and not math.isfinite(v):
                raise ApiError(400, f"{name} must be a finite number of unix seconds")
        try:
            data = log_reports.summary(svc.log_conn(), since, until)
        except ApiError:
            raise
        except Exception as exc:
            raise ApiError(503, "prediction log unavailable", f"{type(exc).__name__}: {exc}") from exc
        return msgspec.convert(data, s.MonitoringSummary)

    @get("/log", sync_to_thread=True, opt=ADMIN, responses=errors(400, 401, 403, 503))
    def monitoring_log(self, svc: Service, limit: Annotated[int, Parameter(ge=1, le=1000)] = 50) -> s.LogPage:
        """The latest prediction log rows, newest first (feature vectors left out)."""
        try:
            rows = log_reports.latest(svc.log_conn(), limit)
        except ApiError:
            raise
        except Exception as exc:
            raise ApiError(503, "prediction log unavailable", f"{type(exc).__name__}: {exc}") from exc
        return s.LogPage(rows=[s.LogEntry(**r) for r in rows])

    @get("/drift", sync_to_thread=True, opt=ADMIN, responses=errors(400, 401, 403, 404, 501, 503),
         operation_class=operation(query=TIME_PARAMS))  # fmt: skip
    def monitoring_drift(
        self,
        svc: Service,
        since: Annotated[float | None, Parameter(ge=0, le=MAX_TS, description="unix seconds UTC")] = None,
        until: Annotated[float | None, Parameter(ge=0, le=MAX_TS, description="unix seconds UTC")] = None,
        last: Annotated[int | None, Parameter(ge=1, le=10_000_000, description="the last N logged scores")] = None,
    ) -> s.DriftReport:
        """The drift verdict (stable / watch / act) of a window of the log against the training reference: the
        model's most important features, the score's PSI, the refusal rate (app.monitoring.verdict); with the PSI
        of every feature. The window defaults to the last 1,000 requests; the report names it."""
        from app.monitoring import drift, drift_check

        if svc.manifest is None:
            raise ApiError(503, "model unavailable", svc.model_error)
        settings = svc.settings
        try:
            report = drift_check.check(
                svc.log_conn(),
                _reference(svc),
                since=since,
                until=until,
                last=last,
                min_rows=settings.drift_min_rows,
                psi_threshold=settings.psi_threshold,
                drift_share=settings.drift_share,
            )
        except drift.DriftError as exc:
            raise ApiError(503, "drift report unavailable", str(exc)) from exc
        except apsw.Error as exc:
            raise ApiError(503, "prediction log unavailable", f"{type(exc).__name__}: {exc}") from exc
        if report["empty"]:
            raise ApiError(404, "no predictions logged in the window", {"since": since, "until": until, "last": last})
        return msgspec.convert(report, s.DriftReport)


_references: dict[str | None, object] = {}


def _reference(svc: Service):
    """The served model's training reference, read once per model id."""
    from app.monitoring.verdict import Reference

    model = svc.model
    if model is None:
        raise ApiError(503, "model unavailable", svc.model_error)
    key = model.model_id
    ref = _references.get(key)
    if ref is None:
        ref = Reference.from_manifest(model.manifest, svc.model_dir)
        _references.clear()
        _references[key] = ref
    return ref
