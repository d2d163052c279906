"""GET /model (officer): the manifest of the model being served, without the drift reference sample."""

from __future__ import annotations

import msgspec
from litestar import Controller, get

from app import __version__
from app.service import schemas as s
from app.service.http import OFFICER, SECURITY, ApiError, errors
from app.service.state import Service


class ModelController(Controller):
    tags = ["model"]
    security = SECURITY

    @get("/model", sync_to_thread=False, opt=OFFICER, responses=errors(401, 403, 503))
    def model_manifest(self, svc: Service) -> s.ModelInfo:
        """The model manifest (features, threshold, costs, metrics, versions) without the drift reference sample."""
        if svc.manifest is None:
            raise ApiError(503, "model unavailable", svc.model_error)
        shown = {k: v for k, v in svc.manifest.items() if k != "reference"}
        return msgspec.convert({"serving_app_version": __version__} | shown, s.ModelInfo)
