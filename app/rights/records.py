"""What people did about automated decisions, in the operational store (sql/store/006_decision_rights.sql).

- `decision(store, request_id)` / `latest_decision(store, client_id)`: a logged decision (the prediction_log row).
- Human review: `request_review` (an officer records the client's request and point of view), `decide_review` (a
  person with the risk role upholds or overturns, with a reason from REVIEW_REASONS and free text).
- Overrides: `record_override` (an officer changes a decision when it is made: it must be the client's latest
  logged decision and not under review), `second_opinion` (four eyes: granting credit the model refused with a
  probability above CREDIT_OVERRIDE_FOUR_EYES waits for a DIFFERENT person with the risk role to approve it).
- `decision_in_force(store, row)`: the automated decision, then the override in force, then each decided review.
- Every act is also one row of `rights_events` (append-only: who, role, when, what, why), in the same transaction.

`Actor(name, role)` is who acts: a person's name (the CLI's verified --as account, the API's `by`) and the role
the account or the API key grants (app.service.auth.ROLES). Domain errors are RightsError (CLI `Error: ...`, API 4xx).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

import apsw

from app.errors import CreditError

ROLES = ("officer", "risk", "admin")  # app.service.auth.ROLES (not imported: this module is used by the CLI too)
RANK = {r: i for i, r in enumerate(ROLES)}

REVIEW_REASONS: dict[str, tuple[str, str]] = {  # code -> (fr, en): why a reviewer upholds or overturns
    "assessment_confirmed": ("Évaluation confirmée après examen du dossier", "Assessment confirmed on examination"),
    "data_error": ("Donnée erronée corrigée", "Incorrect data corrected"),
    "new_information": ("Information nouvelle fournie par le client", "New information provided by the client"),
    "circumstances": ("Situation particulière du client prise en compte", "The client's circumstances considered"),
    "policy": ("Application de la politique de crédit", "Credit policy applied"),
    "other": ("Autre motif (voir le commentaire)", "Other reason (see the comment)"),
}
OVERRIDE_REASONS: dict[str, tuple[str, str]] = {
    "documented_income": ("Revenus justifiés non pris en compte", "Documented income not in the data"),
    "guarantee": ("Garantie ou caution apportée", "Guarantee or surety provided"),
    "relationship": ("Historique de la relation bancaire", "Banking relationship history"),
    "data_error": ("Donnée erronée", "Incorrect data"),
    "affordability_concern": ("Doute sur la capacité de remboursement", "Affordability concern"),
    "policy_exception": ("Exception à la politique de crédit", "Credit policy exception"),
    "other": ("Autre motif (voir le commentaire)", "Other reason (see the comment)"),
}
MAX_TEXT = 2000
# a name or a reason must hold at least one letter or digit (what the API schema's `pattern` says too)
WORD_PATTERN = "[0-9A-Za-z\u00c0-\u024f]"
_WORD = re.compile(WORD_PATTERN)
LOG_COLUMNS = "id, ts, request_id, client_id, probability, decision, model_id, role, endpoint"


class RightsError(CreditError, ValueError):
    """A request that cannot be done; `status` is the HTTP status the API answers with."""

    def __init__(self, message: str, status: int = 400, detail: Any = None):
        super().__init__(message)
        self.status, self.detail = status, detail


@dataclass(frozen=True)
class Actor:
    name: str
    role: str

    def __post_init__(self) -> None:
        if self.role not in RANK:
            raise RightsError(f"unknown role {self.role!r} (one of {', '.join(ROLES)})")
        if not isinstance(self.name, str) or not _WORD.search(self.name) or len(self.name) > 100:
            raise RightsError(
                "a person's name is required (1 to 100 characters, a letter or digit): who acts is recorded"
            )

    def has(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]


def _text(value: Any, what: str, required: bool = True) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise RightsError(f"{what} must be text")
    value = value.strip()
    if required and not _WORD.search(value):
        raise RightsError(f"{what} is required (words: at least a letter or digit)")
    if len(value) > MAX_TEXT:
        raise RightsError(f"{what} is longer than {MAX_TEXT} characters")
    return value


def _rows(cur: apsw.Cursor) -> list[dict[str, Any]]:
    """The rows of an executed statement as dicts (its description is read before the rows are fetched: apsw
    has none once a statement has completed)."""
    try:
        names = [d[0] for d in cur.getdescription()]
    except apsw.ExecutionCompleteError:  # no row at all
        return []
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _row(cur: apsw.Cursor) -> dict[str, Any] | None:
    rows = _rows(cur)
    return rows[0] if rows else None


# ---- logged decisions ------------------------------------------------------------------------------------------


def decision(store: apsw.Connection, request_id: str) -> dict[str, Any]:
    """The prediction_log row of `request_id` (without the vector); RightsError 404 when unknown."""
    if not isinstance(request_id, str) or not request_id or len(request_id) > 64:
        raise RightsError("a request id is the `request_id` of a logged decision", 400)
    row = _row(store.execute(f"SELECT {LOG_COLUMNS} FROM prediction_log WHERE request_id = ?", (request_id,)))
    if row is None:
        raise RightsError(f"no logged decision with request id {request_id}", 404, {"request_id": request_id})
    return row


def latest_decision(store: apsw.Connection, client_id: int) -> dict[str, Any]:
    """The client's most recent logged decision; RightsError 404 when the client has none."""
    row = _row(
        store.execute(
            f"SELECT {LOG_COLUMNS} FROM prediction_log WHERE client_id = ? ORDER BY ts DESC, id DESC LIMIT 1",
            (int(client_id),),
        )
    )
    if row is None:
        raise RightsError(f"no logged decision for client {client_id}", 404, {"client_id": client_id})
    return row


def logged_vector(store: apsw.Connection, request_id: str) -> bytes:
    """The float32 vector the decision was computed from (app.store.predlog.scored_vectors)."""
    from app.store.predlog import scored_vectors

    source, expr = scored_vectors(store)
    rows = store.execute(f"SELECT {expr} FROM {source} WHERE l.request_id = ?", (request_id,)).fetchall()
    if not rows or not rows[0][0]:
        raise RightsError(f"the vector of decision {request_id} is not in the log", 404)
    return bytes(rows[0][0])


def override_of(store: apsw.Connection, request_id: str) -> dict[str, Any] | None:
    return _row(store.execute("SELECT * FROM overrides WHERE request_id = ?", (request_id,)))


def reviews_of(store: apsw.Connection, request_id: str) -> list[dict[str, Any]]:
    return _rows(store.execute("SELECT * FROM reviews WHERE request_id = ? ORDER BY id", (request_id,)))


def decision_in_force(store: apsw.Connection, row: dict[str, Any]) -> str:
    """The automated decision, replaced by an override in force, then by each decided review in turn."""
    current = row["decision"]
    ov = override_of(store, row["request_id"])
    if ov is not None and ov["status"] == "in force":
        current = ov["decision"]
    for rv in reviews_of(store, row["request_id"]):
        if rv["decision_after"] is not None:
            current = rv["decision_after"]
    return current


# ---- writing, with the event in the same transaction -------------------------------------------------------------


def _event(store, actor: Actor, action: str, row: dict | None, why: str | None, detail: dict | None = None) -> None:
    store.execute(
        "INSERT INTO rights_events (ts, actor, role, action, request_id, client_id, why, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            time.time(),
            actor.name,
            actor.role,
            action,
            row["request_id"] if row else None,
            row["client_id"] if row else None,
            why,
            json.dumps(detail, sort_keys=True) if detail is not None else None,
        ),
    )


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any error)."""

    def __init__(self, store: apsw.Connection):
        self.store = store

    def __enter__(self):
        self.store.execute("BEGIN IMMEDIATE")
        return self.store

    def __exit__(self, kind, exc, tb):
        self.store.execute("COMMIT" if kind is None else "ROLLBACK")
        return False


def record_event(
    store: apsw.Connection,
    actor: Actor,
    action: str,
    row: dict | None,
    why: str | None = None,
    detail: dict | None = None,
) -> None:
    """One audit row on its own (e.g. an export)."""
    with _Tx(store):
        _event(store, actor, action, row, why, detail)


def record_letter(store: apsw.Connection, actor: Actor, channel: str, letter: dict[str, Any], fmt: str) -> int:
    """Record a letter issued (its facts as JSON) and its event; returns the letter's id."""
    import hashlib

    content = json.dumps(letter, sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(content.encode()).hexdigest()
    d = letter["decision"]
    with _Tx(store):
        store.execute(
            "INSERT INTO letters (issued_at, issued_by, role, channel, request_id, client_id, lang, format, model_id,"
            " decision, content, content_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                time.time(),
                actor.name,
                actor.role,
                channel,
                d["request_id"],
                d["client_id"],
                letter["lang"],
                fmt,
                d["model_id"],
                letter["decision_in_force"],
                content,
                digest,
            ),
        )
        letter_id = store.last_insert_rowid()
        _event(
            store,
            actor,
            "letter issued",
            d,
            None,
            {"letter_id": letter_id, "lang": letter["lang"], "format": fmt, "sha256": digest},
        )
    return int(letter_id)


def request_review(store: apsw.Connection, actor: Actor, request_id: str, client_view: str) -> dict[str, Any]:
    """An officer records the client's request for a human review, with the client's point of view."""
    if not actor.has("officer"):
        raise RightsError("recording a review request needs the officer role", 403)
    view = _text(client_view, "the client's point of view")
    row = decision(store, request_id)
    with _Tx(store):
        if _row(store.execute("SELECT id FROM reviews WHERE request_id = ? AND decided_at IS NULL", (request_id,))):
            raise RightsError(f"decision {request_id} already has a review waiting for a decision", 409)
        before = decision_in_force(store, row)
        store.execute(
            "INSERT INTO reviews (request_id, client_id, requested_at, requested_by, requested_role, client_view,"
            " decision_before) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (request_id, row["client_id"], time.time(), actor.name, actor.role, view, before),
        )
        review_id = store.last_insert_rowid()
        _event(store, actor, "review requested", row, view, {"review_id": review_id, "decision_before": before})
    return review(store, int(review_id))


def review(store: apsw.Connection, review_id: int) -> dict[str, Any]:
    out = _row(store.execute("SELECT * FROM reviews WHERE id = ?", (int(review_id),)))
    if out is None:
        raise RightsError(f"no review {review_id}", 404)
    return out


def decide_review(
    store: apsw.Connection, actor: Actor, review_id: int, outcome: str, reason_code: str, reason_text: str
) -> dict[str, Any]:
    """A person with the risk role upholds or overturns the decision under review, with a reason from
    REVIEW_REASONS (mandatory) and free text (mandatory with 'other')."""
    if not actor.has("risk"):
        raise RightsError("deciding a review needs the risk role", 403)
    if outcome not in ("uphold", "overturn"):
        raise RightsError("the outcome of a review is 'uphold' or 'overturn'")
    if reason_code not in REVIEW_REASONS:
        raise RightsError(f"reason must be one of {', '.join(REVIEW_REASONS)}", 400, {"reasons": list(REVIEW_REASONS)})
    text = _text(reason_text, "the reviewer's comment", required=reason_code == "other")
    with _Tx(store):
        rv = review(store, review_id)
        if rv["decided_at"] is not None:
            raise RightsError(f"review {review_id} was already decided ({rv['outcome']})", 409)
        after = rv["decision_before"]
        if outcome == "overturn":
            after = "accept" if after == "refuse" else "refuse"
        store.execute(
            "UPDATE reviews SET decided_at = ?, decided_by = ?, decided_role = ?, outcome = ?, reason_code = ?,"
            " reason_text = ?, decision_after = ? WHERE id = ?",
            (time.time(), actor.name, actor.role, outcome, reason_code, text, after, int(review_id)),
        )
        row = decision(store, rv["request_id"])
        _event(
            store,
            actor,
            "review decided",
            row,
            text or reason_code,
            {"review_id": review_id, "outcome": outcome, "reason_code": reason_code, "decision_after": after},
        )
    return review(store, review_id)


def record_override(
    store: apsw.Connection,
    actor: Actor,
    request_id: str,
    new_decision: str,
    reason_code: str,
    reason_text: str,
    four_eyes_above: float,
) -> dict[str, Any]:
    """An officer overrides a decision when it is made: the client's latest logged decision, not yet overridden or
    under review. Granting credit the model refused with probability > `four_eyes_above` is recorded 'pending'
    until a second person with the risk role approves it (`second_opinion`); until then the model's decision
    stands."""
    if not actor.has("officer"):
        raise RightsError("an override needs the officer role", 403)
    if new_decision not in ("accept", "refuse"):
        raise RightsError("the decision of an override is 'accept' or 'refuse'")
    if reason_code not in OVERRIDE_REASONS:
        raise RightsError(
            f"reason must be one of {', '.join(OVERRIDE_REASONS)}", 400, {"reasons": list(OVERRIDE_REASONS)}
        )
    text = _text(reason_text, "the reason of the override")
    row = decision(store, request_id)
    if new_decision == row["decision"]:
        raise RightsError(f"decision {request_id} is already '{row['decision']}': nothing to override", 409)
    with _Tx(store):
        if row["client_id"] is not None:
            latest = latest_decision(store, row["client_id"])
            if latest["request_id"] != request_id:
                raise RightsError(
                    f"an override is made when the decision is made: client {row['client_id']} has a later decision"
                    f" ({latest['request_id']}); ask for a human review of an earlier one instead",
                    409,
                )
        if override_of(store, request_id) is not None:
            raise RightsError(f"decision {request_id} is already overridden", 409)
        if reviews_of(store, request_id):
            raise RightsError(f"decision {request_id} is under human review: its outcome decides", 409)
        needs_second = new_decision == "accept" and row["probability"] > four_eyes_above
        status = "pending" if needs_second else "in force"
        store.execute(
            "INSERT INTO overrides (request_id, client_id, created_at, officer, officer_role, model_decision,"
            " probability, decision, reason_code, reason_text, needs_second, status)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                request_id,
                row["client_id"],
                time.time(),
                actor.name,
                actor.role,
                row["decision"],
                row["probability"],
                new_decision,
                reason_code,
                text,
                int(needs_second),
                status,
            ),
        )
        _event(
            store,
            actor,
            "override recorded",
            row,
            text,
            {
                "decision": new_decision,
                "reason_code": reason_code,
                "status": status,
                "four_eyes_above": four_eyes_above,
            },
        )
    return override_of(store, request_id)  # type: ignore[return-value]


def second_opinion(store: apsw.Connection, actor: Actor, request_id: str, approve: bool, text: str) -> dict[str, Any]:
    """Four eyes: a person with the risk role, other than the officer, approves or rejects a pending override."""
    if not actor.has("risk"):
        raise RightsError("approving an override needs the risk role (four eyes)", 403)
    comment = _text(text, "the second person's comment", required=not approve)
    with _Tx(store):
        ov = override_of(store, request_id)
        if ov is None:
            raise RightsError(f"decision {request_id} has no override", 404)
        if ov["status"] != "pending":
            raise RightsError(f"the override of {request_id} is not waiting for approval ({ov['status']})", 409)
        if actor.name.strip().casefold() == ov["officer"].strip().casefold():
            raise RightsError("four eyes: the second person must not be the officer who made the override", 403)
        status = "in force" if approve else "rejected"
        store.execute(
            "UPDATE overrides SET status = ?, second_by = ?, second_role = ?, second_at = ?, second_text = ?"
            " WHERE request_id = ?",
            (status, actor.name, actor.role, time.time(), comment, request_id),
        )
        row = decision(store, request_id)
        _event(
            store,
            actor,
            "override approved" if approve else "override rejected",
            row,
            comment or None,
            {"status": status},
        )
    return override_of(store, request_id)  # type: ignore[return-value]


# ---- the client's file -----------------------------------------------------------------------------------------


def client_file(store: apsw.Connection, client_id: int, feature_names: list[str] | None = None) -> dict[str, Any]:
    """Everything the store holds about a client's decisions (the JSON export): each logged decision with the
    values it was computed from (named when `feature_names` has their length), its explanation as frozen, the
    override, the reviews, the letters issued (with their content), the observed outcome and the audit trail."""
    import numpy as np

    cid = int(client_id)
    decisions = _rows(
        store.execute(
            f"SELECT {LOG_COLUMNS}, latency_ms, challenger_score, challenger_model_id"
            " FROM prediction_log WHERE client_id = ? ORDER BY ts, id",
            (cid,),
        )
    )
    for d in decisions:
        x = np.frombuffer(logged_vector(store, d["request_id"]), dtype="<f4")
        values = [None if np.isnan(v) else float(v) for v in x.tolist()]
        if feature_names is not None and len(feature_names) == len(values):
            d["inputs"] = dict(zip(feature_names, values, strict=True))
        else:
            d["inputs"] = values
        d["decision_in_force"] = decision_in_force(store, d)
        exp = _row(store.execute("SELECT * FROM decision_explanations WHERE request_id = ?", (d["request_id"],)))
        if exp is not None:
            for k in ("reasons", "data_used", "counterfactual"):
                exp[k] = json.loads(exp[k]) if exp[k] else None
        d["explanation"] = exp
        d["override"] = override_of(store, d["request_id"])
        d["reviews"] = reviews_of(store, d["request_id"])
    letters = _rows(store.execute("SELECT * FROM letters WHERE client_id = ? ORDER BY id", (cid,)))
    for letter in letters:
        letter["content"] = json.loads(letter["content"])
    outcome = _row(store.execute("SELECT * FROM outcomes WHERE client_id = ?", (cid,)))
    events = _rows(store.execute("SELECT * FROM rights_events WHERE client_id = ? ORDER BY id", (cid,)))
    for e in events:
        e["detail"] = json.loads(e["detail"]) if e["detail"] else None
    return {
        "client_id": cid,
        "exported_at": time.time(),
        "decisions": decisions,
        "letters": letters,
        "outcome": outcome,
        "events": events,
    }
