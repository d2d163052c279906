"""Browser-facing protections of the dashboard, as one ASGI middleware (outermost after the Host check).

- Every HTTP answer carries a Content-Security-Policy with `frame-ancestors 'none'` (no framing: clickjacking),
  X-Frame-Options DENY, nosniff and no Referer (a client id in the URL never leaves the dashboard).
- A request another site made the browser send never reaches a page: `Sec-Fetch-Site: cross-site` or an
  `Origin` that is not the dashboard's own is refused (403), before any session cookie is read, so an `<img>`,
  a form or a script on another site cannot make the dashboard score a client. A top-level navigation from
  another site (a link in an e-mail) gets a small page with a link to the same address instead, which the
  officer follows from the dashboard's own origin. The session cookie is also SameSite=Strict (ui/main.py).
- The Socket.IO endpoint only accepts its own origin (ui/main.py pins engineio's allowed origins).
"""

from __future__ import annotations

import html
import json

CSP = "; ".join(
    [
        "default-src 'self'",
        # NiceGUI (Vue, Quasar, ECharts) runs inline bootstrap code and compiles Vue templates at run time
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "frame-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "object-src 'none'",
    ]
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def _header(scope, name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == name), None)


def own_origin(scope) -> str:
    scheme = {"https": "https", "wss": "https"}.get(scope.get("scheme", "http"), "http")
    return f"{scheme}://{(_header(scope, b'host') or '').lower()}"


def is_cross_site(scope) -> bool:
    """Whether the browser says another site made this request (Sec-Fetch-Site, else a foreign Origin)."""
    site = (_header(scope, b"sec-fetch-site") or "").lower()
    if site == "cross-site" or site == "same-site":  # same-site: another port or subdomain is another origin
        return True
    origin = _header(scope, b"origin")
    return origin is not None and origin.lower() != own_origin(scope)


class BrowserGuard:
    """ASGI middleware: security headers on every answer; cross-site requests refused (see the module doc)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "websocket" and is_cross_site(scope):
            await send({"type": "websocket.close", "code": 1008})
            return None
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if is_cross_site(scope):
            return await self._refuse(scope, send)

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return await self.app(scope, receive, with_headers)

    async def _refuse(self, scope, send) -> None:
        navigate = (_header(scope, b"sec-fetch-mode") or "") == "navigate" and scope.get("method") == "GET"
        if navigate:
            path = scope.get("path", "/")
            query = scope.get("query_string", b"").decode("latin-1")
            target = html.escape(path + (f"?{query}" if query else ""), quote=True)
            body = (
                '<!doctype html><html lang="fr"><meta charset="utf-8"><title>Prêt à dépenser</title>'
                "<p>Ce lien vient d'un autre site : le tableau de bord ne l'a pas ouvert. "
                f'<a href="{target}">Ouvrir le tableau de bord</a></p>'
                "<p lang=en>This link comes from another site: the dashboard did not open it. "
                f'<a href="{target}">Open the dashboard</a></p></html>'
            ).encode()
            ctype = b"text/html; charset=utf-8"
        else:
            body = json.dumps({"error": "cross-site request refused", "detail": {"origin": own_origin(scope)}}).encode()
            ctype = b"application/json"
        headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return None
