"""Limits uvicorn does not enforce, for hostile and slow clients: uvicorn's httptools protocol with guards.

What uvicorn 0.5x with httptools does by itself: closes a keep-alive connection idle for `timeout_keep_alive`
seconds after a response. What it does not (checked in its source): cap the size or number of request headers
(httptools buffers a header value until it ends, so a 100 MB header was held in memory; `h11_max_incomplete_
event_size` only applies to the slower h11 parser), close a new connection that never sends a byte, stop a
client that sends its headers one byte a second, or cap the number of connections (`limit_concurrency` answers
503 only once the headers are in, after the connection and its file descriptor are already taken). And its own
protocol errors are plain text. This protocol adds, per connection:

- head limit: at most MAX_HEAD_BYTES bytes of header names and values and at most MAX_HEADERS headers -> 431
  (what arrives before the parser buffers it is capped at MAX_HEAD_BYTES + MAX_URL_BYTES for the whole
  head); a URL longer than MAX_URL_BYTES -> 414;
- header deadline: a request's line and headers must be complete within HEAD_TIMEOUT seconds of the
  connection opening or of the previous response -> the connection is closed (with 408 if some bytes came);
- body deadline: once the headers are in, the body must be complete within BODY_TIMEOUT seconds -> 408 (a
  client that sends its body one byte a second holds a request, a task and the connection otherwise);
- connection cap: beyond MAX_CONNECTIONS open connections in this worker, a new one is answered 503 and closed;
- protocol errors (malformed request line or headers, bad Content-Length, NUL/CR in a header) -> 400.

Every such answer has the API's one error shape {"error": str, "detail": ...} and closes the connection.

It also hands the app the worker's set of request tasks (`scope["extensions"][REQUESTS_IN_FLIGHT]`), which the
prediction log's group commit reads (app.store.group_writer.GroupWriter.commit).
"""

from __future__ import annotations

import json
import logging
import resource
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

REQUESTS_IN_FLIGHT = "credit.requests_in_flight"  # scope["extensions"] key: this worker's request tasks (a set)
MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100
MAX_URL_BYTES = 8 * 1024
HEAD_TIMEOUT = 10.0
BODY_TIMEOUT = 30.0


def _connection_cap(wanted: int = 1024, reserve: int = 64) -> int:
    """`wanted`, or fewer when the process may not open that many files (sockets, the database, the log)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return wanted if soft == resource.RLIM_INFINITY else max(16, min(wanted, soft - reserve))


MAX_CONNECTIONS = _connection_cap()

log = logging.getLogger("uvicorn.error")

REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


class _Reject(Exception):  # noqa: N818 - a signal out of the parser's callbacks, not an error
    def __init__(self, status: int, error: str, detail: Any = None):
        super().__init__(error)
        self.status, self.error, self.detail = status, error, detail


def error_response(status: int, error: str, detail: Any = None) -> bytes:
    """A complete HTTP/1.1 response in the API's error shape, with `Connection: close`."""
    body = json.dumps({"error": error, "detail": detail}).encode()
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % (
        status,
        REASONS[status],
        len(body),
    )
    return head + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # the current request's line and headers are not complete yet
        self._head_bytes = 0
        self._head_seen = 0  # bytes of the current head seen (for 408 vs a silent close)
        self._tail = b""  # last bytes of the head so far, to find b"\r\n\r\n" across chunks
        self._n_headers = self._header_bytes = 0
        self._url_bytes = 0
        self._reject: _Reject | None = None
        self._head_timer: Any = None
        self._body_timer: Any = None

    # -- connection
    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > MAX_CONNECTIONS:
            log.warning("connection cap reached (%d in this worker): refusing a connection", MAX_CONNECTIONS)
            self._send_and_close(error_response(503, "too many connections", {"max_per_worker": MAX_CONNECTIONS}))
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_seen += len(data)
            chunk = self._tail + data
            end = chunk.find(b"\r\n\r\n")
            head_part = len(data) if end < 0 else max(0, end + 4 - len(self._tail))
            self._head_bytes += head_part
            self._tail = chunk[-3:] if end < 0 else b""
            if self._head_bytes > MAX_HEAD_BYTES + MAX_URL_BYTES:
                self._refuse(_Reject(431, "request headers too large", {"max_bytes": MAX_HEAD_BYTES}))
                return
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        """Called by uvicorn on a parser error (ours included): answer in the error shape and close."""
        reject, self._reject = self._reject, None
        if reject is None:
            reject = _Reject(400, "malformed HTTP request", msg)
        self._refuse(reject)

    # -- parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope.setdefault("extensions", {})[REQUESTS_IN_FLIGHT] = self.tasks  # read by app.service.fastpath

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes > MAX_URL_BYTES:
            self._reject = _Reject(414, "request URL too long", {"max_bytes": MAX_URL_BYTES})
            raise self._reject
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._n_headers += 1
        self._header_bytes += len(name) + len(value)
        if self._n_headers > MAX_HEADERS:
            self._reject = _Reject(431, "too many request headers", {"max_headers": MAX_HEADERS})
            raise self._reject
        if self._header_bytes > MAX_HEAD_BYTES:  # exact; data_received's cap only bounds what is buffered
            self._reject = _Reject(431, "request headers too large", {"max_bytes": MAX_HEAD_BYTES})
            raise self._reject
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()
        self._body_timer = self.loop.call_later(BODY_TIMEOUT, self._body_timeout)

    def on_message_complete(self) -> None:
        self._cancel_body_timer()
        super().on_message_complete()
        self._in_head, self._head_bytes, self._head_seen, self._tail = True, 0, 0, b""
        self._n_headers = self._url_bytes = self._header_bytes = 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._in_head:
            self._arm_head_timer()

    # -- helpers
    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_timeout)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._in_head:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a response in progress (pipelined): uvicorn closes after it
        if self._head_seen:
            self._send_and_close(
                error_response(408, "request headers not received in time", {"timeout_seconds": HEAD_TIMEOUT})
            )
        else:
            self.transport.close()  # idle: nothing was asked, nothing to answer

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_timeout(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        log.warning("request body not received within %.0f s: closing the connection", BODY_TIMEOUT)
        if self.cycle is not None and not self.cycle.response_started:
            self._send_and_close(
                error_response(408, "request body not received in time", {"timeout_seconds": BODY_TIMEOUT})
            )
        else:
            self.transport.close()

    def _refuse(self, reject: _Reject) -> None:
        if reject.status != 400:
            log.warning("refused a request: %s %s", reject.status, reject.error)
        self._send_and_close(error_response(reject.status, reject.error, reject.detail))

    def _send_and_close(self, response: bytes) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()
        self._in_head = False
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()
