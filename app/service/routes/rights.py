"""After an automated decision, the client's rights (issue 32), as one Litestar Controller:

  GET  /decisions/{request_id}/letter           (officer) the decision letter: html (default), pdf or json
  GET  /clients/{client_id}/letter              (officer) the letter of the client's latest decision
  GET  /clients/{client_id}/rights-export       (officer) everything held about the client's decisions (JSON)
  POST /decisions/{request_id}/reviews          (officer) record the client's request for a human review
  POST /reviews/{review_id}/decision            (risk)    uphold or overturn, with a reason from the closed list
  POST /decisions/{request_id}/override         (officer) override a decision when it is made
  POST /overrides/{request_id}/second           (risk)    four eyes: approve or reject a pending override
  GET  /monitoring/human-decisions              (risk)    override and review rates by officer, score band, period

Who acts: the `by` field or query parameter names the person (recorded with the role of the caller's key); the
role is the key's, never the caller's word. Every act is written to the operational store (app/rights/records.py)
before the answer.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter

from app.rights import records
from app.service.http import SECURITY, ApiError, decode, parse_id, role_of
from app.service.http import operation as _operation
from app.service.schemas import HumanDecisions

OFFICER = {"role": "officer"}
RISK = {"role": "risk"}
Lang = Annotated[Literal["fr", "en"], Parameter(description="language of the letter")]
Format = Annotated[Literal["html", "pdf", "json"], Parameter(description="html (default), pdf or json")]
By = Annotated[
    str,
    Parameter(min_length=1, max_length=100, pattern=records.WORD_PATTERN, description="the person asking (recorded)"),
]


class ReviewRequest(msgspec.Struct, forbid_unknown_fields=True):
    by: str
    client_view: str


class ReviewDecision(msgspec.Struct, forbid_unknown_fields=True):
    by: str
    outcome: Literal["uphold", "overturn"]
    reason: str
    comment: str = ""


class OverrideIn(msgspec.Struct, forbid_unknown_fields=True):
    by: str
    decision: Literal["accept", "refuse"]
    reason: str
    comment: str


class SecondOpinion(msgspec.Struct, forbid_unknown_fields=True):
    by: str
    approve: bool
    comment: str = ""


class ReviewOut(msgspec.Struct):
    """A human review (sql/store/006_decision_rights.sql `reviews`)."""

    id: int
    request_id: str
    client_id: int | None
    requested_at: float
    requested_by: str
    requested_role: str
    client_view: str
    decided_at: float | None
    decided_by: str | None
    decided_role: str | None
    outcome: str | None
    reason_code: str | None
    reason_text: str | None
    decision_before: str
    decision_after: str | None


class OverrideOut(msgspec.Struct):
    """An override (sql/store/006_decision_rights.sql `overrides`); status 'pending' waits for four eyes."""

    id: int
    request_id: str
    client_id: int | None
    created_at: float
    officer: str
    officer_role: str
    model_decision: str
    probability: float
    decision: str
    reason_code: str
    reason_text: str
    needs_second: int
    status: str
    second_by: str | None
    second_role: str | None
    second_at: float | None
    second_text: str | None


class RightsExport(msgspec.Struct):
    """Everything held about a client's decisions (app.rights.records.client_file)."""

    client_id: int
    exported_at: float
    decisions: list[dict[str, Any]]
    letters: list[dict[str, Any]]
    outcome: dict[str, Any] | None
    events: list[dict[str, Any]]


def _body(**props: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": list(props), "properties": props}


TEXT = {"type": "string", "minLength": 1, "maxLength": records.MAX_TEXT, "pattern": records.WORD_PATTERN}
NAME = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": records.WORD_PATTERN}
# the request bodies, registered as named components by app.service.routes.openapi (`body="ReviewRequest"`)
BODIES: dict[str, tuple[dict[str, Any], str]] = {
    "ReviewRequest": (
        _body(by=NAME, client_view=TEXT),
        "a client's request for a human review (POST /decisions/{request_id}/reviews)",
    ),
    "ReviewDecision": (
        _body(
            by=NAME,
            outcome={"type": "string", "enum": ["uphold", "overturn"]},
            reason={"type": "string", "enum": list(records.REVIEW_REASONS)},
            comment=TEXT,
        ),
        "the decision of a review (POST /reviews/{review_id}/decision)",
    ),
    "Override": (
        _body(
            by=NAME,
            decision={"type": "string", "enum": ["accept", "refuse"]},
            reason={"type": "string", "enum": list(records.OVERRIDE_REASONS)},
            comment=TEXT,
        ),
        "an override of a decision when it is made (POST /decisions/{request_id}/override)",
    ),
    "SecondOpinion": (
        _body(by=NAME, approve={"type": "boolean"}, comment=TEXT),
        "four eyes: approve or reject a pending override (POST /overrides/{request_id}/second)",
    ),
}


def _svc(request: Request) -> Any:
    return request.app.state.service


def _actor(request: Request, by: str) -> records.Actor:
    try:
        return records.Actor(by, role_of(request))
    except records.RightsError as exc:
        raise ApiError(exc.status, str(exc), exc.detail) from None


def _call(fn, *args, **kw):
    """Run a records/letter function; its RightsError becomes the one error shape with its status."""
    from app.rights.counterfactual import CounterfactualError
    from app.rights.pdf import PdfError

    try:
        return fn(*args, **kw)
    except records.RightsError as exc:
        raise ApiError(exc.status, str(exc), exc.detail) from None
    except CounterfactualError as exc:
        raise ApiError(503, str(exc)) from None
    except PdfError as exc:
        raise ApiError(503, "cannot print the letter", str(exc)) from None


def _record(request: Request, body: bytes, schema: type, out: type, act) -> Any:
    """The four recording routes' one shape: decode the strict body into `schema`, name the actor (its `by` with the
    key's role), run `act(store, actor, body)` (a records function) and answer its row as `out` (one named OpenAPI
    component); a RightsError becomes the one error shape with its status."""
    req = decode(body, schema)
    return msgspec.convert(_call(act, _svc(request).log_conn(), _actor(request, req.by), req), out)


def _letter(request: Request, ref: str, lang: str, fmt: str, by: str) -> Response[str]:
    from app.rights.counterfactual import parse_levers
    from app.rights.service import issue

    svc = _svc(request)
    actor = _actor(request, by)
    got = _call(
        issue,
        svc.log_conn(),
        ref,
        actor=actor,
        channel="api",
        lang=lang,
        fmt=fmt,
        serving=svc.model_dir,
        data_db=svc.db_path,
        levers=_call(parse_levers, svc.settings.cf_levers),
    )
    headers = {"X-Letter-Id": str(got.letter_id)}
    if fmt == "pdf":
        headers["Content-Disposition"] = f'inline; filename="letter-{got.facts["decision"]["request_id"]}-{lang}.pdf"'
        return Response(got.pdf, media_type="application/pdf", headers=headers)
    if fmt == "json":
        return Response({"letter_id": got.letter_id, **got.facts}, media_type="application/json", headers=headers)
    return Response(got.html, media_type="text/html; charset=utf-8", headers=headers)


class RightsController(Controller):
    path = "/"
    security = SECURITY
    tags = ["rights"]

    @get(
        "/decisions/{request_id:str}/letter",
        sync_to_thread=True,
        opt=OFFICER,
        media_type="text/html",
        operation_class=_operation(errors=(400, 401, 403, 404, 409, 503)),
    )
    def decision_letter(
        self, request: Request, request_id: str, by: By, lang: Lang = "fr", format: Format = "html"
    ) -> Response[str]:
        """The decision letter of a logged decision (its request_id): what was decided, when, by which model (the
        log row, never a re-score), the principal reasons, the data used, what would change the outcome, the
        client's rights. One A4 page as HTML; format=pdf answers application/pdf and format=json the letter's
        facts (application/json). Every letter is recorded (who, when, which decision)."""
        return _letter(request, request_id, lang, format, by)

    @get(
        "/clients/{client_id:str}/letter",
        sync_to_thread=True,
        opt=OFFICER,
        media_type="text/html",
        operation_class=_operation(path_ids=("client_id",), errors=(400, 401, 403, 404, 409, 503)),
    )
    def client_letter(
        self, request: Request, client_id: str, by: By, lang: Lang = "fr", format: Format = "html"
    ) -> Response[str]:
        """The decision letter of the client's latest logged decision."""
        return _letter(request, str(parse_id(client_id)), lang, format, by)

    @get(
        "/clients/{client_id:str}/rights-export",
        sync_to_thread=True,
        opt=OFFICER,
        operation_class=_operation(path_ids=("client_id",), errors=(400, 401, 403, 503)),
    )
    def rights_export(self, request: Request, client_id: str, by: By) -> RightsExport:
        """Everything the bank holds about the client's decisions, as JSON (the export is recorded)."""
        from app.rights.export import export_client

        svc = _svc(request)
        doc = _call(export_client, svc.log_conn(), parse_id(client_id), _actor(request, by), svc.model_dir)
        return msgspec.convert(doc, RightsExport)

    @post(
        "/decisions/{request_id:str}/reviews",
        status_code=201,
        sync_to_thread=True,
        opt=OFFICER,
        operation_class=_operation(errors=(400, 401, 403, 404, 409, 503), body="ReviewRequest"),
    )
    def request_review(self, request: Request, request_id: str, body: bytes) -> ReviewOut:
        """Record a client's request for a human review of a decision, with the client's point of view."""
        return _record(
            request,
            body,
            ReviewRequest,
            ReviewOut,
            lambda store, actor, req: records.request_review(store, actor, request_id, req.client_view),
        )

    @post(
        "/reviews/{review_id:str}/decision",
        status_code=200,
        sync_to_thread=True,
        opt=RISK,
        operation_class=_operation(
            path_ids=("review_id",),
            errors=(400, 401, 403, 404, 409, 503),
            body="ReviewDecision",
        ),
    )
    def decide_review(self, request: Request, review_id: str, body: bytes) -> ReviewOut:
        """Uphold or overturn a decision under review (risk role), with a reason from the closed list and a
        comment (mandatory with the reason `other`). The automated decision stays as logged."""
        review = parse_id(review_id, "review_id")
        return _record(
            request,
            body,
            ReviewDecision,
            ReviewOut,
            lambda store, actor, req: records.decide_review(store, actor, review, req.outcome, req.reason, req.comment),
        )

    @post(
        "/decisions/{request_id:str}/override",
        status_code=201,
        sync_to_thread=True,
        opt=OFFICER,
        operation_class=_operation(
            errors=(400, 401, 403, 404, 409, 503),
            body="Override",
        ),
    )
    def override(self, request: Request, request_id: str, body: bytes) -> OverrideOut:
        """Override a decision when it is made (the client's latest), with a reason. Granting credit the model
        refused above CREDIT_OVERRIDE_FOUR_EYES is 'pending' until a second person with the risk role approves."""
        four_eyes = _svc(request).settings.override_four_eyes
        return _record(
            request,
            body,
            OverrideIn,
            OverrideOut,
            lambda store, actor, req: records.record_override(
                store, actor, request_id, req.decision, req.reason, req.comment, four_eyes
            ),
        )

    @post(
        "/overrides/{request_id:str}/second",
        status_code=200,
        sync_to_thread=True,
        opt=RISK,
        operation_class=_operation(errors=(400, 401, 403, 404, 409, 503), body="SecondOpinion"),
    )
    def second_opinion(self, request: Request, request_id: str, body: bytes) -> OverrideOut:
        """Four eyes: approve or reject a pending override (risk role; not the officer who made it)."""
        return _record(
            request,
            body,
            SecondOpinion,
            OverrideOut,
            lambda store, actor, req: records.second_opinion(store, actor, request_id, req.approve, req.comment),
        )

    @get(
        "/monitoring/human-decisions",
        sync_to_thread=True,
        opt=RISK,
        operation_class=_operation(errors=(400, 401, 403, 503)),
    )
    def human_decisions(
        self, request: Request, period: Literal["day", "week", "month", "all"] = "day"
    ) -> HumanDecisions:
        """Override and review rates by officer, by score band and by period, over the logged decisions."""
        from app.rights.monitoring import rates

        svc = _svc(request)
        return msgspec.convert(rates(svc.log_conn(), period=period), HumanDecisions)
