"""GET /portfolio, /portfolio/recent, /portfolio/borderline (officer): the worklist of the dashboard's landing page.

The portfolio's snapshot, its cache and the recent-clients query are app.service.portfolio.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get
from litestar.params import Parameter

from app.service.http import SECURITY
from app.service.http import operation as _operation
from app.service.portfolio import OFFICER, PortfolioSummary, Worklist, _service, cache_of, recent_clients

LIMIT = Annotated[int, Parameter(ge=1, le=100, description="rows to return")]


class PortfolioController(Controller):
    path = "/portfolio"
    tags = ["portfolio"]
    security = SECURITY

    @get("/", sync_to_thread=True, opt=OFFICER, operation_class=_operation(errors=(400, 401, 403, 503)))
    def portfolio(self, request: Request) -> PortfolioSummary:
        """The whole portfolio under the current model: accepted, refused, clients per probability band."""
        svc = _service(request)
        return cache_of(svc).get(svc).summary()

    @get("/recent", sync_to_thread=True, opt=OFFICER, operation_class=_operation(errors=(400, 401, 403, 503)))
    def recent(self, request: Request, limit: LIMIT = 10) -> Worklist:
        """The clients scored most recently (from the prediction log), newest first, each client once."""
        svc = _service(request)
        model = svc.require_model()
        rows = recent_clients(svc.log_conn(), limit)
        return Worklist(rows=rows, threshold=float(model.threshold), model_id=model.model_id)

    @get("/borderline", sync_to_thread=True, opt=OFFICER, operation_class=_operation(errors=(400, 401, 403, 503)))
    def borderline(self, request: Request, limit: LIMIT = 10) -> Worklist:
        """The clients whose probability of default is closest to the threshold (either side), closest first."""
        svc = _service(request)
        snap = cache_of(svc).get(svc)
        return Worklist(rows=snap.borderline(limit), threshold=snap.threshold, model_id=snap.model_id)
