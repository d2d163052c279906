"""Async HTTP client of the credit API (the dashboard never opens the database itself).

Every failure becomes an `ApiError` whose `kind` picks a translated message in ui/i18n.py:
down (connection refused), timeout, unauthorized (401), forbidden (403), not_found (404), api (other).
"""

from __future__ import annotations

import collections
import time
from typing import Any

import httpx

from ui.i18n import t

EXPLAIN_TIMEOUT_S = 60.0
REPORT_TIMEOUT_S = 180.0


class ApiError(Exception):
    def __init__(self, kind: str, *, status: int | None = None, detail: str = "", url: str = "") -> None:
        super().__init__(f"{kind} {status or ''} {detail} {url}".strip())
        self.kind = kind
        self.status = status
        self.detail = detail
        self.url = url

    def message(self, lang: str = "fr") -> str:
        return t(f"err_{self.kind}", lang, url=self.url, status=self.status, detail=self.detail)


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

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.base_url}{path}"
        t0 = time.perf_counter()
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ApiError("timeout", url=url) from None
        except httpx.TransportError:
            raise ApiError("down", url=self.base_url) from None
        if response.status_code >= 400:
            try:
                detail = _detail_text(response.json())
            except ValueError:
                detail = response.text[:300]
            kind = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(response.status_code, "api")
            raise ApiError(kind, status=response.status_code, detail=detail or response.reason_phrase, url=url)
        self.latencies_ms.append((time.perf_counter() - t0) * 1e3)
        ctype = response.headers.get("content-type", "")
        if "json" in ctype:
            return response.json()
        return response.text

    async def get(self, path: str, **params: Any) -> Any:
        params = {k: v for k, v in params.items() if v is not None}
        return await self.request("GET", path, params=params or None)

    # --- endpoints (docs/contracts.md "HTTP API") ---
    async def suggest(self, prefix: str, limit: int = 10) -> list[int]:
        data = await self.get("/clients", prefix=prefix, limit=limit)
        return [int(i) for i in data.get("client_ids", [])]

    async def client(self, client_id: int) -> dict:
        return await self.get(f"/clients/{int(client_id)}")

    async def score(self, client_id: int) -> dict:
        return await self.get(f"/clients/{int(client_id)}/score")

    async def features(self, client_id: int) -> dict[str, float | None]:
        data = await self.get(f"/clients/{int(client_id)}/features")
        return dict(data.get("features", {}))

    async def application(self, client_id: int) -> dict:
        data = await self.get(f"/clients/{int(client_id)}/application")
        return dict(data.get("application", {}))

    async def what_if(self, client_id: int, changes: dict) -> dict:
        return await self.request("POST", f"/clients/{int(client_id)}/what-if", json={"application": changes})

    async def score_features(self, features: dict[str, float | None]) -> dict:
        return await self.request("POST", "/score", json={"features": features})

    async def explain(self, client_id: int, top: int = 8, lang: str = "fr") -> dict:
        # the API loads LightGBM on its first explanation (seconds, more on a busy machine): a longer wait
        params = {"top": top, "lang": lang}
        return await self.request("GET", f"/clients/{int(client_id)}/explain", params=params, timeout=EXPLAIN_TIMEOUT_S)

    async def model(self) -> dict:
        return await self.get("/model")

    async def monitoring_summary(self) -> dict:
        return await self.get("/monitoring/summary")

    async def monitoring_drift(self) -> dict:
        return await self.get("/monitoring/drift")

    async def drift_report_html(self) -> str:
        # Evidently builds the report in seconds to tens of seconds
        headers = {"Accept": "text/html"}
        return await self.request("GET", "/monitoring/drift/report", headers=headers, timeout=REPORT_TIMEOUT_S)

    async def portfolio(self) -> dict:
        return await self.get("/portfolio")

    async def recent(self, limit: int = 10) -> dict:
        return await self.get("/portfolio/recent", limit=limit)

    async def borderline(self, limit: int = 10) -> dict:
        return await self.get("/portfolio/borderline", limit=limit)

    async def population(self, features: list[str], limit: int = 2000) -> Any:
        return await self.get("/population", features=",".join(features), limit=limit)
