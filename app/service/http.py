"""HTTP helpers shared by every route: the one error shape, strict id parsing and body decoding, the auth guard
with its strict query-parameter check, and the OpenAPI operation helper (what Litestar cannot infer).

Every error, Litestar's own included (404 route, 405, 413, 500), has the shape {"error": str, "detail": ...}
(`app.service.schemas.Error`, one shared OpenAPI component); a 500 says "internal server error", never a traceback.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Operation

from app import ids
from app.service import schemas as s

log = logging.getLogger("app.service.api")
T = TypeVar("T")

SECURITY = [{"bearer": []}]
ID_PATTERN = ids.ID_PATTERN
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": s.MAX_ID}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
MAX_TS = 32_503_680_000.0  # 3000-01-01: time bounds beyond it are 400
ERROR_TEXT = {
    400: "invalid request (strict decoding; the message names the field or feature)",
    401: "missing or unknown API key",
    403: "the API key's role may not use this endpoint",
    404: "unknown client (drift: no predictions logged in the window)",
    409: "not enough logged traffic in the window for a drift verdict (fewer than CREDIT_DRIFT_MIN_ROWS rows)",
    413: "request body larger than the configured limit",
    501: "not available in this build",
    503: "model, database or prediction log unavailable",
}


class ApiError(Exception):
    """An answer in the one error shape: `raise ApiError(404, "unknown client", {"client_id": 7})`."""

    def __init__(self, status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None):
        super().__init__(error)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers


# ---- the one error shape ---------------------------------------------------------------------------------------


def error_body(error: str, detail: Any = None) -> bytes:
    """The one error shape's bytes, for answers sent without Litestar (app.service.fastpath)."""
    return msgspec.json.encode({"error": error, "detail": detail})


def error_response(status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None) -> Response:
    return Response(
        content={"error": error, "detail": detail}, status_code=status, headers=headers, media_type="application/json"
    )


def _on_api_error(_: Request, exc: ApiError) -> Response:
    return error_response(exc.status, exc.error, exc.detail, exc.headers)


def _on_http_exception(_: Request, exc: HTTPException) -> Response:
    if exc.status_code >= 500 and exc.detail == "client disconnected prematurely":  # Litestar's words, not ours
        log.info("client disconnected before sending its whole request body")
        return error_response(400, "client disconnected before the end of the request body")
    if exc.status_code >= 500:
        log.error("server error %s: %s", exc.status_code, exc.detail)
        return error_response(exc.status_code, "internal server error")
    if isinstance(exc, ValidationException):
        return error_response(exc.status_code, "invalid request", exc.extra, dict(exc.headers or {}) or None)
    error = str(exc.detail or "error").lower()
    return error_response(exc.status_code, error, None, dict(exc.headers or {}) or None)


def _on_exception(request: Request, exc: Exception) -> Response:
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal server error")


EXCEPTION_HANDLERS = {ApiError: _on_api_error, HTTPException: _on_http_exception, Exception: _on_exception}

NOT_FOUND_JSON = b'{"error":"not found","detail":null}'


def json_not_found_under_schema(app: Any) -> Any:
    """ASGI middleware: the OpenAPI pages answer an unknown /schema/... path with an HTML 404 of their own; send
    the one JSON error shape instead (nothing else is changed)."""

    async def middleware(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/schema/"):
            await app(scope, receive, send)
            return
        replaced = False

        async def send_json_404(message: dict) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 404:
                replaced = True
                headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(NOT_FOUND_JSON))]
                await send({"type": "http.response.start", "status": 404, "headers": headers})
                await send({"type": "http.response.body", "body": NOT_FOUND_JSON, "more_body": False})
            elif not replaced:
                await send(message)

        await app(scope, receive, send_json_404)

    return middleware


# ---- strict parsing --------------------------------------------------------------------------------------------


def parse_id(raw: str, name: str = "client_id") -> int:
    """A path id: digits only, no leading zero, 1 .. 2**53; anything else is a 400 naming it."""
    try:
        return ids.parse_client_id(raw)
    except ValueError:
        message = f"{name} must be an integer from 1 to 2**53 written with digits only"
        raise ApiError(400, message, {name: raw[:40]}) from None


def decode(body: bytes, kind: type[T]) -> T:
    """Decode a JSON body strictly (msgspec strict=True; request Structs forbid unknown fields)."""
    if not body:
        raise ApiError(400, "request body must be a JSON object")
    try:
        return msgspec.json.decode(body, type=kind, strict=True)
    except msgspec.ValidationError as exc:
        raise ApiError(400, f"invalid request body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"malformed JSON (NaN and Infinity are not JSON): {exc}") from None
    except UnicodeDecodeError as exc:  # msgspec checks UTF-8 only when it builds a str
        raise ApiError(400, "request body is not valid UTF-8", {"byte_offset": exc.start}) from None
    except RecursionError:  # msgspec's own depth limit (about 1,000 levels)
        raise ApiError(400, "JSON nested too deeply") from None


def json_value(v: object) -> object:
    """A database value as JSON: non-finite floats become null, bytes hex."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, bytes):
        return v.hex()
    return v


def finite(p: float) -> float:
    if not math.isfinite(p):  # score() never returns NaN; guard anyway rather than answer one
        raise ApiError(500, "model returned a non-finite probability")
    return float(p)


# ---- auth and strict query parameters ---------------------------------------------------------------------------

PUBLIC: dict[str, Any] = {"role": None}
OFFICER: dict[str, Any] = {"role": "officer"}
ADMIN: dict[str, Any] = {"role": "admin"}
_RESERVED = {"self", "request", "body", "data", "state", "headers", "cookies", "query", "scope", "socket"}


def auth_middleware(ring: Any) -> Callable[[Any], Any]:
    """ASGI middleware (app-level, so it runs after routing with the route's handler in the scope) checking the
    key and role of `handler.opt["role"]` (None: open; no "role": not one of ours, e.g. the OpenAPI pages), then
    that the query string holds only parameters the handler takes. Failures raise ApiError, which the route's
    exception handlers turn into the one error shape (401 with WWW-Authenticate, 403, 400), exactly as the
    Litestar guard it replaces did; the role is put in the scope's state (`request.state.role`).

    Cheaper than a guard on the hot path: no Request object, no handler copy, the Authorization header read from
    the raw header list, and the query string parsed only when there is one."""

    def factory(app: Any) -> Any:
        async def middleware(scope: dict, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                handler = scope["route_handler"]
                opt = handler.opt
                if "role" in opt:
                    required = opt["role"]
                    if required is not None:
                        state = scope.setdefault("state", {})
                        state["role"] = check_key(ring, scope["headers"], required)
                        state["user"] = check_user(ring, scope["headers"])
                    if scope["query_string"]:
                        _check_query(scope["query_string"], handler)
            await app(scope, receive, send)

        return middleware

    return factory


def check_key(ring: Any, headers: list[tuple[bytes, bytes]], required: str) -> str:
    """The role of the request's bearer key, if it may use a route needing `required` (else 401 / 403)."""
    value = None
    for name, raw in headers:
        if name == b"authorization":
            value = raw.decode("latin-1")
            break
    role = ring.role_for(value)
    if role is None:
        raise ApiError(401, "missing or invalid API key", headers={"WWW-Authenticate": 'Bearer realm="credit"'})
    if not ring.allows(role, required):
        raise ApiError(403, f"this endpoint needs the {required} role")
    return role


USER_HEADER = b"x-credit-user"
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")  # a dashboard account name (app/accounts.py)


def check_user(ring: Any, headers: list[tuple[bytes, bytes]]) -> str | None:
    """The dashboard user named in `X-Credit-User`, or None when there is no such header. Only the dashboard's
    keys may name one (KeyRing.may_name_user): any other key naming a user gets 403, a malformed name 400."""
    name = authorization = None
    for key, raw in headers:
        if key == USER_HEADER:
            name = raw.decode("latin-1")
        elif key == b"authorization":
            authorization = raw.decode("latin-1")
    if name is None:
        return None
    if not USER_NAME.fullmatch(name):
        raise ApiError(400, "X-Credit-User is not a user name (1-64 of A-Z a-z 0-9 . _ @ -)")
    if not ring.may_name_user(authorization):
        raise ApiError(403, "only the dashboard's API keys may name a user (X-Credit-User)")
    return name


def user_of(request: Request) -> str | None:
    """The dashboard user auth_middleware found in X-Credit-User (None: not called on a user's behalf)."""
    return (request.scope.get("state") or {}).get("user")


def role_of(request: Request) -> str:
    """The role auth_middleware found for the request's key."""
    return (request.scope.get("state") or {}).get("role", "unknown")


def _check_query(query_string: bytes, handler: BaseRouteHandler) -> None:
    """Strict query parameters: a name the handler does not take is a 400, not silently ignored."""
    from urllib.parse import parse_qsl

    given = {k for k, _v in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)}
    unknown = sorted(given - _query_names(handler))
    if unknown:
        raise ApiError(400, "unknown query parameters", {"unknown": unknown[:20]})


def _query_names(handler: BaseRouteHandler) -> set[str]:
    """Names a handler accepts as query parameters (everything else in the query string is a 400)."""
    names = handler.opt.get("_query_names")
    if names is None:
        path_params = set(re.findall(r"{(\w+)", "".join(handler.paths)))
        injected = set(handler.resolve_dependencies())
        names = set(handler.parsed_fn_signature.parameters) - _RESERVED - path_params - injected
        handler.opt["_query_names"] = names
    return names


# ---- OpenAPI ---------------------------------------------------------------------------------------------------


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """The documented error answers of a route: each one references the shared `Error` component."""
    return {
        code: ResponseSpec(data_container=s.Error, description=ERROR_TEXT[code], generate_examples=False)
        for code in codes
    }


def operation(
    *,
    path_ids: tuple[str, ...] = (),
    body: str | dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
    query: dict[str, Callable[[], dict[str, Any]]] | None = None,
    param_refs: dict[str, str] | None = None,
    errors: tuple[int, ...] = (),
) -> type[Operation]:
    """An Operation class documenting strict path ids, query parameter schemas and a raw JSON body.

    `body` names a shared request body (`#/components/requestBodies/NAME`) and `param_refs` maps a query
    parameter to a shared parameter (`#/components/parameters/NAME`), both written by app.service.routes.openapi:
    bodies are decoded by the route itself (strictly), so Litestar cannot infer them. A dict (or a callable
    returning one) is an inline body schema instead. `errors` documents error answers here rather than with
    `responses=errors(...)` (for routes written against the earlier `app.service.api._operation`): the same
    $ref to the `Error` component, which the core routes register."""

    def to_schema(self: Operation) -> dict[str, Any]:
        out = Operation.to_schema(self)
        for param in out.get("parameters", []):
            if param.get("in") == "path" and param.get("name") in path_ids:
                param["schema"] = dict(ID_SCHEMA)
                param["description"] = "client id: digits only, 1 .. 2**53"
            elif param.get("in") == "query" and query and param.get("name") in query:
                param.update(query[param["name"]]())
        if param_refs:
            out["parameters"] = [
                {"$ref": f"#/components/parameters/{param_refs[p['name']]}"} if p.get("name") in param_refs else p
                for p in out.get("parameters", [])
            ]
        if isinstance(body, str):
            out["requestBody"] = {"$ref": f"#/components/requestBodies/{body}"}
        elif body is not None:
            schema = body() if callable(body) else body
            out["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        responses = out.setdefault("responses", {})
        for code in errors:
            responses[str(code)] = {
                "description": ERROR_TEXT[code],
                "content": {"application/json": {"schema": ERROR_REF}},
            }
        return out

    return type("StrictOperation", (Operation,), {"to_schema": to_schema})


def time_param() -> dict[str, Any]:
    return {"schema": {"type": "number", "minimum": 0, "maximum": MAX_TS}}


TIME_PARAMS = {"since": time_param, "until": time_param}
