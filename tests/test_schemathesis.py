"""Property-based tests of the running API against its own OpenAPI schema (schemathesis 4.x).

For every operation, a bounded number of generated requests, valid (positive) and invalid (negative):
no 5xx, status codes and bodies as documented, invalid input rejected. Uses `operation.as_strategy()`
with hypothesis directly (schemathesis' `from_fixture` lazy loader does not run under pytest 9).
"""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
import schemathesis
from apiserver import ADMIN, ApiServer, copy_pipeline
from hypothesis import HealthCheck, given, settings
from schemathesis.core.parameters import ParameterLocation

MAX_EXAMPLES = 20

OPERATIONS = [
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/clients"),
    ("GET", "/clients/{client_id}"),
    ("GET", "/clients/{client_id}/application"),
    ("GET", "/clients/{client_id}/features"),
    ("GET", "/clients/{client_id}/score"),
    ("POST", "/clients/{client_id}/what-if"),
    ("POST", "/score"),
    ("POST", "/score/batch"),
    ("GET", "/model"),
    ("GET", "/monitoring/summary"),
    ("GET", "/monitoring/log"),
    ("GET", "/monitoring/drift"),
    ("GET", "/monitoring/drift/report"),
    ("GET", "/portfolio"),
    ("GET", "/portfolio/recent"),
    ("GET", "/portfolio/borderline"),
    ("GET", "/population"),
    ("GET", "/clients/{client_id}/explain"),
    ("POST", "/explain"),
    ("POST", "/outcomes"),
    ("GET", "/monitoring/performance"),
    ("GET", "/monitoring/fairness"),
    ("GET", "/model/fairness"),
    ("GET", "/model/card"),
    ("GET", "/decisions/{request_id}/letter"),
    ("GET", "/clients/{client_id}/letter"),
    ("GET", "/clients/{client_id}/rights-export"),
    ("POST", "/decisions/{request_id}/reviews"),
    ("POST", "/reviews/{review_id}/decision"),
    ("POST", "/decisions/{request_id}/override"),
    ("POST", "/overrides/{request_id}/second"),
    ("GET", "/monitoring/human-decisions"),
]


# no parameters, no body and no key: nothing that negative generation could make invalid
NO_INPUT = {("GET", "/healthz"), ("GET", "/readyz")}
CASES = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    if not (mode == schemathesis.GenerationMode.NEGATIVE and (method, path) in NO_INPUT)
]


def no_float_integers(case) -> bool:
    """JSON Schema counts 1.0 as an integer; this API's strict decoding answers 400 to it, on purpose."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("client_ids"), list):
        return not any(isinstance(v, float) for v in body["client_ids"])
    if isinstance(body, dict) and isinstance(body.get("outcomes"), list):  # POST /outcomes
        return not any(
            isinstance(o, dict)
            and (any(isinstance(o.get(k), float) for k in ("client_id", "defaulted")) or _out_of_range(o))
            for o in body["outcomes"]
        )
    return True


def outcomes_in_range(case):
    """POST /outcomes: whole floats made integers and dates moved into 1900 .. today (same month and day, a year
    of the last century), instead of filtering such examples out. The schema's `date` format allows years 1 to
    9999, so a filter kept about 1 generated body in 500 (8 of 3,786 tried in one run, each with one outcome):
    hypothesis spent minutes generating and sent fewer than MAX_EXAMPLES bodies. Repaired, every generated body is
    sent, with its many outcomes. A client given twice at the same instant keeps its first `defaulted` (both values
    at one instant is a 400 on purpose, a rule the schema cannot state; a repeat is still sent and counted once)."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("outcomes"), list):
        first: dict[tuple, object] = {}
        for o in body["outcomes"]:
            if not isinstance(o, dict):
                continue
            for k in ("client_id", "defaulted"):
                if isinstance(o.get(k), float) and o[k].is_integer():
                    o[k] = int(o[k])
            if _out_of_range(o):
                day = dt.date.fromisoformat(o["observed_at"][:10])
                moved = dt.date(1900 + day.year % 100, day.month, min(day.day, 28))
                o["observed_at"] = moved.isoformat() + o["observed_at"][10:]
            key = (o.get("client_id"), o.get("observed_at"))
            o["defaulted"] = first.setdefault(key, o.get("defaulted"))
    return case


def _out_of_range(outcome: dict) -> bool:
    """A date the schema cannot rule out but the API refuses on purpose: before 1900 or after tomorrow."""
    text = outcome.get("observed_at")
    try:
        day = dt.date.fromisoformat(str(text)[:10])
    except ValueError:
        return False
    return day.year < 1900 or day >= dt.date.today() + dt.timedelta(days=1)


@pytest.fixture(scope="module")
def api(pipeline, tmp_path_factory):
    data = copy_pipeline(pipeline, tmp_path_factory.mktemp("schemathesis"))
    with ApiServer(data.db, data.model_dir, env={"CREDIT_BATCH_MAX": "20"}) as server:
        with httpx.Client(base_url=server.url, headers=ADMIN) as http:  # some log rows, for summary and drift
            ids = http.get("/clients", params={"limit": 20}).json()["client_ids"]
            assert http.post("/score/batch", json={"client_ids": ids}).status_code == 200
        yield server


@pytest.fixture(scope="module")
def api_schema(api):
    return schemathesis.openapi.from_url(api.url + "/schema/openapi.json")


def test_every_operation_is_covered(api_schema):
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.slow
@pytest.mark.parametrize("method, path, mode", CASES)
def test_operation_conforms_to_schema(api, api_schema, method, path, mode):
    operation = api_schema[path][method]
    strategy = operation.as_strategy(mode)
    if mode == schemathesis.GenerationMode.POSITIVE:
        strategy = strategy.map(outcomes_in_range).filter(no_float_integers)

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case):
        if case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER):
            case.call_and_validate(base_url=api.url)  # the Authorization header itself is the invalid part
        else:
            case.call_and_validate(base_url=api.url, headers=ADMIN)

    run()
