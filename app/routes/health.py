"""GET /healthz (liveness) and GET /readyz (readiness): open, no key."""

from __future__ import annotations

from litestar import Controller, get

from app import schemas as s
from app.http import PUBLIC, ApiError, errors
from app.service import Service


class HealthController(Controller):
    tags = ["health"]

    @get("/healthz", sync_to_thread=False, opt=PUBLIC)
    def healthz(self) -> s.Health:
        """Liveness: the process answers."""
        return s.Health(status="ok")

    @get("/readyz", sync_to_thread=True, opt=PUBLIC, responses=errors(503))
    def readyz(self, svc: Service) -> s.Ready:
        """Readiness: database opens, model loads (hash checked), feature lists agree, SQL model_id() matches."""
        reason = svc.check_ready()
        checks = svc.ready[1]
        if reason or svc.model is None:
            raise ApiError(503, f"not ready: {reason}", {"checks": checks})
        return s.Ready(
            status="ready", model_id=svc.model.model_id, n_features=len(svc.feature_names), checks=checks, reason=None
        )
