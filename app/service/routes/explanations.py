"""Explanations (officer): SHAP contributions and plain-language reasons (app.model.explain, loaded on first use)."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

import msgspec
import numpy as np
from litestar import Controller, get, post
from litestar.params import Parameter

from app.service import schemas as s
from app.service.http import OFFICER, SECURITY, ApiError, decode, errors, operation, parse_id
from app.service.state import Service, explainer_for
from app.vectors import vector

log = logging.getLogger("app.service.api")

Top = Annotated[int, Parameter(ge=1, le=50)]
Lang = Annotated[Literal["fr", "en"], Parameter(description="language of the reasons")]


class ExplanationsController(Controller):
    tags = ["explanations"]
    security = SECURITY

    @get("/clients/{client_id:str}/explain", sync_to_thread=True, opt=OFFICER,
         responses=errors(400, 401, 403, 404, 501, 503),
         operation_class=operation(path_ids=("client_id",)))  # fmt: skip
    def explain_client(self, svc: Service, client_id: str, top: Top = 4, lang: Lang = "fr") -> s.ClientExplanation:
        """SHAP contributions and plain-language reasons for a known client's score."""
        cid = parse_id(client_id)
        explainer = explainer_for(svc)
        svc.require_model()
        rows = svc.score_query("SELECT client_id, x FROM features WHERE client_id = ?", (cid,))
        if not rows:
            raise ApiError(404, "unknown client", {"client_id": cid})
        x = vector(rows[0][1]).copy()
        try:
            out = explainer.explain(x, top=top, lang=lang)
        except Exception as exc:  # a stored value the explainer cannot handle: say so, never a 500
            log.warning("explanation of client %d failed: %s: %s", cid, type(exc).__name__, exc)
            bad = [svc.feature_names[i] for i in np.flatnonzero(np.isinf(x))][:20]
            raise ApiError(503, "cannot explain this client's stored features", {"infinite_features": bad}) from exc
        return msgspec.convert({"client_id": cid, **out}, s.ClientExplanation)

    @post("/explain", sync_to_thread=True, status_code=200, opt=OFFICER, responses=errors(400, 401, 403, 413, 501, 503),
          operation_class=operation(body="Applicant"))  # fmt: skip
    def explain_applicant(self, svc: Service, body: bytes, top: Top = 4, lang: Lang = "fr") -> s.Explanation:
        """SHAP contributions and reasons for an applicant's raw features (same body as POST /score)."""
        req = decode(body, s.ScoreRequest)
        svc.require_model()
        x, _missing = svc.vector(req.features)
        return msgspec.convert(explainer_for(svc).explain(x, top=top, lang=lang), s.Explanation)
