"""HTTP routes of issue 19, as one Litestar Controller registered by app.service.api.create_app:

  POST /outcomes                 (risk)    observed outcomes; the latest observation of a client wins
  GET  /monitoring/performance   (risk)    realised performance (app.monitoring.performance)
  GET  /monitoring/fairness      (risk)    fairness of the live decisions (app.monitoring.fairness)
  GET  /model/fairness           (officer) training-time fairness on out-of-fold predictions (fairness.json)
  GET  /model/card               (officer) the model card (model_card.md), text/markdown

The service (app.service.state.Service) is the app's `state.service`; the auth guard of app.service.api
applies here too.
"""

from __future__ import annotations

import json
import math
import time
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter

from app.ids import ID_RULE, MAX_ID, is_client_id
from app.monitoring import outcomes as oc
from app.scoring.challenger import thresholds as challenger_thresholds
from app.service.http import MAX_TS, SECURITY, TIME_PARAMS, ApiError, decode
from app.service.http import operation as _operation
from app.service.schemas import FairnessReport, PerformanceReport

MAX_OUTCOMES = 10_000  # per request


RISK = {"role": "risk"}
OFFICER = {"role": "officer"}


class OutcomeIn(msgspec.Struct, forbid_unknown_fields=True):
    client_id: int
    defaulted: Literal[0, 1]
    observed_at: str  # ISO 8601 date or date-time; a date alone means the end of that day (UTC)


class OutcomesIn(msgspec.Struct, forbid_unknown_fields=True):
    outcomes: list[OutcomeIn]
    replace: bool = False  # correct stored outcomes whatever their dates (recorded in outcome_corrections)


class OutcomesOut(msgspec.Struct):
    received: int
    written: int
    never_scored: int  # of the clients received, how many have no logged decision at or before the outcome
    never_scored_ids: list[int]
    stored: int
    duplicates: int = 0  # items repeating a client of the same request (counted once)
    unchanged: int = 0  # already stored exactly so
    older: int = 0  # not written: the store holds a later observation (send again with "replace": true)
    corrected: int = 0  # with "replace": stored outcomes replaced (recorded)


OUTCOMES_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["outcomes"],
    "properties": {
        "outcomes": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_OUTCOMES,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["client_id", "defaulted", "observed_at"],
                "properties": {
                    "client_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                    "defaulted": {"type": "integer", "enum": [0, 1]},
                    "observed_at": {
                        "type": "string",
                        "format": "date",
                        "description": "ISO 8601 date (the end of that day, UTC) or date-time, from 1900-01-01 to"
                        " at most one day ahead of now",
                    },
                },
            },
        },
        "replace": {
            "type": "boolean",
            "default": False,
            "description": "replace stored outcomes even when they are later (each replacement is recorded)",
        },
    },
}


def _svc(request: Request) -> Any:
    return request.app.state.service


def _bounds(since: float | None, until: float | None) -> None:
    for name, v in (("since", since), ("until", until)):
        if v is not None and not math.isfinite(v):
            raise ApiError(400, f"{name} must be a finite number of unix seconds")


def _costs(svc: Any) -> tuple[float, float]:
    model = svc.model
    costs = model.manifest.costs if model is not None else {}
    return float(costs.get("fn", svc.settings.fn_cost)), float(costs.get("fp", svc.settings.fp_cost))


class OutcomesController(Controller):
    path = "/"
    security = SECURITY

    @post("/outcomes", status_code=200, sync_to_thread=True, opt=RISK, tags=["monitoring"],
          operation_class=_operation(errors=(400, 401, 403, 413, 503), body="Outcomes"))  # fmt: skip
    def post_outcomes(self, request: Request, body: bytes) -> OutcomesOut:
        """Record observed outcomes (risk or admin role). Re-sending the same outcomes changes nothing; an older
        observation never replaces a newer one (it is counted in `older`) unless `"replace": true` (a correction,
        recorded). A client given twice counts once; both outcomes at the same instant is a 400. observed_at runs
        from 1900-01-01 to at most one day ahead of now. Every bad item is a 400 naming it; nothing is written
        then."""
        req = decode(body, OutcomesIn)
        if not 1 <= len(req.outcomes) <= MAX_OUTCOMES:
            raise ApiError(400, f"give 1 to {MAX_OUTCOMES} outcomes", {"count": len(req.outcomes)})
        items, errors = [], []
        now = time.time()
        for i, o in enumerate(req.outcomes):
            try:
                if not is_client_id(o.client_id):
                    raise ValueError(f"client_id must be {ID_RULE}, got {o.client_id}")
                when = oc.parse_date(o.observed_at, now)
            except ValueError as exc:
                errors.append(f"outcomes[{i}]: {exc}")
                continue
            items.append((f"outcomes[{i}]", oc.Outcome(o.client_id, int(o.defaulted), when)))
        if errors:
            raise ApiError(400, "invalid outcomes", {"errors": errors[:20], "count": len(errors)})
        batch = oc.Batch()
        try:
            batch.add(items)
            duplicates = batch.check("request")
            unique = list(batch.rows())
        except oc.OutcomeError as exc:
            raise ApiError(400, "invalid outcomes", {"errors": exc.errors, "count": len(exc.errors)}) from None
        finally:
            batch.close()
        svc = _svc(request)
        conn = svc.log_conn()
        role = getattr(request.state, "role", "unknown")
        try:
            got = oc.write(conn, unique, f"api:{role}" + (" replace" if req.replace else ""), replace=req.replace)
            unscored = [
                o.client_id
                for o in unique
                if not conn.execute(
                    "SELECT 1 FROM prediction_log WHERE client_id = ? AND ts <= ? LIMIT 1", (o.client_id, o.observed_at)
                ).fetchall()
            ]
            stored = oc.counts(conn)["outcomes"]
        except Exception as exc:
            raise ApiError(503, "outcome store unavailable", f"{type(exc).__name__}: {exc}") from exc
        return OutcomesOut(
            received=len(items),
            written=got["written"],
            never_scored=len(unscored),
            never_scored_ids=sorted(unscored)[:100],
            stored=stored,
            duplicates=duplicates,
            unchanged=got["unchanged"],
            older=got["older"],
            corrected=got["corrected"],
        )

    @get("/monitoring/performance", sync_to_thread=True, opt=RISK, tags=["monitoring"],
         operation_class=_operation(errors=(400, 401, 403, 503), query=TIME_PARAMS))  # fmt: skip
    def monitoring_performance(
        self,
        request: Request,
        since: Annotated[float | None, Parameter(ge=0, le=MAX_TS, description="decisions from (unix s)")] = None,
        until: Annotated[float | None, Parameter(ge=0, le=MAX_TS, description="decisions before (unix s)")] = None,
        last: Annotated[int | None, Parameter(ge=1, le=10_000_000, description="the last N logged scores")] = None,
        period: Annotated[Literal["day", "week", "month", "all"], Parameter(description="per-period figures")] = "day",
    ) -> PerformanceReport:
        """Realised performance: outcomes joined with the decision served (the log row, not a re-score): AUC,
        calibration by score band, cost per client, per model id and period. Groups with fewer outcomes than
        CREDIT_MIN_OUTCOMES say so instead of giving a number; outcomes of clients never scored are counted."""
        from app.monitoring import performance

        _bounds(since, until)
        svc = _svc(request)
        fn, fp = _costs(svc)
        try:
            rep = performance.report(
                svc.log_conn(),
                fn_cost=fn,
                fp_cost=fp,
                since=since,
                until=until,
                last=last,
                period=period,
                min_outcomes=svc.settings.min_outcomes,
                thresholds=challenger_thresholds(svc.model_dir),
            )
            return msgspec.convert(rep, PerformanceReport)
        except performance.PerformanceError as exc:
            raise ApiError(400, str(exc)) from None
        except ApiError:
            raise
        except Exception as exc:
            raise ApiError(503, "performance report unavailable", f"{type(exc).__name__}: {exc}") from exc

    @get("/monitoring/fairness", opt=RISK, tags=["monitoring"],
         operation_class=_operation(errors=(400, 401, 403, 404, 503), query=TIME_PARAMS))  # fmt: skip
    async def monitoring_fairness(
        self,
        request: Request,
        since: Annotated[float | None, Parameter(ge=0, le=MAX_TS, description="decisions from (unix s)")] = None,
        until: Annotated[float | None, Parameter(ge=0, le=MAX_TS, description="decisions before (unix s)")] = None,
        min_group: Annotated[int, Parameter(ge=1, le=1_000_000, description="smallest group compared")] = 30,
    ) -> FairnessReport:
        """Fairness of the live decisions (latest per client in the window) per group of each sensitive attribute
        (CREDIT_SENSITIVE): approval rate, default rate among the accepted, TPR/FPR, approval-rate ratio to the
        best-treated group (flagged below 0.8). 404 when no decision about a known client is in the window.
        Computed in a worker process (app.monitoring.worker) and kept while the log and outcomes do not change."""
        from app.monitoring import fairness, fairness_cache

        _bounds(since, until)
        svc = _svc(request)
        if not svc.log_db_path.is_file():
            raise ApiError(404, "no decisions logged yet", {"since": since, "until": until})
        try:
            rep = await fairness_cache.report(
                svc, attributes=fairness.parse_attributes(svc.settings.sensitive), since=since, until=until,
                min_group=min_group,
            )  # fmt: skip
        except fairness_cache.WorkerError as exc:
            if exc.kind == "empty":
                raise ApiError(404, str(exc), {"since": since, "until": until}) from None
            raise ApiError(503, "fairness report unavailable", str(exc)) from None
        return msgspec.convert(rep, FairnessReport)

    @get("/model/fairness", sync_to_thread=True, opt=OFFICER, tags=["model"],
         operation_class=_operation(errors=(401, 403, 404, 503)))  # fmt: skip
    def model_fairness(self, request: Request) -> FairnessReport:
        """Training-time fairness of the served model, on its honest out-of-fold predictions (written by
        `credit train` beside the manifest). 404 when the model was trained without it."""
        from app.model import card

        svc = _svc(request)
        model = svc.model
        if model is None:
            raise ApiError(503, "model unavailable", svc.model_error)
        path = svc.model_dir / card.FAIRNESS_FILE
        if not path.is_file():
            raise ApiError(404, "no training-time fairness for this model (retrain with this version)")
        data = json.loads(path.read_text())
        if data.get("model_id") != model.model_id:
            raise ApiError(404, "the fairness file belongs to another model (retrain)")
        return msgspec.convert(data, FairnessReport)

    @get("/model/card", sync_to_thread=True, opt=OFFICER, tags=["model"], media_type="text/markdown",
         operation_class=_operation(errors=(401, 403, 404, 503)))  # fmt: skip
    def model_card(self, request: Request) -> Response[str]:
        """The model card (markdown): intended use, data, features, honest performance, calibration, fairness,
        threshold and costs, limitations, versions and model id."""
        from app.model import card

        svc = _svc(request)
        model = svc.model
        if model is None:
            raise ApiError(503, "model unavailable", svc.model_error)
        path = svc.model_dir / card.CARD_FILE
        if not path.is_file():
            raise ApiError(404, "no model card for this model (retrain with this version)")
        text = path.read_text(encoding="utf-8")
        if model.model_id not in text:
            raise ApiError(404, "the model card belongs to another model (retrain)")
        return Response(text, media_type="text/markdown; charset=utf-8")
