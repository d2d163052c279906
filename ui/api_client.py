"""Async HTTP client of the credit API (the dashboard never opens the database itself).

One contract: every JSON answer is decoded into the API's own msgspec type (app/service/schemas.py,
app/service/portfolio.py, app/monitoring/*), the very classes the API encodes its answers with, so the dashboard
reads fields by name and an answer of another shape is an error (kind "contract"), never guessed at.

Every failure becomes an `ApiError` whose `kind` says what failed: down (connection refused), timeout,
unauthorized (401), forbidden (403), not_found (404), contract (an answer not of the API's type), api (other).
An answer in the API's error shape keeps its `error` text and `data` (the detail object), which ui/api_errors.py
turns into the officer's sentence; the API's English text itself is never shown.
"""

from __future__ import annotations

import collections
import copy
import time
from typing import Any

import httpx
import msgspec

from app.service import schemas as s
from app.service.portfolio import PortfolioSummary, Worklist
from ui import api_errors
from ui.i18n import t

EXPLAIN_TIMEOUT_S = 60.0
REPORT_TIMEOUT_S = 180.0


class ApiError(Exception):
    def __init__(
        self,
        kind: str,
        *,
        status: int | None = None,
        detail: str = "",
        url: str = "",
        error: str | None = None,
        data: Any = None,
    ) -> None:
        super().__init__(f"{kind} {status or ''} {detail} {url}".strip())
        self.kind = kind
        self.status = status
        self.detail = detail  # for logs and developers: English, never shown in a page
        self.url = url
        self.error = error  # the API's own `error` text, when the answer had the one error shape
        self.data = data  # its `detail` (null or an object)

    @property
    def code(self) -> str:
        """The stable code of the API's error (ui/api_errors.py), or the kind when the API did not answer one."""
        return api_errors.code(self.status, self.error) if self.error is not None else self.kind

    def message(self, lang: str = "fr") -> str:
        """The officer's sentence in `lang`: the API's error translated (ui/api_errors.py), or the kind's own."""
        if self.kind in ("down", "timeout", "contract"):
            return t(f"err_{self.kind}", lang, url=self.url)
        return api_errors.sentence(self.status, self.error or "", self.data, lang)


def _detail_text(payload: Any) -> str:
    """Readable text from the API error shape {"error": str, "detail": ...}."""
    if not isinstance(payload, dict):
        return str(payload)[:300]
    error = str(payload.get("error") or "")
    detail = payload.get("detail")
    if isinstance(detail, (dict, list)):
        detail = "; ".join(f"{k}: {v}" for k, v in (detail.items() if isinstance(detail, dict) else enumerate(detail)))
    parts = [p for p in (error, str(detail) if detail not in (None, "") else "") if p]
    return " — ".join(parts)[:300]


class Document(msgspec.Struct, frozen=True):
    """A document the API answers as it is (a decision letter's HTML or PDF): its bytes, media type and the headers
    worth passing on (Content-Disposition, X-Letter-Id)."""

    content: bytes
    media_type: str
    headers: dict[str, str]


DOCUMENT_HEADERS = ("content-disposition", "x-letter-id")


class ApiClient:
    """Thin wrapper over httpx.AsyncClient: base URL, bearer key, timeouts, error mapping."""

    def __init__(self, base_url: str, key: str = "", *, timeout: float = 10.0, transport=None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.latencies_ms: collections.deque[float] = collections.deque(maxlen=200)  # successful calls, newest last
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(3.0, timeout)),
            transport=transport,
        )
        self._user_headers: dict[str, str] = {}

    def for_user(self, user: str | None) -> ApiClient:
        """This client (same connections, same latency record) naming `user` in X-Credit-User, so the API logs
        who asked (the API trusts the header only from the dashboard's keys)."""
        if not user:
            return self
        bound = copy.copy(self)
        bound._user_headers = {"X-Credit-User": user}
        return bound

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call on behalf of the bound user; a failure (transport or HTTP >= 400) becomes an ApiError."""
        url = f"{self.base_url}{path}"
        t0 = time.perf_counter()
        if self._user_headers:
            kwargs["headers"] = {**self._user_headers, **(kwargs.get("headers") or {})}
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ApiError("timeout", url=url) from None
        except httpx.TransportError:
            raise ApiError("down", url=self.base_url) from None
        if response.status_code >= 400:
            error, data = None, None
            try:
                payload = response.json()
                detail = _detail_text(payload)
                if isinstance(payload, dict) and isinstance(payload.get("error"), str):
                    error, data = payload["error"], payload.get("detail")
            except ValueError:
                detail = response.text[:300]
            kind = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(response.status_code, "api")
            detail = detail or response.reason_phrase
            raise ApiError(kind, status=response.status_code, detail=detail, url=url, error=error, data=data)
        self.latencies_ms.append((time.perf_counter() - t0) * 1e3)
        return response

    async def request(self, method: str, path: str, *, decode: type | None = None, **kwargs: Any) -> Any:
        """The answer: decoded into `decode` (an API type) when given, else parsed JSON, else text."""
        response = await self._send(method, path, **kwargs)
        if decode is not None:
            try:
                return msgspec.json.decode(response.content, type=decode)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                url = f"{self.base_url}{path}"
                raise ApiError("contract", status=response.status_code, detail=str(exc)[:300], url=url) from None
        ctype = response.headers.get("content-type", "")
        if "json" in ctype:
            return response.json()
        return response.text

    async def document(self, path: str, *, timeout: float, **params: Any) -> Document:
        """A non-JSON answer (HTML, PDF) as it is: bytes, media type, the headers worth passing on."""
        response = await self._send("GET", path, params=params, timeout=timeout)
        media = response.headers.get("content-type", "application/octet-stream")
        kept = {k: v for k, v in response.headers.items() if k.lower() in DOCUMENT_HEADERS}
        return Document(response.content, media, kept)

    async def get(self, path: str, *, decode: type | None = None, **params: Any) -> Any:
        params = {k: v for k, v in params.items() if v is not None}
        return await self.request("GET", path, params=params or None, decode=decode)

    # --- endpoints (docs/contracts.md "HTTP API"), each decoded into the API's own type ---
    async def suggest(self, prefix: str, limit: int = 10) -> list[int]:
        return (await self.get("/clients", prefix=prefix, limit=limit, decode=s.ClientSearch)).client_ids

    async def client(self, client_id: int) -> s.Client:
        return await self.get(f"/clients/{int(client_id)}", decode=s.Client)

    async def score(self, client_id: int) -> s.ClientScore:
        return await self.get(f"/clients/{int(client_id)}/score", decode=s.ClientScore)

    async def features(self, client_id: int) -> dict[str, float | None]:
        return (await self.get(f"/clients/{int(client_id)}/features", decode=s.ClientFeatures)).features

    async def application(self, client_id: int) -> dict[str, Any]:
        return (await self.get(f"/clients/{int(client_id)}/application", decode=s.ClientApplication)).application

    async def what_if(self, client_id: int, changes: dict) -> s.WhatIf:
        path = f"/clients/{int(client_id)}/what-if"
        return await self.request("POST", path, json={"application": changes}, decode=s.WhatIf)

    async def score_features(self, features: dict[str, float | None]) -> s.Score:
        return await self.request("POST", "/score", json={"features": features}, decode=s.Score)

    async def explain(self, client_id: int, top: int = 8, lang: str = "fr") -> s.ClientExplanation:
        # the API loads LightGBM on its first explanation (seconds, more on a busy machine): a longer wait
        params = {"top": top, "lang": lang}
        path = f"/clients/{int(client_id)}/explain"
        return await self.request("GET", path, params=params, timeout=EXPLAIN_TIMEOUT_S, decode=s.ClientExplanation)

    async def letter(self, request_id: str, *, lang: str, fmt: str, by: str, timeout: float) -> Document:
        """The decision letter of a logged decision (GET /decisions/{request_id}/letter), HTML or PDF; the API
        records it in the name of `by`."""
        path = f"/decisions/{request_id}/letter"
        return await self.document(path, timeout=timeout, lang=lang, format=fmt, by=by)

    async def human_decisions(self, period: str = "week") -> s.HumanDecisions:
        """Override and review rates by officer, score band and period (risk role)."""
        return await self.get("/monitoring/human-decisions", period=period, decode=s.HumanDecisions)

    async def model(self) -> s.ModelInfo:
        return await self.get("/model", decode=s.ModelInfo)

    async def monitoring_summary(self) -> s.MonitoringSummary:
        return await self.get("/monitoring/summary", decode=s.MonitoringSummary)

    async def monitoring_drift(self) -> s.DriftReport:
        return await self.get("/monitoring/drift", decode=s.DriftReport)

    async def drift_report_html(self) -> str:
        # Evidently builds the report in seconds to tens of seconds
        headers = {"Accept": "text/html"}
        return await self.request("GET", "/monitoring/drift/report", headers=headers, timeout=REPORT_TIMEOUT_S)

    async def portfolio(self) -> PortfolioSummary:
        return await self.get("/portfolio", decode=PortfolioSummary)

    async def recent(self, limit: int = 10) -> Worklist:
        return await self.get("/portfolio/recent", limit=limit, decode=Worklist)

    async def borderline(self, limit: int = 10) -> Worklist:
        return await self.get("/portfolio/borderline", limit=limit, decode=Worklist)

    async def population(self, features: list[str], limit: int = 2000) -> s.Population:
        return await self.get("/population", features=",".join(features), limit=limit, decode=s.Population)

    async def performance(self) -> s.PerformanceReport:
        # reports computed over the whole log: seconds, tens of seconds on a busy machine (the page fills in later)
        params = {"period": "all"}
        path = "/monitoring/performance"
        return await self.request("GET", path, params=params, timeout=REPORT_TIMEOUT_S, decode=s.PerformanceReport)

    async def fairness(self) -> s.FairnessReport:
        path = "/monitoring/fairness"
        return await self.request("GET", path, timeout=REPORT_TIMEOUT_S, decode=s.FairnessReport)

    async def model_fairness(self) -> s.FairnessReport:
        return await self.get("/model/fairness", decode=s.FairnessReport)

    async def model_card(self) -> str:
        return await self.request("GET", "/model/card", headers={"Accept": "text/markdown"})
