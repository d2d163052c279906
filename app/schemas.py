"""msgspec Structs for the HTTP API: request bodies (decoded strictly) and responses (documented in OpenAPI).

Request bodies are decoded by the API itself with `msgspec.json.Decoder(T, strict=True)`; every request
Struct forbids unknown fields. Feature values are decoded as raw JSON values and checked one by one
(`app.api`) so that an error names the offending feature.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

MAX_ID = 2**53  # largest client id accepted (exact in a JSON double)
ClientId = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
Decision = Literal["accept", "refuse"]
Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Share = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


# ---- requests -------------------------------------------------------------------------------------------------


class ScoreRequest(Strict):
    """An applicant: feature name -> number or null (missing). Missing names count as missing."""

    features: dict[str, Any]


class WhatIfRequest(Strict):
    """Raw application columns of a known client to change (column -> number, text or null)."""

    application: dict[str, Any]


class BatchRequest(Strict):
    """Exactly one of `client_ids` or `applicants` (null is not accepted for either)."""

    client_ids: Annotated[list[ClientId], msgspec.Meta(min_length=1)] | msgspec.UnsetType = msgspec.UNSET
    applicants: Annotated[list[ScoreRequest], msgspec.Meta(min_length=1)] | msgspec.UnsetType = msgspec.UNSET


# ---- responses ------------------------------------------------------------------------------------------------


class Error(msgspec.Struct):
    error: str
    detail: Any = None


class Health(msgspec.Struct):
    status: str


class Ready(msgspec.Struct):
    status: str
    model_id: str | None = None
    n_features: int | None = None
    checks: dict[str, str] = {}
    reason: str | None = None


class Client(msgspec.Struct):
    client_id: int
    fields: dict[str, Any]


class ClientSearch(msgspec.Struct):
    client_ids: list[int]


class ClientScore(msgspec.Struct):
    client_id: int
    probability: Probability
    decision: Decision
    threshold: float
    model_id: str
    completeness: Share
    request_id: str


class ClientFeatures(msgspec.Struct):
    client_id: int
    features: dict[str, float | None]


class Score(msgspec.Struct):
    probability: Probability
    decision: Decision
    threshold: float
    model_id: str
    missing: list[str]
    completeness: Share
    request_id: str


class BatchItem(msgspec.Struct):
    client_id: int | None
    probability: Probability
    decision: Decision
    completeness: Share
    missing: list[str]
    request_id: str


class ClientApplication(msgspec.Struct):
    client_id: int
    application: dict[str, Any]


class FeatureChange(msgspec.Struct):
    before: float | None
    after: float | None


class WhatIf(ClientScore):
    changed_features: dict[str, FeatureChange]


class BatchScore(msgspec.Struct):
    results: list[BatchItem]
    threshold: float
    model_id: str


class LogEntry(msgspec.Struct):
    id: int
    ts: float
    request_id: str
    client_id: int | None
    probability: float
    decision: str
    model_id: str
    latency_ms: float
    role: str
    endpoint: str


class LogPage(msgspec.Struct):
    rows: list[LogEntry]


class Latency(msgspec.Struct):
    p50: float | None
    p99: float | None


class HourHistogram(msgspec.Struct):
    hour: str
    hour_ts: float
    count: int
    counts: list[int]


class MonitoringSummary(msgspec.Struct):
    since: float
    until: float
    requests: int
    latency_ms: Latency
    decisions: dict[str, int]
    endpoints: dict[str, int]
    bin_edges: list[float]
    score_histogram: list[HourHistogram]


class PopulationRow(msgspec.Struct):
    client_id: int
    values: list[float | None]
    probability: Probability
    decision: Decision


class Population(msgspec.Struct):
    features: list[str]
    rows: list[PopulationRow]
    threshold: float
    model_id: str
