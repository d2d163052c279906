"""HTTP API: `create_app(settings) -> Litestar`.

Design notes (kept short; the README's API section is built from them):
- Bodies are decoded here with msgspec (`strict=True`, unknown fields forbidden), never by Litestar's lax
  conversion; path ids are parsed with a strict pattern (1 .. 2**53, digits only).
- Every error, Litestar's own included (404 route, 405, 413, 500), has the shape {"error": str, "detail": ...};
  a 500 says "internal server error" and never carries a traceback.
- Auth: `Authorization: Bearer KEY`, roles officer < risk < admin (app.auth). /healthz, /readyz and /schema* are open.
- State (app.service): settings, keys, model, one apsw connection per thread, the log writer. Scoring
  handlers are light (one SQL statement does lookup + inference) and run on the event loop thread; heavier ones
  (monitoring, population, readiness, explain, drift) run in worker threads.
- Prediction log (app.predlog): every score served is committed to `prediction_log`, in the operational store
  (app.store, its own file that re-imports never touch), BEFORE the response is sent
  (a batch is one transaction). Commits are durable (synchronous=FULL) and grouped: one writer thread per process
  commits the rows of all requests waiting at that moment in one transaction. If the log cannot be written, the
  request fails with 503 {"error": "prediction log unavailable"}: the API never answers a score it could not log.
  latency_ms in the log is the time to compute the answer, up to (not including) the log commit.
- The scoring path imports numpy, apsw, msgspec and the compiled model only (no pandas, LightGBM or shap).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import math
import os
import re
import time
from typing import Annotated, Any, Literal

import apsw
import msgspec
import numpy as np
from litestar import Litestar, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, Operation, SecurityScheme
from litestar.params import Parameter

from app import __version__, predlog
from app import schemas as s
from app.config import Settings
from app.service import (
    FLOAT32_MAX,
    ApiError,
    Service,
    decode,
    explainer_for,
    feature_completeness,
    finite,
    parse_id,
    population_sample,
)

log = logging.getLogger("app.api")

SECURITY = [{"bearer": []}]
MAX_TS = 32_503_680_000.0  # 3000-01-01: time bounds beyond it are 400


def _time_param() -> dict[str, Any]:
    return {"schema": {"type": "number", "minimum": 0, "maximum": MAX_TS}}


TIME_PARAMS = {"since": _time_param, "until": _time_param}


# ---- errors ---------------------------------------------------------------------------------------------------


def _error_response(status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None) -> Response:
    return Response(
        content={"error": error, "detail": detail}, status_code=status, headers=headers, media_type="application/json"
    )


def _on_api_error(_: Request, exc: ApiError) -> Response:
    return _error_response(exc.status, exc.error, exc.detail, exc.headers)


def _on_http_exception(_: Request, exc: HTTPException) -> Response:
    if exc.status_code >= 500 and exc.detail == "client disconnected prematurely":  # Litestar's words, not ours
        log.info("client disconnected before sending its whole request body")
        return _error_response(400, "client disconnected before the end of the request body")
    if exc.status_code >= 500:
        log.error("server error %s: %s", exc.status_code, exc.detail)
        return _error_response(exc.status_code, "internal server error")
    detail = exc.extra if isinstance(exc, ValidationException) else None
    error = exc.detail or "error"
    if isinstance(exc, ValidationException):
        error = "invalid request"
    return _error_response(exc.status_code, str(error).lower(), detail, dict(exc.headers or {}) or None)


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


def _on_exception(request: Request, exc: Exception) -> Response:
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
    return _error_response(500, "internal server error")


# ---- OpenAPI helpers ------------------------------------------------------------------------------------------

ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "detail": {}},
    "required": ["error", "detail"],
}
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": s.MAX_ID}
NUMBER_OR_NULL = {"anyOf": [{"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}, {"type": "null"}]}
WHATIF_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["application"],
    "properties": {
        "application": {
            "type": "object",
            "description": "raw application column -> new value (number, text or null)",
            "additionalProperties": {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}]},
        }
    },
}
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


def _operation(
    *,
    errors: tuple[int, ...],
    path_ids: tuple[str, ...] = (),
    body: Any = None,
    query: dict[str, Any] | None = None,
) -> type[Operation]:
    """An Operation class that documents what Litestar cannot infer: strict path ids, the raw JSON body, errors.

    `body` is a JSON schema dict, or a zero-argument callable returning one (evaluated when /schema is built).
    """

    def to_schema(self: Operation) -> dict[str, Any]:
        out = Operation.to_schema(self)
        for param in out.get("parameters", []):
            if param.get("in") == "path" and param.get("name") in path_ids:
                param["schema"] = dict(ID_SCHEMA)
                param["description"] = "client id: digits only, 1 .. 2**53"
        for param in out.get("parameters", []):
            if param.get("in") == "query" and query and param.get("name") in query:
                param.update(query[param["name"]]())
        if body is not None:
            out["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": body() if callable(body) else body}},
            }
        responses = out.setdefault("responses", {})
        for code in errors:
            responses[str(code)] = {
                "description": ERROR_TEXT[code],
                "content": {"application/json": {"schema": ERROR_SCHEMA}},
            }
        return out

    return type("StrictOperation", (Operation,), {"to_schema": to_schema})


# ---- the app --------------------------------------------------------------------------------------------------


def create_app(settings: Settings) -> Litestar:
    svc = Service(settings)

    async def auth_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
        if "role" not in handler.opt:  # not one of ours (OpenAPI pages): open
            return
        required = handler.opt["role"]
        if required is not None:
            role = svc.ring.role_for(connection.headers.get("authorization"))
            if role is None:
                raise ApiError(401, "missing or invalid API key", headers={"WWW-Authenticate": 'Bearer realm="credit"'})
            if not svc.ring.allows(role, required):
                raise ApiError(403, f"this endpoint needs the {required} role")
            connection.state.role = role
        unknown = sorted(set(connection.query_params) - _query_names(handler))
        if unknown:  # strict: a misspelt parameter is an error, not silently ignored
            raise ApiError(400, "unknown query parameters", {"unknown": unknown[:20]})

    def score_body_schema() -> dict[str, Any]:
        if svc.feature_names:
            feats = {
                "type": "object",
                "additionalProperties": False,
                "properties": {n: NUMBER_OR_NULL for n in svc.feature_names},
            }
        else:
            feats = {"type": "object", "additionalProperties": NUMBER_OR_NULL}
        return {
            "type": "object",
            "additionalProperties": False,
            "required": ["features"],
            "properties": {"features": feats},
        }

    def batch_body_schema() -> dict[str, Any]:
        n = settings.batch_max
        return {
            "type": "object",
            "additionalProperties": False,
            "description": f"exactly one of client_ids or applicants, at most {n} items",
            "properties": {
                "client_ids": {"type": "array", "items": ID_SCHEMA, "minItems": 1, "maxItems": n},
                "applicants": {"type": "array", "items": score_body_schema(), "minItems": 1, "maxItems": n},
            },
            "oneOf": [{"required": ["client_ids"]}, {"required": ["applicants"]}],
        }

    public = {"role": None}
    officer = {"role": "officer"}
    admin = {"role": "admin"}
    client_ops = _operation(errors=(400, 401, 403, 404, 503), path_ids=("client_id",))
    explain_ops = _operation(errors=(400, 401, 403, 404, 501, 503), path_ids=("client_id",))

    # -- open endpoints

    @get("/healthz", sync_to_thread=False, opt=public, tags=["health"], operation_class=_operation(errors=()))
    def healthz() -> s.Health:
        """Liveness: the process answers."""
        return s.Health(status="ok")

    @get("/readyz", sync_to_thread=True, opt=public, tags=["health"], operation_class=_operation(errors=(503,)))
    def readyz(request: Request) -> s.Ready:
        """Readiness: database opens, model loads (hash checked), feature lists agree, SQL model_id() matches, the
        log is writable. With an admin key: the reason in words (file paths included) and the model id; without:
        the check results and a reason code only (e.g. `features_mismatch`)."""
        reason = svc.check_ready()
        checks = svc.ready[1]
        admin = svc.ring.role_for(request.headers.get("authorization")) == "admin"
        if reason:
            code = next((f"{k}_{v}" for k, v in checks.items() if v != "ok"), "not_ready")
            if admin:
                raise ApiError(503, f"not ready: {reason}", {"checks": checks, "reason": code})
            raise ApiError(503, "not ready", {"checks": checks, "reason": code})
        if not admin:
            return s.Ready(status="ready", checks=checks)
        return s.Ready(
            status="ready", model_id=svc.model.model_id, n_features=len(svc.feature_names), checks=checks, reason=None
        )

    # -- clients

    @get("/clients", sync_to_thread=False, opt=officer, security=SECURITY, tags=["clients"],
         operation_class=_operation(errors=(400, 401, 403, 503)))  # fmt: skip
    def search_clients(
        prefix: Annotated[str, Parameter(pattern=r"^[0-9]{0,16}$", description="leading digits of a client id")] = "",
        limit: Annotated[int, Parameter(ge=1, le=100)] = 10,
    ) -> s.ClientSearch:
        """Search suggestions: client ids starting with `prefix`, shortest (closest) first."""
        if prefix and prefix.startswith("0"):
            return s.ClientSearch(client_ids=[])
        conn = svc.conn(model=False)
        ids: list[int] = []
        if not prefix:
            ids = [r[0] for r in conn.execute("SELECT client_id FROM clients ORDER BY client_id LIMIT ?", (limit,))]
            return s.ClientSearch(client_ids=ids)
        base = int(prefix)
        for k in range(0, 17 - len(prefix)):
            lo, hi = base * 10**k, (base + 1) * 10**k - 1
            if lo > s.MAX_ID:
                break
            ids.extend(
                r[0]
                for r in conn.execute(
                    "SELECT client_id FROM clients WHERE client_id BETWEEN ? AND ? ORDER BY client_id LIMIT ?",
                    (lo, min(hi, s.MAX_ID), limit - len(ids)),
                )
            )
            if len(ids) >= limit:
                break
        return s.ClientSearch(client_ids=ids[:limit])

    @get("/clients/{client_id:str}", sync_to_thread=False, opt=officer, security=SECURITY, tags=["clients"],
         operation_class=client_ops)  # fmt: skip
    def get_client(client_id: str) -> s.Client:
        """The client's readable columns (table `clients`)."""
        cid = parse_id(client_id)
        cur = svc.conn(model=False).execute("SELECT * FROM clients WHERE client_id = ?", (cid,))
        row = cur.fetchone()
        if row is None:
            raise ApiError(404, "unknown client", {"client_id": cid})
        names = [d[0] for d in cur.getdescription()]
        fields = {n: _json_value(v) for n, v in zip(names, row, strict=True) if n != "client_id"}
        return s.Client(client_id=cid, fields=fields)

    @get("/clients/{client_id:str}/application", sync_to_thread=True, opt=officer, security=SECURITY,
         tags=["clients"], operation_class=client_ops)  # fmt: skip
    def get_application(client_id: str) -> s.ClientApplication:
        """The client's raw application columns (application_train or application_test), as imported.
        404 for an unknown client or for a database imported with `credit ingest-csv`."""
        cid = parse_id(client_id)
        fields = {k: _json_value(v) for k, v in svc.application(cid).items()}
        return s.ClientApplication(client_id=cid, application=fields)

    @get("/clients/{client_id:str}/features", sync_to_thread=False, opt=officer, security=SECURITY,
         tags=["clients"], operation_class=client_ops)  # fmt: skip
    def get_features(client_id: str) -> s.ClientFeatures:
        """The client's model features (null = missing): the starting point of a what-if."""
        cid = parse_id(client_id)
        svc.require_model()
        rows = svc.score_query("SELECT client_id, x FROM features WHERE client_id = ?", (cid,))
        if not rows:
            raise ApiError(404, "unknown client", {"client_id": cid})
        x = np.frombuffer(rows[0][1], dtype="<f4")
        feats = {n: (None if v != v else float(v)) for n, v in zip(svc.feature_names, x.tolist(), strict=True)}
        return s.ClientFeatures(client_id=cid, features=feats)

    @get("/clients/{client_id:str}/score", opt=officer, security=SECURITY, tags=["scoring"],
         operation_class=client_ops)  # fmt: skip
    async def client_score(request: Request, client_id: str) -> s.ClientScore:
        """Probability of default and decision for a known client (one SQL statement: lookup + inference).

        The score is written to the prediction log before this answer is sent (503 if it cannot be).
        """
        t0 = time.perf_counter()
        cid = parse_id(client_id)
        model = svc.require_model()
        rows = svc.score_query("SELECT client_id, score_features(x), x FROM features WHERE client_id = ?", (cid,))
        if not rows:
            raise ApiError(404, "unknown client", {"client_id": cid})
        row = rows[0][1:]
        p = finite(row[0])
        d = svc.decide(p)
        entry = svc.row(request, "GET /clients/{id}/score", t0, cid, row[1], p, d)
        await svc.write_log([entry])
        return _client_score(s.ClientScore, entry, np.frombuffer(row[1], dtype="<f4"), model.threshold)

    @post("/clients/{client_id:str}/what-if", status_code=200, opt=officer, security=SECURITY, tags=["scoring"],
          operation_class=_operation(errors=(400, 401, 403, 404, 413, 503), path_ids=("client_id",),
                                     body=WHATIF_BODY))  # fmt: skip
    async def client_what_if(request: Request, client_id: str, body: bytes) -> s.WhatIf:
        """Score a known client after changing raw application values (e.g. {"application": {"AMT_CREDIT":
        450000}}). The application features are recomputed with the ingest's SQL, so ratios and other derived
        features follow; the other sources keep their stored values. `changed_features` lists every feature
        that moved. Logged before the answer, like every score."""
        t0 = time.perf_counter()
        cid = parse_id(client_id)
        req = decode(body, s.WhatIfRequest)
        model = svc.require_model()
        before, x = await asyncio.to_thread(svc.what_if, cid, req.application)
        p = finite(model.predict_row(x))
        d = svc.decide(p)
        entry = svc.row(request, "POST /clients/{id}/what-if", t0, cid, x.astype("<f4").tobytes(), p, d)
        await svc.write_log([entry])
        moved = np.flatnonzero(~((before == x) | (np.isnan(before) & np.isnan(x))))
        changed = {
            svc.feature_names[i]: s.FeatureChange(before=_json_value(float(before[i])), after=_json_value(float(x[i])))
            for i in moved
        }
        return _client_score(s.WhatIf, entry, x, model.threshold, changed_features=changed)

    # -- scoring

    @post("/score", status_code=200, opt=officer, security=SECURITY, tags=["scoring"],
          operation_class=_operation(errors=(400, 401, 403, 413, 503), body=score_body_schema))  # fmt: skip
    async def score_applicant(request: Request, body: bytes) -> s.Score:
        """Score an applicant from raw features. Unknown names, non-numbers and NaN/Infinity literals are 400;
        absent or null features are missing (NaN) and reported in `missing` and `completeness`. Logged before
        the answer (503 if the log cannot be written)."""
        t0 = time.perf_counter()
        req = decode(body, s.ScoreRequest)
        model = svc.require_model()
        x, missing = svc.vector(req.features)
        p = finite(model.predict_row(x))
        d = svc.decide(p)
        entry = svc.row(request, "POST /score", t0, None, x.astype("<f4").tobytes(), p, d)
        await svc.write_log([entry])
        return s.Score(
            probability=p,
            decision=d,
            threshold=model.threshold,
            model_id=model.model_id,
            missing=missing,
            completeness=feature_completeness(x),
            request_id=entry.request_id,
        )

    @post("/score/batch", status_code=200, opt=officer, security=SECURITY, tags=["scoring"],
          operation_class=_operation(errors=(400, 401, 403, 404, 413, 503), body=batch_body_schema),
          description=f"Score up to CREDIT_BATCH_MAX ({settings.batch_max}) known clients or applicants in one "
          "request. Every item is logged in one transaction before the answer. Unknown client ids: 404 naming "
          "them, nothing scored.")  # fmt: skip
    async def score_batch(request: Request, body: bytes) -> s.BatchScore:
        t0 = time.perf_counter()
        req = decode(body, s.BatchRequest)
        model = svc.require_model()
        ids, applicants = req.client_ids, req.applicants
        given = [k for k, v in (("client_ids", ids), ("applicants", applicants)) if v is not msgspec.UNSET]
        if len(given) != 1:
            raise ApiError(400, "give exactly one of client_ids or applicants", {"given": given})
        items = ids if ids is not msgspec.UNSET else applicants
        if len(items) > settings.batch_max:
            raise ApiError(
                400, f"batch too large: {len(items)} items, at most {settings.batch_max}", {"max": settings.batch_max}
            )
        if not items:
            raise ApiError(400, "empty batch")
        results: list[s.BatchItem] = []
        rows: list[predlog.LogRow] = []
        if ids is not msgspec.UNSET:
            found: dict[int, tuple[float, bytes]] = {}
            for cid, p, x in svc.score_query(
                "SELECT client_id, score_features(x), x FROM features"
                " WHERE client_id IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted(set(ids))),),
            ):
                found[cid] = (p, x)
            unknown = [cid for cid in dict.fromkeys(ids) if cid not in found]
            if unknown:
                raise ApiError(404, "unknown client ids", {"client_ids": unknown[:100], "count": len(unknown)})
            for cid in ids:
                p, xb = found[cid]
                p = finite(p)
                d = svc.decide(p)
                x = np.frombuffer(xb, dtype="<f4")
                missing = [svc.feature_names[i] for i in np.flatnonzero(np.isnan(x))]
                entry = svc.row(request, "POST /score/batch", t0, cid, xb, p, d)
                rows.append(entry)
                results.append(s.BatchItem(cid, p, d, feature_completeness(x), missing, entry.request_id))
        else:
            vecs = []
            for i, a in enumerate(applicants):
                vecs.append(svc.vector(a.features, where=f"applicants[{i}]"))
            X = np.ascontiguousarray(np.stack([v[0] for v in vecs]), dtype=np.float32)
            probs = model.predict(X)
            for (x, missing), p in zip(vecs, probs, strict=True):
                p = finite(p)
                d = svc.decide(p)
                entry = svc.row(request, "POST /score/batch", t0, None, x.astype("<f4").tobytes(), p, d)
                rows.append(entry)
                results.append(s.BatchItem(None, p, d, feature_completeness(x), missing, entry.request_id))
        await svc.write_log(rows)
        return s.BatchScore(results=results, threshold=model.threshold, model_id=model.model_id)

    # -- model

    @get("/model", sync_to_thread=False, opt=officer, security=SECURITY, tags=["model"],
         operation_class=_operation(errors=(401, 403, 503)))  # fmt: skip
    def model_manifest() -> dict[str, Any]:
        """The model manifest (features, threshold, costs, metrics, versions) without the drift reference sample."""
        if svc.manifest is None:
            raise ApiError(503, "model unavailable", svc.model_error)
        return {"serving_app_version": __version__} | {k: v for k, v in svc.manifest.items() if k != "reference"}

    # -- monitoring (admin)

    @get("/monitoring/summary", sync_to_thread=True, opt=admin, security=SECURITY, tags=["monitoring"],
         operation_class=_operation(errors=(400, 401, 403, 503), query=TIME_PARAMS))  # fmt: skip
    def monitoring_summary(
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
            data = predlog.summary(svc.log_conn(), since, until)
        except Exception as exc:
            if isinstance(exc, ApiError):
                raise
            raise ApiError(503, "prediction log unavailable", f"{type(exc).__name__}: {exc}") from exc
        return msgspec.convert(data, s.MonitoringSummary)

    @get("/monitoring/log", sync_to_thread=True, opt=admin, security=SECURITY, tags=["monitoring"],
         operation_class=_operation(errors=(400, 401, 403, 503)))  # fmt: skip
    def monitoring_log(limit: Annotated[int, Parameter(ge=1, le=1000)] = 50) -> s.LogPage:
        """The latest prediction log rows, newest first (feature vectors left out)."""
        try:
            rows = predlog.latest(svc.log_conn(), limit)
        except Exception as exc:
            if isinstance(exc, ApiError):
                raise
            raise ApiError(503, "prediction log unavailable", f"{type(exc).__name__}: {exc}") from exc
        return s.LogPage(rows=[s.LogEntry(**r) for r in rows])

    @get("/monitoring/drift", sync_to_thread=True, opt=admin, security=SECURITY, tags=["monitoring"],
         operation_class=_operation(errors=(400, 401, 403, 404, 501, 503), query=TIME_PARAMS))  # fmt: skip
    def monitoring_drift(
        since: Annotated[float | None, Parameter(ge=0, le=MAX_TS, description="unix seconds UTC")] = None,
        until: Annotated[float | None, Parameter(ge=0, le=MAX_TS, description="unix seconds UTC")] = None,
        last: Annotated[int | None, Parameter(ge=1, le=10_000_000, description="the last N logged scores")] = None,
    ) -> dict[str, Any]:
        """Drift of the logged features against the training reference (PSI per feature; app.drift)."""
        if importlib.util.find_spec("app.drift") is None:
            raise ApiError(501, "drift report not available in this build")
        from app import drift

        if svc.manifest is None:
            raise ApiError(503, "model unavailable", svc.model_error)
        conn = svc.log_conn()
        lo, hi = (0.0 if since is None else since), (math.inf if until is None else until)
        try:
            n = conn.execute("SELECT count(*) FROM prediction_log WHERE ts >= ? AND ts <= ?", (lo, hi)).fetchall()[0][0]
        except apsw.Error as exc:
            raise ApiError(503, "prediction log unavailable", f"{type(exc).__name__}: {exc}") from exc
        if n == 0:
            raise ApiError(404, "no predictions logged in the window", {"since": since, "until": until})
        try:
            return drift.psi_report(
                conn,
                svc.manifest,
                since=since,
                until=until,
                last=last,
                psi_threshold=settings.psi_threshold,
                drift_share=settings.drift_share,
            )
        except getattr(drift, "DriftError", ()) as exc:
            raise ApiError(503, "drift report unavailable", str(exc)) from exc

    # -- population (officer)

    def features_param() -> dict[str, Any]:
        items: dict[str, Any] = {"type": "string"}
        if svc.feature_names:
            items["enum"] = list(svc.feature_names)
        return {
            "schema": {"type": "array", "items": items, "minItems": 1, "maxItems": 20},
            "style": "form",
            "explode": False,
            "description": "comma-separated model feature names (at most 20)",
        }

    @get("/population", sync_to_thread=True, opt=officer, security=SECURITY, tags=["clients"],
         operation_class=_operation(errors=(400, 401, 403, 503), query={"features": features_param}))  # fmt: skip
    def population(
        features: Annotated[str | None, Parameter(description="comma-separated model feature names")] = None,
        limit: Annotated[int, Parameter(ge=1, le=5000)] = 500,
    ) -> s.Population:
        """A fixed random sample of clients: values of the requested features, probability and decision.

        For the dashboard's comparison charts. Not written to the prediction log: it describes the portfolio,
        it is not a decision served about one client."""
        model = svc.require_model()
        names = features.split(",") if features is not None else []
        unknown = [n for n in names if n not in svc.index]
        if unknown:
            raise ApiError(400, "unknown feature names", {"unknown_features": unknown[:50]})
        if len(names) > 20:
            raise ApiError(400, "at most 20 features")
        conn = svc.conn()
        sample = population_sample(svc, conn)[:limit]
        cols = [svc.index[n] for n in names]
        rows = []
        for cid, p, xb in svc.score_query(  # rows whose length does not match the model are left out
            "SELECT client_id, score_features(x), x FROM features WHERE client_id IN (SELECT value FROM json_each(?))"
            " AND length(x) = ? ORDER BY client_id",
            (json.dumps([int(i) for i in sample]), 4 * len(svc.feature_names)),
        ):
            x = np.frombuffer(xb, dtype="<f4")
            vals = [None if x[c] != x[c] else float(x[c]) for c in cols]
            p = finite(p)
            rows.append(s.PopulationRow(client_id=cid, values=vals, probability=p, decision=svc.decide(p)))
        return s.Population(features=names, rows=rows, threshold=model.threshold, model_id=model.model_id)

    # -- explanations (explain part; 501 until app.model.explain exists)

    @get("/clients/{client_id:str}/explain", sync_to_thread=True, opt=officer, security=SECURITY,
         tags=["explanations"], operation_class=explain_ops)  # fmt: skip
    def explain_client(
        client_id: str,
        top: Annotated[int, Parameter(ge=1, le=50)] = 4,
        lang: Annotated[Literal["fr", "en"], Parameter(description="language of the reasons")] = "fr",
    ) -> dict[str, Any]:
        """SHAP contributions and plain-language reasons for a known client's score."""
        cid = parse_id(client_id)
        explainer = explainer_for(svc)
        svc.require_model()
        rows = svc.score_query("SELECT client_id, x FROM features WHERE client_id = ?", (cid,))
        if not rows:
            raise ApiError(404, "unknown client", {"client_id": cid})
        x = np.frombuffer(rows[0][1], dtype="<f4").copy()
        try:
            return {"client_id": cid, **explainer.explain(x, top=top, lang=lang)}
        except Exception as exc:  # a stored value the explainer cannot handle: say so, never a 500
            log.warning("explanation of client %d failed: %s: %s", cid, type(exc).__name__, exc)
            bad = [svc.feature_names[i] for i in np.flatnonzero(np.isinf(x))][:20]
            raise ApiError(503, "cannot explain this client's stored features", {"infinite_features": bad}) from exc

    @post("/explain", sync_to_thread=True, status_code=200, opt=officer, security=SECURITY, tags=["explanations"],
          operation_class=_operation(errors=(400, 401, 403, 413, 501, 503), body=score_body_schema))  # fmt: skip
    def explain_applicant(
        body: bytes,
        top: Annotated[int, Parameter(ge=1, le=50)] = 4,
        lang: Annotated[Literal["fr", "en"], Parameter(description="language of the reasons")] = "fr",
    ) -> dict[str, Any]:
        """SHAP contributions and reasons for an applicant's raw features (same body as POST /score)."""
        req = decode(body, s.ScoreRequest)
        svc.require_model()
        x, _missing = svc.vector(req.features)
        return explainer_for(svc).explain(x, top=top, lang=lang)

    app = Litestar(
        route_handlers=[
            healthz,
            readyz,
            search_clients,
            get_client,
            get_application,
            get_features,
            client_what_if,
            client_score,
            score_applicant,
            score_batch,
            model_manifest,
            monitoring_summary,
            monitoring_log,
            monitoring_drift,
            population,
            explain_client,
            explain_applicant,
            importlib.import_module("app.monitoring.routes").MonitoringController,  # issue 19: outcomes, fairness
            *_dashboard_routes(),  # app/portfolio.py (worklist), app/drift_report.py (Evidently HTML)
        ],
        guards=[auth_guard],
        middleware=[json_not_found_under_schema],
        exception_handlers={ApiError: _on_api_error, HTTPException: _on_http_exception, Exception: _on_exception},
        request_max_body_size=settings.body_max,
        on_startup=[svc.startup, _warm_portfolio],
        on_shutdown=[svc.shutdown],
        logging_config=None,
        debug=False,
        openapi_config=OpenAPIConfig(
            title="Prêt à dépenser credit scoring API",
            version=__version__,
            path="/schema",
            render_plugins=[SwaggerRenderPlugin(path="/"), JsonRenderPlugin(path="/openapi.json")],
            components=Components(security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}),
            use_handler_docstrings=True,
        ),
    )
    app.state.service = svc
    return app


def _dashboard_routes() -> list[Any]:
    from app.drift_report import DriftReportController
    from app.portfolio import PortfolioController

    return [PortfolioController, DriftReportController]


def _warm_portfolio(app: Litestar) -> None:
    from app.portfolio import warm_up

    warm_up(app)


_RESERVED = {"request", "body", "data", "state", "headers", "cookies", "query", "scope", "socket"}


def _query_names(handler: BaseRouteHandler) -> set[str]:
    """Names a handler accepts as query parameters (everything else in the query string is a 400)."""
    names = handler.opt.get("_query_names")
    if names is None:
        path_params = set(re.findall(r"{(\w+)", "".join(handler.paths)))
        names = set(handler.parsed_fn_signature.parameters) - _RESERVED - path_params
        handler.opt["_query_names"] = names
    return names


def _client_score(kind: type, entry: Any, x: np.ndarray, threshold: float, **extra: Any) -> Any:
    """A ClientScore (or subclass) for the logged `entry` of a known client's vector `x`."""
    return kind(
        client_id=entry.client_id,
        probability=entry.probability,
        decision=entry.decision,
        threshold=threshold,
        model_id=entry.model_id,
        completeness=feature_completeness(x),
        request_id=entry.request_id,
        **extra,
    )


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, bytes):
        return v.hex()
    return v


def app_from_env() -> Litestar:
    """Factory for uvicorn (`app.api:app_from_env`, factory=True): settings from CREDIT_* environment variables."""
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
