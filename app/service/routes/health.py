"""GET /healthz (liveness) and GET /readyz (readiness): open, no key."""

from __future__ import annotations

from litestar import Controller, Request, get

from app.service import schemas as s
from app.service.http import PUBLIC, ApiError, errors
from app.service.state import Service


class HealthController(Controller):
    tags = ["health"]

    @get("/healthz", sync_to_thread=False, opt=PUBLIC)
    def healthz(self) -> s.Health:
        """Liveness: the process answers."""
        return s.Health(status="ok")

    @get("/readyz", sync_to_thread=True, opt=PUBLIC, responses=errors(503))
    def readyz(self, svc: Service, request: Request) -> s.Ready:
        """Readiness: database opens, model loads (hash checked), feature lists agree, SQL model_id() matches, the
        log is writable. With an admin key: the reason in words (file paths included) and the model id; without:
        the check results and a reason code only (e.g. `features_mismatch`)."""
        reason = svc.check_ready()
        checks = svc.ready[1]
        admin = svc.ring.role_for(request.headers.get("authorization")) == "admin"
        if reason or svc.model is None:
            code = next((f"{k}_{v}" for k, v in checks.items() if v != "ok"), "not_ready")
            if admin:
                raise ApiError(503, f"not ready: {reason}", {"checks": checks, "reason": code})
            raise ApiError(503, "not ready", {"checks": checks, "reason": code})
        if not admin:
            return s.Ready(status="ready", checks=checks)
        return s.Ready(
            status="ready",
            model_id=svc.model.model_id,
            n_features=len(svc.feature_names),
            checks=checks,
            reason=svc.switch_error,  # ready, but a challenger or a promoted bundle was refused: why
            challenger_model_id=svc.challenger.model_id if svc.challenger is not None else None,
        )
