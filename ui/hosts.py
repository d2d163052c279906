"""The dashboard answers only requests whose `Host` header names an allowed host (CREDIT_UI_ALLOWED_HOSTS,
default the loopback names). Without it, a page on another site that resolves its own name to 127.0.0.1
(DNS rebinding) could read a dashboard that listens on loopback without a password."""

from __future__ import annotations

import json

ANY = "*"


def parse_hosts(text: str) -> frozenset[str]:
    """'localhost, 127.0.0.1,[::1]' -> {'localhost', '127.0.0.1', '[::1]'} (lower case, ports ignored)."""
    return frozenset(host_name(h) for h in text.split(",") if h.strip())


def host_name(value: str) -> str:
    """The name in a Host header value, without the port: 'Example.org:8080' -> 'example.org', '[::1]:80' -> '[::1]'."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[: end + 1] if end > 0 else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    if value.count(":") > 1:  # a bare IPv6 address
        return f"[{value}]"
    return value


def allowed(host_header: str | None, hosts: frozenset[str]) -> bool:
    if ANY in hosts:
        return True
    return bool(host_header) and host_name(host_header) in hosts


class AllowedHosts:
    """ASGI middleware: 400 in the API's error shape (HTTP) or a refused websocket for any other Host."""

    def __init__(self, app, allowed: frozenset[str]) -> None:
        self.app, self.hosts = app, frozenset(allowed)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), None)
        if allowed(host, self.hosts):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return None
        body = json.dumps(
            {
                "error": "host not allowed",
                "detail": {"host": (host or "")[:200], "setting": "CREDIT_UI_ALLOWED_HOSTS"},
            }
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return None
