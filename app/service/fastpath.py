"""The hot route answered in front of Litestar: `GET /clients/{id}/score` with no query string.

Litestar's per-request machinery (routing, the Request object, the middleware stack, the response object)
cost more than the route itself: about 60 % of the event loop's time per request (issue 20). `CreditApi` is
the Litestar app with one difference: that one request shape is answered by `answer` below, which does what
the route and auth_middleware do, by the same functions (`check_key`, `score_known_client`), and renders errors
in the same shape (`error_body`, the same headers). The path, method and role are read from the route as
Litestar declares it (`ROUTE`), so they have one owner. Anything else, including that path with a query
string (strict query check), another method or a trailing slash, goes through Litestar unchanged. The route
stays declared in Litestar, so the OpenAPI document describes it and Litestar's answer is what tests compare
with.

Under `credit serve` the scope also holds the requests this worker has in hand (app.service.httpguard), which
the log writer uses: a request alone commits its log row on the event loop's thread, without the hop to the
writer thread and back, and a group of rows waits a loop turn or two for the requests still on their way.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import msgspec
from litestar import Litestar

from app.service.http import ApiError, check_key, check_user, error_body
from app.service.httpguard import REQUESTS_IN_FLIGHT
from app.service.routes.scoring import ScoringController, score_known_client

log = logging.getLogger("app.service.api")

ROUTE = ScoringController.client_score  # the route as Litestar declares it: its path and role are read from it
(_PATH,) = ROUTE.paths
SCORE_PATH = re.compile(re.sub(r"\{[^}]+\}", "([^/]+)", _PATH))  # /clients/{client_id:str}/score -> one group
ROLE = ROUTE.opt["role"]
ENCODE = msgspec.json.Encoder().encode


class CreditApi(Litestar):
    """Litestar, with GET /clients/{id}/score answered before Litestar's router (module docstring)."""

    service: Any = None  # the Service; set by create_app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in ROUTE.http_methods and not scope["query_string"]:
            match = SCORE_PATH.fullmatch(scope["path"])
            if match is not None:
                in_flight = scope.get("extensions", {}).get(REQUESTS_IN_FLIGHT)  # None: not under credit serve
                await answer(self.service, scope["headers"], match.group(1), send, in_flight)
                return
        await super().__call__(scope, receive, send)


async def answer(svc: Any, headers: list[tuple[bytes, bytes]], client_id: str, send: Any, in_flight: Any) -> None:
    """The route's answer, or its error in the one error shape (what Litestar's handlers would send).
    `in_flight`: the worker's requests in hand, for the log writer's grouping (GroupWriter.commit)."""
    t0 = time.perf_counter()
    extra: dict[str, str] = {}
    try:
        role = check_key(svc.ring, headers, ROLE)
        user = check_user(svc.ring, headers)
        status, body = 200, ENCODE(await score_known_client(svc, role, client_id, t0, in_flight, user))
    except ApiError as exc:
        status, body, extra = exc.status, error_body(exc.error, exc.detail), exc.headers or {}
    except Exception as exc:  # noqa: BLE001 - as app.service.http._on_exception: logged, never a traceback out
        log.error("unhandled %s on GET /clients/%s/score", type(exc).__name__, client_id[:40], exc_info=exc)
        status, body = 500, error_body("internal server error")
    start = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    start += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})
