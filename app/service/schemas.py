"""msgspec Structs for the HTTP API: request bodies (decoded strictly) and responses (documented in OpenAPI).

Request bodies are decoded by the API itself with `msgspec.json.Decoder(T, strict=True)`; every request
Struct forbids unknown fields. Feature values are decoded as raw JSON values and checked one by one
(`app.service.state.Service.vector`) so that an error names the offending feature. Their OpenAPI schemas depend
on the model's features and are written by app.service.routes.openapi. Every response is a Struct here, so the
OpenAPI schema types every answer; `Error` is the one error shape (one shared component).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from app.ids import MAX_ID  # largest client id accepted (exact in a JSON double); one owner: app/ids.py

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
    """Every 4xx/5xx answer: a short message and details (null, or an object naming what was wrong)."""

    error: str
    detail: Any


class Health(msgspec.Struct):
    status: str


class Ready(msgspec.Struct):
    status: str
    model_id: str | None = None
    n_features: int | None = None
    checks: dict[str, str] = {}
    reason: str | None = None
    challenger_model_id: str | None = None  # admin only: the model scored in shadow


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
    user_name: str | None = None  # the dashboard user who asked (None: another API client)


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


# ---- explanations ---------------------------------------------------------------------------------------------


class Contribution(msgspec.Struct):
    feature: str
    label: str
    value: float | None
    shap: float


class Reason(msgspec.Struct):
    feature: str
    sentence: str
    shap: float
    typical: float | None


class Explanation(msgspec.Struct):
    """SHAP contributions (every feature, by |shap|) and up to `top` reasons for a refusal (app.model.explain)."""

    model_id: str
    base_value: float
    margin: float
    probability: Probability
    threshold: float
    decision: Decision
    contributions: list[Contribution]
    reasons: list[Reason]


class ClientExplanation(Explanation):
    client_id: int


# ---- drift ----------------------------------------------------------------------------------------------------


class DriftWindow(msgspec.Struct):
    """The window asked for (ISO 8601 UTC, null: open) and the logged rows found in it (first and last time)."""

    since: str | None
    until: str | None
    last: int | None
    rows: int
    first_ts: str | None
    last_ts: str | None
    text: str | None = None  # "last 1,000 requests, 2026-12-07 10:00–10:12 UTC"


class TopFeatureDrift(msgspec.Struct):
    feature: str
    rank: int
    importance_share: float
    psi: float
    level: str


class MinorFeatureDrift(msgspec.Struct):
    feature: str
    importance_share: float
    psi: float
    level: str


class FeaturesSignal(msgspec.Struct):
    weighted_psi: float
    level: str
    top: list[TopFeatureDrift]
    minor_drifted: list[MinorFeatureDrift]


class ScoreSignal(msgspec.Struct):
    psi: float | None
    level: str


class DecisionsSignal(msgspec.Struct):
    window_refusal_rate: float
    window_requests: int
    reference_refusal_rate: float
    reference_rows: int
    z: float
    p_value: float
    level: str


class DriftVerdict(msgspec.Struct):
    """stable / watch / act (or "no verdict" below the minimum rows) and why (app.monitoring.verdict)."""

    level: str
    reasons: list[str]
    features: FeaturesSignal | None = None
    score: ScoreSignal | None = None
    decisions: DecisionsSignal | None = None
    bands: dict[str, float] | None = None
    sources: str | None = None
    min_rows: int | None = None


class DriftReference(msgspec.Struct):
    text: str
    rows: int | None
    model_id: str | None
    trained_at: str | None


class FeatureDrift(msgspec.Struct):
    feature: str
    psi: float
    drifted: bool


class DriftReport(msgspec.Struct):
    """PSI of every feature and of the score over a window of the log, against the training reference."""

    method: str
    model_id: str | None
    window: DriftWindow
    psi_threshold: float
    drift_share: float
    features: list[FeatureDrift]
    n_features: int
    n_drifted: int
    share_drifted: float
    dataset_drift: bool
    score_psi: float | None
    score_drifted: bool
    seconds: float
    verdict: DriftVerdict | None = None
    reference: DriftReference | None = None


# ---- the model manifest ---------------------------------------------------------------------------------------


class ModelLibrary(msgspec.Struct):
    """The compiled library's record (`credit compile`)."""

    file: str
    sha256: str
    compiler: str | msgspec.UnsetType = msgspec.UNSET
    flags: str | msgspec.UnsetType = msgspec.UNSET
    parity_max_abs_diff: float | None | msgspec.UnsetType = msgspec.UNSET
    parity_rows: int | None | msgspec.UnsetType = msgspec.UNSET
    compiled_at: str | msgspec.UnsetType = msgspec.UNSET
    compile_seconds: float | None | msgspec.UnsetType = msgspec.UNSET
    native_sources: list[str] | msgspec.UnsetType = msgspec.UNSET
    batch_path: str | msgspec.UnsetType = msgspec.UNSET
    batch_path_us_per_row: dict[str, float] | msgspec.UnsetType = msgspec.UNSET
    shap: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


class ModelInfo(msgspec.Struct):
    """GET /model: manifest.json without the drift reference sample, plus the serving app's version.
    Keys absent from the manifest are absent here too (not null)."""

    serving_app_version: str
    model_id: str
    features: list[str]
    threshold: float
    model_text_sha256: str | msgspec.UnsetType = msgspec.UNSET  # the trees' digest (the model id names more)
    distributed: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET  # `credit train --scheduler`: the held-out slice
    n_features: int | msgspec.UnsetType = msgspec.UNSET
    app_version: str | msgspec.UnsetType = msgspec.UNSET
    costs: dict[str, float] | msgspec.UnsetType = msgspec.UNSET
    metrics: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    baselines: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    trained_at: str | msgspec.UnsetType = msgspec.UNSET
    data_fingerprint: str | None | msgspec.UnsetType = msgspec.UNSET
    data_source: str | None | msgspec.UnsetType = msgspec.UNSET
    schema_fingerprint: str | None | msgspec.UnsetType = msgspec.UNSET
    versions: dict[str, str] | msgspec.UnsetType = msgspec.UNSET
    params: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    calibration: dict[str, Any] | None | msgspec.UnsetType = msgspec.UNSET
    champion: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    candidates: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    evaluation: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    search: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    sensitive: dict[str, Any] | None | msgspec.UnsetType = msgspec.UNSET  # sensitive attributes: choice and effect
    global_importance: list[tuple[str, float]] | msgspec.UnsetType = msgspec.UNSET
    library: ModelLibrary | None | msgspec.UnsetType = msgspec.UNSET


class PerformanceReport(msgspec.Struct, kw_only=True):
    """Realised performance of the decisions served (app.monitoring.performance.report)."""

    window: dict[str, Any]
    period: str
    costs: dict[str, float]
    min_outcomes: int
    outcomes_total: int
    matched: int
    never_scored: dict[str, Any]
    outside_window: int
    overall: dict[str, Any] | None
    models: Any
    seconds: float
    challenger: list[dict[str, Any]] = []  # champion vs challenger on the same clients (shadow rows)


class FairnessReport(msgspec.Struct, kw_only=True):
    """Fairness per sensitive group (app.monitoring.fairness): live decisions, or out-of-fold at training."""

    ratio_floor: float
    min_group: int
    definitions: dict[str, str]
    clients: int
    outcomes: int
    attributes: dict[str, Any]
    flagged: dict[str, Any]
    source: str = ""
    window: dict[str, Any] | None = None
    seconds: float | None = None
    model_id: str | None = None
    challenger: dict[str, Any] | None = None  # champion vs the shadow challenger on the same clients


# ---- the client's rights: what people did about the automated decisions (issue 32) -----------------------------


class HumanRates(msgspec.Struct, kw_only=True):
    """Logged decisions of one group and what people did about them (app.rights.monitoring.rates): overrides, reviews
    requested, reviews that overturned the decision, and their rates (None: no decision, or no review, in the group)."""

    decisions: int
    overrides: int
    reviews: int
    overturned: int
    override_rate: Share | None
    review_rate: Share | None
    overturn_rate: Share | None


class BandHumanRates(HumanRates, kw_only=True):
    band: str  # a band of the logged probability of default, "0.10-0.20"


class PeriodHumanRates(HumanRates, kw_only=True):
    period: str  # "2026-12-07" (day), "2026-W49" (ISO week), "2026-12" (month) or "all"


class OfficerHumanRates(msgspec.Struct, kw_only=True):
    """One officer's acts: the decisions logged in their name (the dashboard's user), the overrides they made and
    the reviews they recorded; rates per decision of theirs (an officer may act on decisions another asked for, so a
    rate may exceed 1), share of all overrides."""

    officer: str
    decisions: int | None
    overrides: int
    granted: int
    pending: int
    rejected: int
    reviews_recorded: int
    override_rate: float | None
    review_rate: float | None
    share_of_overrides: Share


class HumanDecisions(msgspec.Struct, kw_only=True):
    """Override and review rates by score band, by period and by officer (GET /monitoring/human-decisions)."""

    period: Literal["day", "week", "month", "all"]
    overall: HumanRates
    by_band: list[BandHumanRates]
    by_period: list[PeriodHumanRates]
    by_officer: list[OfficerHumanRates]
    officer_rates: str  # "per officer", or why only counts are given
