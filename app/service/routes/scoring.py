"""Scoring (officer): a known client (the hot path), a what-if on a known client, an applicant, a batch.

Every score answered is a committed prediction_log row: the handlers await `svc.write_log` before returning
(503 "prediction log unavailable" if the rows cannot be committed).

Challenger in shadow: each handler takes the (champion, challenger) pair once (`svc.require_pair`); when a
challenger is installed it scores the same features too (in the same SQL statement for a known client), the
champion alone decides and answers, and the log row carries both scores (`shadow_*` below).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, TypeVar

import msgspec
import numpy as np
from litestar import Controller, Request, get, post

from app.data.finite import display_value
from app.service import inputs
from app.service import schemas as s
from app.service.http import (
    OFFICER,
    SECURITY,
    ApiError,
    decode,
    errors,
    finite,
    operation,
    parse_id,
    role_of,
    user_of,
)
from app.service.state import Service, feature_completeness
from app.store import predlog

K = TypeVar("K", bound=s.ClientScore)


SHADOW_SQL = "SELECT client_id, score_features(x), challenger_score_features(x), x FROM features WHERE client_id = ?"
PLAIN_SQL = "SELECT client_id, score_features(x), NULL, x FROM features WHERE client_id = ?"


def shadow_value(p: float | None) -> float | None:
    """A challenger's score as logged: never fails the answer (a non-probability is logged as NULL)."""
    return float(p) if p is not None and 0.0 <= p <= 1.0 else None


def shadow_row(pair, x: np.ndarray) -> float | None:
    """The challenger's score of one float32 vector, or None without a challenger."""
    return shadow_value(pair.challenger.predict_row(x)) if pair.challenger is not None else None


def shadow_batch(pair, X: np.ndarray) -> list[float | None]:
    if pair.challenger is None:
        return [None] * len(X)
    return [shadow_value(p) for p in pair.challenger.predict(X).tolist()]


def client_score(kind: type[K], entry: predlog.LogRow, x: np.ndarray, threshold: float, **extra: object) -> K:
    """A ClientScore (or subclass) for the logged `entry` of a known client's vector `x`."""
    return kind(
        client_id=entry.client_id,
        probability=entry.probability,
        decision=entry.decision,
        threshold=threshold,
        model_id=entry.model_id,
        completeness=feature_completeness(x),
        request_id=entry.request_id,
        **extra,
    )


async def score_known_client(
    svc: Service, role: str, client_id: str, t0: float, in_flight: Any = None, user: str | None = None
) -> s.ClientScore:
    """GET /clients/{id}/score for a caller of `role` (already checked): served by the route below and, on the
    hot path, by app.service.fastpath in front of Litestar (`in_flight`: see GroupWriter.commit)."""
    cid = parse_id(client_id)
    pair = svc.require_pair()
    model = pair.champion
    rows = svc.score_query(SHADOW_SQL if pair.challenger else PLAIN_SQL, (cid,), pair)
    if not rows:
        raise ApiError(404, "unknown client", {"client_id": cid})
    _cid, p, cp, xb = rows[0]
    p = finite(p)
    d = model.decide(p)
    entry = svc.row(role, "GET /clients/{id}/score", t0, cid, xb, p, d, pair, shadow_value(cp), stored=True, user=user)
    await svc.write_log([entry], in_flight)
    return client_score(s.ClientScore, entry, np.frombuffer(xb, dtype="<f4"), model.threshold)


class ScoringController(Controller):
    tags = ["scoring"]
    security = SECURITY

    @get("/clients/{client_id:str}/score", opt=OFFICER, responses=errors(400, 401, 403, 404, 503),
         operation_class=operation(path_ids=("client_id",)))  # fmt: skip
    async def client_score(self, request: Request, client_id: str) -> s.ClientScore:
        """Probability of default and decision for a known client (one SQL statement: lookup + inference).

        The score is written to the prediction log before this answer is sent (503 if it cannot be).
        """
        t0 = time.perf_counter()
        svc: Service = request.app.state.service  # not a dependency: nothing for Litestar to resolve per request
        return await score_known_client(svc, role_of(request), client_id, t0, user=user_of(request))

    @post("/clients/{client_id:str}/what-if", status_code=200, opt=OFFICER,
          responses=errors(400, 401, 403, 404, 413, 503),
          operation_class=operation(path_ids=("client_id",), body="WhatIf"))  # fmt: skip
    async def client_what_if(self, svc: Service, request: Request, client_id: str, body: bytes) -> s.WhatIf:
        """Score a known client after changing raw application values (e.g. {"application": {"AMT_CREDIT":
        450000}}). The application features are recomputed with the ingest's SQL, so ratios and other derived
        features follow; the other sources keep their stored values. `changed_features` lists every feature
        that moved. Logged before the answer, like every score."""
        t0 = time.perf_counter()
        user = user_of(request)
        cid = parse_id(client_id)
        req = decode(body, s.WhatIfRequest)
        pair = svc.require_pair()
        model = pair.champion
        before, x = await asyncio.to_thread(inputs.what_if, svc, cid, req.application)
        p = finite(model.predict_row(x))
        d = model.decide(p)
        xb = x.astype("<f4").tobytes()
        entry = svc.row(
            role_of(request), "POST /clients/{id}/what-if", t0, cid, xb, p, d, pair, shadow_row(pair, x), user=user
        )
        await svc.write_log([entry])
        moved = np.flatnonzero(~((before == x) | (np.isnan(before) & np.isnan(x))))
        changed = {
            svc.feature_names[i]: s.FeatureChange(before=display_value(before[i]), after=display_value(x[i]))
            for i in moved
        }
        return client_score(s.WhatIf, entry, x, model.threshold, changed_features=changed)

    @post("/score", status_code=200, opt=OFFICER, responses=errors(400, 401, 403, 413, 503),
          operation_class=operation(body="Applicant"))  # fmt: skip
    async def score_applicant(self, svc: Service, request: Request, body: bytes) -> s.Score:
        """Score an applicant from raw features. Unknown names, non-numbers and NaN/Infinity literals are 400;
        absent or null features are missing (NaN) and reported in `missing` and `completeness`. Logged before
        the answer (503 if the log cannot be written)."""
        t0 = time.perf_counter()
        req = decode(body, s.ScoreRequest)
        pair = svc.require_pair()
        model = pair.champion
        x, missing = svc.vector(req.features)
        p = finite(model.predict_row(x))
        d = model.decide(p)
        xb = x.astype("<f4").tobytes()
        entry = svc.row(
            role_of(request), "POST /score", t0, None, xb, p, d, pair, shadow_row(pair, x), user=user_of(request)
        )
        await svc.write_log([entry])
        return s.Score(
            probability=p,
            decision=d,
            threshold=model.threshold,
            model_id=model.model_id,
            missing=missing,
            completeness=feature_completeness(x),
            request_id=entry.request_id,
        )

    @post("/score/batch", status_code=200, opt=OFFICER, responses=errors(400, 401, 403, 404, 413, 503),
          operation_class=operation(body="Batch"))  # fmt: skip
    async def score_batch(self, svc: Service, request: Request, body: bytes) -> s.BatchScore:
        """Score up to CREDIT_BATCH_MAX known clients or applicants in one request. Every item is logged in one
        transaction before the answer. Unknown client ids: 404 naming them, nothing scored."""
        t0 = time.perf_counter()
        user = user_of(request)
        req = decode(body, s.BatchRequest)
        pair = svc.require_pair()
        model = pair.champion
        batch_max = svc.settings.batch_max
        ids, applicants = req.client_ids, req.applicants
        given = [k for k, v in (("client_ids", ids), ("applicants", applicants)) if v is not msgspec.UNSET]
        if len(given) != 1:
            raise ApiError(400, "give exactly one of client_ids or applicants", {"given": given})
        items = ids if ids is not msgspec.UNSET else applicants
        if len(items) > batch_max:
            raise ApiError(400, f"batch too large: {len(items)} items, at most {batch_max}", {"max": batch_max})
        if not items:
            raise ApiError(400, "empty batch")
        results: list[s.BatchItem] = []
        rows: list[predlog.LogRow] = []
        if ids is not msgspec.UNSET:
            found: dict[int, tuple[float, float | None, bytes]] = {}
            shadow = "challenger_score_features(x)" if pair.challenger else "NULL"
            for cid, p, cp, x in svc.score_query(
                f"SELECT client_id, score_features(x), {shadow}, x FROM features"
                " WHERE client_id IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted(set(ids))),),
                pair,
            ):
                found[cid] = (p, cp, x)
            unknown = [cid for cid in dict.fromkeys(ids) if cid not in found]
            if unknown:
                raise ApiError(404, "unknown client ids", {"client_ids": unknown[:100], "count": len(unknown)})
            for cid in ids:
                p, cp, xb = found[cid]
                p = finite(p)
                d = model.decide(p)
                x = np.frombuffer(xb, dtype="<f4")
                missing = [svc.feature_names[i] for i in np.flatnonzero(np.isnan(x))]
                cp = shadow_value(cp)
                entry = svc.row(
                    role_of(request), "POST /score/batch", t0, cid, xb, p, d, pair, cp, stored=True, user=user
                )
                rows.append(entry)
                results.append(s.BatchItem(cid, p, d, feature_completeness(x), missing, entry.request_id))
        else:
            vecs = [svc.vector(a.features, where=f"applicants[{i}]") for i, a in enumerate(applicants)]
            X = np.ascontiguousarray(np.stack([v[0] for v in vecs]), dtype=np.float32)
            probs = model.predict(X)
            for (x, missing), p, cp in zip(vecs, probs, shadow_batch(pair, X), strict=True):
                p = finite(p)
                d = model.decide(p)
                xb = x.astype("<f4").tobytes()
                entry = svc.row(role_of(request), "POST /score/batch", t0, None, xb, p, d, pair, cp, user=user)
                rows.append(entry)
                results.append(s.BatchItem(None, p, d, feature_completeness(x), missing, entry.request_id))
        await svc.write_log(rows)
        return s.BatchScore(results=results, threshold=model.threshold, model_id=model.model_id)
