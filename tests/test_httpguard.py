"""app.service.httpguard in process: a real uvicorn server on 127.0.0.1 with the guarded protocol and a tiny ASGI app,
with short limits (monkeypatched) so each limit is seen in a second: head size and count, URL, header and body
deadlines, the connection cap, protocol errors; and normal requests, keep-alive and pipelined, still served."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time

import pytest
import uvicorn

from app.service import httpguard


async def echo_app(scope, receive, send):
    """Reads the whole body, answers 200 with its length."""
    assert scope["type"] in ("http", "lifespan")
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    size = 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return
        size += len(msg.get("body", b""))
        if not msg.get("more_body"):
            break
    body = json.dumps({"received": size}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setattr(httpguard, "HEAD_TIMEOUT", 1.0)
    monkeypatch.setattr(httpguard, "BODY_TIMEOUT", 1.0)
    monkeypatch.setattr(httpguard, "MAX_CONNECTIONS", 8)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(echo_app, http=httpguard.GuardedHttpToolsProtocol, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(srv.serve(sockets=[sock])), daemon=True)
    thread.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.05)
    yield port
    srv.should_exit = True
    thread.join(10)
    sock.close()


def exchange(port: int, data: bytes, *, pause: float = 0.0, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        time.sleep(pause)
        out = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                out += chunk
        return out


def status_and_json(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), raw[:300]
    return int(head.split()[1]), json.loads(body)


GET = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def test_normal_keep_alive_and_pipelined_requests_are_served(server):
    two = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" + GET
    raw = exchange(server, two)
    assert raw.count(b"HTTP/1.1 200") == 3 and b'{"received": 5}' in raw
    body = b"x" * 200_000  # a body far beyond the head limit is fine
    raw = exchange(server, b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 200000\r\n\r\n" + body)
    assert status_and_json(raw) == (200, {"received": 200_000})


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 30_000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n", 431),  # 16 KiB of headers, URL apart
        (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n", 431),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400),
    ],
    ids=["big-header", "header-over-16KiB", "101-headers", "long-url", "negative-length", "nul"],
)
def test_limits_and_protocol_errors_answer_in_the_error_shape(server, request_bytes, status):
    got, body = status_and_json(exchange(server, request_bytes))
    assert got == status and set(body) == {"error", "detail"} and body["error"], body


def test_a_head_split_across_many_small_chunks_is_counted(server):
    with socket.create_connection(("127.0.0.1", server), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        with contextlib.suppress(OSError):
            for _ in range(400):  # 400 x 100 bytes of headers, well under the header deadline
                sock.sendall(b"X-A: " + b"b" * 93 + b"\r\n")
        raw = sock.recv(65536)
    assert status_and_json(raw)[0] == 431


def test_idle_and_slow_headers_and_slow_body_are_cut_off(server):
    t0 = time.monotonic()
    assert exchange(server, b"", pause=0.0, timeout=5) == b""  # idle: closed without a word
    assert 0.8 < time.monotonic() - t0 < 3
    got, body = status_and_json(exchange(server, b"GET / HTTP/1.1\r\nHost:", timeout=5))
    assert got == 408 and "headers" in body["error"]
    got, body = status_and_json(exchange(server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"))
    assert got == 408 and "body" in body["error"]
    assert status_and_json(exchange(server, GET)) == (200, {"received": 0})


def test_connections_beyond_the_cap_get_503_and_service_resumes(server):
    held = [socket.create_connection(("127.0.0.1", server), timeout=5) for _ in range(8)]
    try:
        time.sleep(0.2)
        got, body = status_and_json(exchange(server, GET))
        assert got == 503 and body["detail"] == {"max_per_worker": 8}
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert status_and_json(exchange(server, GET))[0] == 200
