"""A bounded loopback load generator (asyncio + httpx), usable as a library by tests and benchmarks.

    from loadgen import run_load, client_score_requests
    report = run_load(url, client_score_requests(ids), headers=OFFICER, connections=64, duration=60)
    report.summary()  # {"requests", "ok", "non_2xx", "errors", "p50_ms", "p99_ms", "rps", ...}

Every request is bounded: the run stops at `duration` seconds or after `max_requests` requests, whichever
comes first, and each request has a timeout. Each answered request is kept as a `Result` (status, latency,
the JSON body's request_id / probability / client_id when present), so a test can check what was served
against what was logged. `stop` (a threading.Event) ends a run early and cleanly: no new request is
started once it is set, requests already sent are waited for.

Run from the command line against a running API:
    python tests/loadgen.py http://127.0.0.1:8000 --key KEY --ids 100001,100002 --connections 64 --seconds 10
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import signal
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apsw
import httpx
import psutil

# a request: (method, path, json body or None, tag)
Request = tuple[str, str, Any, str]


@dataclass(slots=True)
class Result:
    tag: str
    sent_at: float  # time.monotonic() just before the request was handed to the client
    latency_ms: float
    status: int | None  # None: no HTTP answer (connection error, timeout)
    error: str | None = None
    request_id: str | None = None
    probability: float | None = None
    client_id: int | None = None
    body: Any = None  # the request's JSON body (kept for parity checks of POST /score)


@dataclass
class LoadReport:
    results: list[Result] = field(default_factory=list)
    started: float = 0.0
    elapsed_s: float = 0.0
    connections: int = 0

    @property
    def answered(self) -> list[Result]:
        return [r for r in self.results if r.status is not None]

    @property
    def ok(self) -> list[Result]:
        return [r for r in self.results if r.status is not None and 200 <= r.status < 300]

    @property
    def non_2xx(self) -> list[Result]:
        return [r for r in self.results if r.status is not None and not 200 <= r.status < 300]

    @property
    def errors(self) -> list[Result]:
        return [r for r in self.results if r.status is None]

    def percentile(self, q: float, only_ok: bool = True) -> float | None:
        lat = sorted(r.latency_ms for r in (self.ok if only_ok else self.answered))
        if not lat:
            return None
        k = min(len(lat) - 1, max(0, round(q / 100.0 * (len(lat) - 1))))
        return lat[k]

    def summary(self) -> dict[str, Any]:
        statuses: dict[str, int] = {}
        for r in self.results:
            key = str(r.status) if r.status is not None else (r.error or "error").split(":")[0]
            statuses[key] = statuses.get(key, 0) + 1
        return {
            "requests": len(self.results),
            "ok": len(self.ok),
            "non_2xx": len(self.non_2xx),
            "errors": len(self.errors),
            "statuses": statuses,
            "connections": self.connections,
            "elapsed_s": round(self.elapsed_s, 3),
            "rps": round(len(self.results) / self.elapsed_s, 1) if self.elapsed_s else None,
            "p50_ms": _round(self.percentile(50)),
            "p90_ms": _round(self.percentile(90)),
            "p99_ms": _round(self.percentile(99)),
            "max_ms": _round(max((r.latency_ms for r in self.ok), default=None)),
        }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def client_score_requests(client_ids: list[int]) -> Iterator[Request]:
    """GET /clients/{id}/score over the ids, round robin, forever."""
    for cid in itertools.cycle(client_ids):
        yield ("GET", f"/clients/{cid}/score", None, "client")


def mixed_requests(client_ids: list[int], applicants: list[dict[str, Any]], every: int = 5) -> Iterator[Request]:
    """Mostly GET /clients/{id}/score; every `every`-th request a POST /score of one of `applicants`."""
    ids = itertools.cycle(client_ids)
    apps = itertools.cycle(applicants) if applicants else None
    for i in itertools.count():
        if apps is not None and i % every == every - 1:
            yield ("POST", "/score", next(apps), "applicant")
        else:
            yield ("GET", f"/clients/{next(ids)}/score", None, "client")


@dataclass
class _Run:
    """One bounded run, the same for both engines: what to send where, how many at once, when to stop."""

    url: str
    requests: Iterator[Request]
    headers: dict[str, str] | None
    connections: int
    duration: float
    max_requests: int | None
    timeout: float
    stop: threading.Event | None
    report: LoadReport
    deadline: float = 0.0
    taken: Iterator[int] = field(default_factory=itertools.count)

    def start_clock(self) -> None:
        self.deadline = time.monotonic() + self.duration

    def next_request(self) -> Request | None:
        """The next request to send; None once the run is over (deadline, `stop` set or `max_requests` taken)."""
        if time.monotonic() >= self.deadline or (self.stop is not None and self.stop.is_set()):
            return None
        if self.max_requests is not None and next(self.taken) >= self.max_requests:
            return None
        return next(self.requests)


def _keep_answer_ids(res: Result, answer: Any) -> None:
    if isinstance(answer, dict):
        res.request_id = answer.get("request_id")
        res.probability = answer.get("probability")
        res.client_id = answer.get("client_id")


async def _run_httpx(run: _Run) -> None:
    limits = httpx.Limits(max_connections=run.connections, max_keepalive_connections=run.connections)
    run.start_clock()
    async with httpx.AsyncClient(base_url=run.url, headers=run.headers, limits=limits, timeout=run.timeout) as http:

        async def worker() -> None:
            while (request := run.next_request()) is not None:
                method, path, body, tag = request
                t0 = time.monotonic()
                res = Result(tag=tag, sent_at=t0, latency_ms=0.0, status=None, body=body)
                try:
                    resp = await http.request(method, path, json=body)
                    res.status = resp.status_code
                    if resp.status_code == 200:
                        _keep_answer_ids(res, resp.json())
                except httpx.HTTPError as exc:
                    res.error = f"{type(exc).__name__}: {exc}"
                except json.JSONDecodeError as exc:
                    res.error = f"BadJSON: {exc}"
                res.latency_ms = (time.monotonic() - t0) * 1000.0
                run.report.results.append(res)

        await asyncio.gather(*(worker() for _ in range(run.connections)))


class _RawError(Exception):
    def __init__(self, kind: str, msg: str = ""):
        super().__init__(f"{kind}: {msg}")
        self.kind = kind


async def _raw_request(
    conn: list, host: str, port: int, head: bytes, body: bytes | None, timeout: float
) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a kept-alive connection (conn = [reader, writer] or [None, None])."""
    if conn[0] is None:
        try:
            conn[0], conn[1] = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (TimeoutError, OSError) as exc:
            raise _RawError("ConnectError", str(exc)) from None
    reader, writer = conn
    try:
        writer.write(head + body if body else head)
        await writer.drain()
    except OSError as exc:
        raise _RawError("WriteError", str(exc)) from None
    try:
        raw_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        if "content-length" not in fields:
            raise _RawError("RemoteProtocolError", "response without Content-Length")
        data = await asyncio.wait_for(reader.readexactly(int(fields["content-length"])), timeout)
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise _RawError("ReadError", str(exc)) from None
    except TimeoutError:
        raise _RawError("ReadTimeout") from None
    except (ValueError, IndexError, asyncio.LimitOverrunError) as exc:
        raise _RawError("RemoteProtocolError", str(exc)) from None
    if fields.get("connection", "").lower() == "close":
        _close(conn)
    return status, data


def _close(conn: list) -> None:
    if conn[1] is not None:
        with contextlib.suppress(Exception):
            conn[1].close()
    conn[0] = conn[1] = None


async def _run_raw(run: _Run) -> None:
    """The same loop as _run_httpx with a minimal keep-alive HTTP/1.1 client (several times cheaper than httpx, so
    on a small machine the server, not the load generator, is what gets measured)."""
    import msgspec

    parsed = httpx.URL(run.url)
    host, port = parsed.host, parsed.port or 80
    extra = "".join(f"{k}: {v}\r\n" for k, v in (run.headers or {}).items())
    run.start_clock()

    async def worker() -> None:
        conn: list = [None, None]
        try:
            while (request := run.next_request()) is not None:
                method, path, body, tag = request
                payload = msgspec.json.encode(body) if body is not None else None
                head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}"
                if payload is not None:
                    head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                t0 = time.monotonic()
                res = Result(tag=tag, sent_at=t0, latency_ms=0.0, status=None, body=body)
                try:
                    request_bytes = (head + "\r\n").encode()
                    res.status, data = await _raw_request(conn, host, port, request_bytes, payload, run.timeout)
                    if res.status == 200:
                        _keep_answer_ids(res, msgspec.json.decode(data))
                except _RawError as exc:
                    res.error = str(exc)
                    _close(conn)
                except msgspec.DecodeError as exc:
                    res.error = f"BadJSON: {exc}"
                res.latency_ms = (time.monotonic() - t0) * 1000.0
                run.report.results.append(res)
        finally:
            _close(conn)

    await asyncio.gather(*(worker() for _ in range(run.connections)))


def run_load(
    url: str,
    requests: Iterator[Request],
    *,
    headers: dict[str, str] | None = None,
    connections: int = 64,
    duration: float = 10.0,
    max_requests: int | None = None,
    timeout: float = 30.0,
    stop: threading.Event | None = None,
    report: LoadReport | None = None,
    engine: str = "raw",
) -> LoadReport:
    """Run a bounded load (blocking). Pass `report` to watch results arrive from another thread.

    engine "raw" (default): a minimal keep-alive HTTP/1.1 client on asyncio streams; "httpx": httpx.AsyncClient.
    Errors are named like httpx's: ConnectError (never reached the server), WriteError, ReadError,
    RemoteProtocolError, ReadTimeout.
    """
    if engine not in ("raw", "httpx"):
        raise ValueError(f"engine must be 'raw' or 'httpx', not {engine!r}")
    report = report if report is not None else LoadReport()
    report.connections = connections
    report.started = time.monotonic()
    run = _Run(url, requests, headers, connections, duration, max_requests, timeout, stop, report)
    asyncio.run(_run_raw(run) if engine == "raw" else _run_httpx(run))
    report.elapsed_s = time.monotonic() - report.started
    return report


class BackgroundLoad:
    """run_load in a thread: `with BackgroundLoad(...) as load: ...; load.stop.set()`; then `load.report`."""

    def __init__(self, url: str, requests: Iterator[Request], **kwargs: Any):
        self.stop = threading.Event()
        self.report = LoadReport()
        self._kwargs = dict(kwargs, stop=self.stop, report=self.report)
        self._thread = threading.Thread(target=run_load, args=(url, requests), kwargs=self._kwargs, daemon=True)

    def __enter__(self) -> BackgroundLoad:
        self._thread.start()
        return self

    def wait_for(self, n: int, timeout: float = 30.0) -> None:
        """Block until at least n requests have finished (any outcome)."""
        end = time.monotonic() + timeout
        while len(self.report.results) < n and time.monotonic() < end and self._thread.is_alive():
            time.sleep(0.02)

    def join(self, timeout: float = 60.0) -> LoadReport:
        self._thread.join(timeout)
        return self.report

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join()


# ---- checks shared by the reliability tests (read the database directly, never through the API) ------------


def _ro(db: str | Path) -> apsw.Connection:
    return apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)


def db_state(db: str | Path) -> dict[str, Any]:
    """A sha256 over every (client_id, x) of `features` in the data file `db`, and the prediction_log row count
    (0 when absent) of the operational store beside it (app.store.default_path)."""
    conn = _ro(db)
    try:
        h = hashlib.sha256()
        n = 0
        for cid, x in conn.execute("SELECT client_id, x FROM features ORDER BY client_id"):
            h.update(struct.pack("<q", cid))
            h.update(x if isinstance(x, bytes) else repr(x).encode())
            n += 1
        tables = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'"))
    finally:
        conn.close()
    return {"features": n, "features_sha256": h.hexdigest(), "log_rows": log_count(db), "tables": tables}


def log_db(db: str | Path) -> Path:
    """The operational store the API writes for the data file `db` (its default place, beside it)."""
    from app.store import default_path

    return default_path(db)


def log_count(db: str | Path) -> int:
    """Rows in the prediction_log of the store beside the data file `db` (0 when there is none yet)."""
    path = log_db(db)
    if not path.is_file():
        return 0
    conn = _ro(path)
    try:
        has_log = conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'prediction_log'").fetchall()[0][0]
        return conn.execute("SELECT count(*) FROM prediction_log").fetchall()[0][0] if has_log else 0
    finally:
        conn.close()


def log_rows(db: str | Path) -> dict[str, tuple[int | None, float, bytes]]:
    """request_id -> (client_id, probability, features) for every prediction_log row of the store beside `db`."""
    conn = _ro(log_db(db))
    try:
        out: dict[str, tuple[int | None, float, bytes]] = {}
        for rid, cid, p, x in conn.execute("SELECT request_id, client_id, probability, features FROM prediction_log"):
            assert rid not in out, f"request_id {rid} logged twice"
            out[rid] = (cid, p, x)
        return out
    finally:
        conn.close()


def integrity_check(db: str | Path) -> list[str]:
    """PRAGMA integrity_check (opens read-write so a leftover WAL is recovered first, as any next open would)."""
    conn = apsw.Connection(str(db))
    try:
        return [r[0] for r in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> dict[int, int | None]:
    """Send `sig` to a process and all its descendants at once (uvicorn --workers N has children); wait for all.

    Returns {pid: exit status} for every process of the tree (-9 for SIGKILL; None when the exit status is not
    ours to collect, e.g. a grandchild). Raises if one is still alive after 10 s. The parent's status is
    collected here (psutil reaps our child), so its Popen later reports returncode 0: use this instead.
    """
    try:
        parent = psutil.Process(pid)
        procs = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        return {}
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(sig)
    gone, alive = psutil.wait_procs(procs, timeout=10)
    if alive:
        raise RuntimeError(f"processes still alive after signal {sig}: {[p.pid for p in alive]}")
    return {p.pid: p.returncode for p in gone}


def _main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("--key", required=True)
    ap.add_argument("--ids", required=True, help="comma-separated client ids")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--max-requests", type=int, default=None)
    ap.add_argument("--engine", choices=["raw", "httpx"], default="raw")
    args = ap.parse_args()
    ids = [int(i) for i in args.ids.split(",")]
    report = run_load(
        args.url,
        client_score_requests(ids),
        headers={"Authorization": f"Bearer {args.key}"},
        connections=args.connections,
        duration=args.seconds,
        max_requests=args.max_requests,
        engine=args.engine,
    )
    print(json.dumps(report.summary(), indent=2))


if __name__ == "__main__":
    _main()


__all__ = [
    "BackgroundLoad",
    "LoadReport",
    "Result",
    "client_score_requests",
    "db_state",
    "integrity_check",
    "kill_tree",
    "log_rows",
    "mixed_requests",
    "run_load",
]
