"""HTTP API: `create_app(settings) -> Litestar`, assembled from the controllers in app.service.routes.

Design notes (kept short; the README's API section is built from them):
- One Controller per resource (app/service/routes/: health, clients, scoring, explanations, model, monitoring,
  population); each route receives the Service as the `svc` dependency (app-level `dependencies`, cached).
- The Service (app.service.state) holds the state: settings, keys, the verified model bundle, one apsw connection per
  thread, the log writer. Its `lifespan` loads the bundle and prepares the log at startup and closes the writer
  and the connections at shutdown.
- Bodies are decoded by the routes with msgspec (`strict=True`, unknown fields forbidden), never by Litestar's
  lax conversion; path ids are parsed with a strict pattern (1 .. 2**53, digits only); unknown query parameters
  are 400 (app.service.http).
- Every error, Litestar's own included (404 route, 405, 413, 500), has the shape {"error": str, "detail": ...}
  (`app.service.schemas.Error`, one OpenAPI component every error response refers to); a 500 never carries a traceback.
- Auth: `Authorization: Bearer KEY`, roles officer < risk < admin (app.service.auth), checked by the ASGI
  middleware `auth_middleware` in app.service.http (after routing, before the handler). /healthz, /readyz and
  /schema* are open.
- The hot route, GET /clients/{id}/score without a query string, is answered in front of Litestar's router by
  app.service.fastpath (same functions, same answers, same errors); Litestar serves every other request.
- Scoring handlers are light (one SQL statement does lookup + inference) and run on the event loop thread;
  heavier ones (monitoring, population, readiness, explain, drift) run in worker threads.
- Prediction log (app.store.predlog): every score served is committed to `prediction_log` BEFORE the response is sent
  (a batch is one transaction). Commits are durable (synchronous=FULL) and grouped: one writer thread per process
  commits the rows of all requests waiting at that moment in one transaction. If the log cannot be written, the
  request fails with 503 {"error": "prediction log unavailable"}: the API never answers a score it could not log.
  latency_ms in the log is the time to compute the answer, up to (not including) the log commit.
- The scoring path imports numpy, apsw, msgspec and the compiled model only (no pandas, LightGBM or shap).
"""

from __future__ import annotations

import contextlib
import os

from litestar import Litestar
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from app import __version__
from app.config import Settings
from app.service.fastpath import CreditApi
from app.service.http import EXCEPTION_HANDLERS, auth_middleware, json_not_found_under_schema
from app.service.portfolio import warm_up
from app.service.routes import CONTROLLERS
from app.service.routes.drift_report import DriftReportController
from app.service.routes.openapi import components
from app.service.routes.outcomes import OutcomesController
from app.service.routes.portfolio import PortfolioController
from app.service.routes.rights import RightsController
from app.service.state import Service, lifespan, service_provider

__all__ = ["app_from_env", "create_app"]


def create_app(settings: Settings) -> Litestar:
    svc = Service(settings)
    security = Components(security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")})
    app = CreditApi(
        route_handlers=[*CONTROLLERS, OutcomesController, PortfolioController, DriftReportController, RightsController],
        dependencies={"svc": service_provider(svc)},
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=settings.body_max,
        lifespan=[lifespan],
        on_startup=[warm_up],
        middleware=[json_not_found_under_schema, auth_middleware(svc.ring)],
        state=State({"service": svc}),
        logging_config=None,
        debug=False,
        openapi_config=OpenAPIConfig(
            title="Prêt à dépenser credit scoring API",
            version=__version__,
            path="/schema",
            render_plugins=[SwaggerRenderPlugin(path="/"), JsonRenderPlugin(path="/openapi.json")],
            components=[security, components(svc)],
            use_handler_docstrings=True,
            operation_id_creator=_operation_id,
        ),
    )
    app.service = svc
    return app


def _operation_id(handler: HTTPRouteHandler, method: str, components: list[object]) -> str:
    """Operation ids are the handlers' names (`client_score`): what a generated client calls its functions."""
    return handler.handler_name


def app_from_env() -> Litestar:
    """Factory for uvicorn (`app.service.api:app_from_env`, factory=True): settings from CREDIT_* variables."""
    from app.config import load_settings

    settings = load_settings(os.environ)
    if settings.workers > 1:
        _die_with_parent()
    return create_app(settings)


def _die_with_parent() -> None:
    """In a uvicorn worker: get SIGTERM (graceful stop) if the supervisor dies, even by SIGKILL (Linux only)."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the supervisor is already gone
            os.kill(os.getpid(), signal.SIGTERM)
