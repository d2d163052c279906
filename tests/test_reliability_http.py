"""Hostile and slow HTTP clients against a real server (app.service.httpguard): header caps -> 431, long URLs -> 414,
protocol errors -> 400, all in the one JSON error shape; idle and one-byte-a-second connections are closed
while normal requests are still answered; memory after huge headers stays near the baseline.
Figures are printed (`-s`) for the README's reliability table.
"""

from __future__ import annotations

import contextlib
import json
import socket
import statistics
import threading
import time

import httpx
import psutil
import pytest
from apiserver import OFFICER_KEY, ApiServer

from app.service import httpguard


def raw_request(port: int, data: bytes, *, chunk: int = 1 << 16, timeout: float = 20.0) -> tuple[int, dict, bytes]:
    """Send `data` (stopping early if the server closes), read the answer: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # the server may answer and close before it has read everything
            for i in range(0, len(data), chunk):
                sock.sendall(data[i : i + chunk])
        answer = b""
        with contextlib.suppress(OSError):
            while True:
                part = sock.recv(65536)
                if not part:
                    break
                answer += part
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return status, {k.lower(): v for k, v in headers.items()}, body


def assert_json_error(status: int, headers: dict, body: bytes, expected: tuple[int, ...]) -> dict:
    assert status in expected, (status, body[:300])
    assert headers.get("content-type", "").startswith("application/json"), headers
    parsed = json.loads(body)
    assert set(parsed) == {"error", "detail"} and parsed["error"], parsed
    return parsed


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


HOSTILE: dict[str, tuple[bytes, tuple[int, ...]]] = {
    "20 MB Authorization header": (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"a" * (20 << 20) + b"\r\n\r\n",
        (431,),
    ),
    "20 MB of small headers": (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * (20 << 17) + b"\r\n",
        (431,),
    ),
    "101 headers": (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n",
        (431,),
    ),
    "100 kB URL": (b"GET /healthz?" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", (414, 431)),
    "negative Content-Length": (b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", (400,)),
    "Content-Length with chunked": (
        b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        (400,),
    ),
    "NUL in a header": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", (400,)),
    "CR in a header": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", (400,)),
    "garbage request line": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", (400,)),
}


@pytest.mark.slow
def test_hostile_requests_get_a_clean_4xx_and_memory_returns_to_baseline(data):
    with ApiServer(data.db, data.model_dir) as api:
        pid = api.proc.pid
        for _ in range(20):  # warm up before the baseline
            httpx.get(api.url + "/healthz")
        baseline = rss(pid)
        clean = 0
        for name, (request, expected) in HOSTILE.items():
            status, headers, body = raw_request(api.port, request)
            assert_json_error(status, headers, body, expected)
            assert httpx.get(api.url + "/healthz", timeout=5).status_code == 200, name
            clean += 1
        for _ in range(4):  # the case: several huge headers in a row
            status, headers, body = raw_request(api.port, HOSTILE["20 MB Authorization header"][0])
            assert_json_error(status, headers, body, (431,))
        after = rss(pid)
        t0 = time.perf_counter()
        assert httpx.get(api.url + "/healthz", timeout=5).status_code == 200
        health_ms = (time.perf_counter() - t0) * 1000
        output = api.output()
    growth = after / baseline - 1
    print(
        f"hostile requests: {clean}/{len(HOSTILE)} kinds answered with a clean 4xx (+4 repeats); RSS "
        f"{baseline / 2**20:.1f} MB -> {after / 2**20:.1f} MB ({growth:+.1%}); /healthz after: {health_ms:.1f} ms"
    )
    assert growth < 0.10
    assert "Traceback" not in output


def _idle(port: int, n: int, opened: list) -> None:
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        opened.append(sock)


def _slow(port: int, stop: threading.Event, closed: list) -> None:
    """One byte a second of a request line that never ends; records when the server closed it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    t0 = time.monotonic()
    try:
        for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"z" * 1000:
            if stop.is_set():
                return
            sock.sendall(bytes([byte]))
            time.sleep(1.0)
    except OSError:
        closed.append(time.monotonic() - t0)
        return
    finally:
        sock.close()


@pytest.mark.slow
def test_idle_and_slow_connections_do_not_stop_normal_requests(data):
    n_idle, n_slow = 500, 50
    with ApiServer(data.db, data.model_dir) as api:
        idle: list[socket.socket] = []
        _idle(api.port, n_idle, idle)
        stop, closed = threading.Event(), []
        slow = [threading.Thread(target=_slow, args=(api.port, stop, closed), daemon=True) for _ in range(n_slow)]
        for t in slow:
            t.start()
        time.sleep(2.0)
        latencies = []
        with httpx.Client(base_url=api.url, timeout=10) as http:
            for _ in range(50):
                t0 = time.perf_counter()
                assert http.get("/healthz").status_code == 200
                latencies.append((time.perf_counter() - t0) * 1000)
                time.sleep(0.05)
        # the server closes the idle connections and the slow ones after its header deadline
        time.sleep(httpguard.HEAD_TIMEOUT + 2)
        idle_closed = 0
        for sock in idle:
            sock.settimeout(0.5)
            try:
                idle_closed += sock.recv(1) == b""
            except OSError:
                idle_closed += 1
            sock.close()
        stop.set()
        for t in slow:
            t.join(5)
        assert httpx.get(api.url + "/healthz").status_code == 200
        output = api.output()
    p50, p99 = statistics.median(latencies), sorted(latencies)[int(0.99 * len(latencies)) - 1]
    print(
        f"/healthz under {n_idle} idle + {n_slow} slow connections: p50 {p50:.1f} ms, max {max(latencies):.1f} ms; "
        f"closed by the server: {idle_closed}/{n_idle} idle, {len(closed)}/{n_slow} slow (after "
        f"{min(closed, default=0):.0f}-{max(closed, default=0):.0f} s)"
    )
    assert idle_closed == n_idle
    assert len(closed) == n_slow
    assert max(closed) < httpguard.HEAD_TIMEOUT + 5
    assert p99 < 1000
    assert "Traceback" not in output


@pytest.mark.slow
def test_connections_beyond_the_cap_are_refused_in_the_error_shape(data):
    cap = httpguard.MAX_CONNECTIONS
    with ApiServer(data.db, data.model_dir) as api:
        held: list[socket.socket] = []
        try:
            _idle(api.port, cap, held)
            time.sleep(0.5)
            status, headers, body = raw_request(api.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert_json_error(status, headers, body, (503,))
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.5)
        assert httpx.get(api.url + "/healthz").status_code == 200


@pytest.mark.slow
def test_client_disconnect_mid_body_is_not_a_server_error(data):
    with ApiServer(data.db, data.model_dir) as api:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
                head = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                head += b"Authorization: Bearer " + OFFICER_KEY.encode() + b"\r\nContent-Length: 1000\r\n\r\n"
                sock.sendall(head + b'{"features"')
            time.sleep(0.3)
        assert httpx.get(api.url + "/healthz").status_code == 200
        time.sleep(0.5)
        output = api.output()
    assert "500" not in output and "internal server error" not in output.lower() and "Traceback" not in output, output
