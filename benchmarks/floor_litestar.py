"""The floor: the cheapest Litestar route that answers GET /clients/{id}/score, with no database, no
model, no key check and no prediction log. Served by the same uvicorn as the API and loaded by the same
wrk in the same run, it shows how much of the API's latency is the framework and server alone.
Run: uvicorn benchmarks.floor_litestar:app
"""

from __future__ import annotations

import msgspec
from litestar import Litestar, get


class Score(msgspec.Struct):
    client_id: int
    probability: float
    decision: str


@get("/clients/{client_id:int}/score", sync_to_thread=False)
def score(client_id: int) -> Score:
    return Score(client_id=client_id, probability=0.1, decision="accept")


@get("/readyz", sync_to_thread=False)
def readyz() -> dict[str, str]:
    return {"status": "ready"}


app = Litestar([score, readyz], openapi_config=None)
