"""The HTTP benchmark's floors: the bare ASGI app answers the score route in the API's shape, and every server's
throughput is reported against both floors of the same round (benchmarks/bench_http.py)."""

from __future__ import annotations

import asyncio

import httpx
import msgspec
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import bench_http
from benchmarks.floor_bare import app as bare_app
from benchmarks.floor_litestar import Score


def _get(path: str) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bare_app), base_url="http://t") as c:
            return await c.get(path)

    return asyncio.run(go())


def test_bare_floor_answers_like_the_litestar_floor():
    r = _get("/clients/100002/score")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert msgspec.json.decode(r.content, type=Score, strict=True) == Score(100002, 0.1, "accept")
    assert _get("/readyz").json() == {"status": "ready"}
    for bad in ("/clients/abc/score", "/clients//score", "/clients/1/other", "/"):
        assert _get(bad).status_code == 404


def _sample(rps: float, p50: float) -> dict:
    return {"rps": rps, "p50_ms": p50, "p99_ms": 2 * p50, "non_2xx": 0}


@given(st.lists(st.tuples(*(st.floats(1, 1e5),) * 3), min_size=1, max_size=5))
def test_ratios_are_per_round_against_both_floors(rounds):
    get = "GET /clients/{id}/score"
    samples = {
        (bench_http.FLOOR, get, 32): [_sample(f, 1.0) for f, _, _ in rounds],
        (bench_http.BARE, get, 32): [_sample(b, 1.0) for _, b, _ in rounds],
        (bench_http.OURS, get, 32): [_sample(o, 2.0) for _, _, o in rounds],
    }
    rows = {r["name"]: r for r in bench_http.summarise(samples, len(rounds))}
    ours = rows[bench_http.OURS]
    assert ours["rps_ratio_vs_floor_per_round"] == [round(o / f, 3) for f, _, o in rounds]
    assert ours["rps_ratio_vs_bare_per_round"] == [round(o / b, 3) for _, b, o in rounds]
    assert rows[bench_http.BARE]["rps_ratio_vs_bare"] == 1.0


@given(st.lists(st.tuples(*(st.floats(0.1, 10),) * 3), min_size=1, max_size=5))
def test_p50_less_the_fdatasync_floor_is_per_round(rounds):
    get = "GET /clients/{id}/score"
    samples = {
        (bench_http.FLOOR, get, 1): [_sample(1.0, f) for f, _, _ in rounds],
        (bench_http.OURS, get, 1): [_sample(1.0, o) for _, o, _ in rounds],
        bench_http.FSYNC: [{"p50_ms": y} for _, _, y in rounds],
    }
    rows = {r["name"]: r for r in bench_http.summarise(samples, len(rounds))}
    ours = rows[bench_http.OURS]
    per_round = sorted((o - y) / f for f, o, y in rounds)
    assert min(per_round) <= ours["p50_less_fdatasync_ratio_vs_floor"] <= max(per_round)
    assert ours["p50_ratio_vs_floor"] - ours["p50_less_fdatasync_ratio_vs_floor"] >= 0
    assert bench_http.FSYNC in samples  # the caller's samples are left as they were
