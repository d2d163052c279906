"""Scoring (officer): a known client (the hot path), a what-if on a known client, an applicant, a batch.

Every score answered is a committed prediction_log row: the handlers await `svc.write_log` before returning
(503 "prediction log unavailable" if the rows cannot be committed).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TypeVar

import msgspec
import numpy as np
from litestar import Controller, Request, get, post

from app.service import schemas as s
from app.service.http import OFFICER, SECURITY, ApiError, decode, errors, finite, json_value, operation, parse_id
from app.service.state import Service, feature_completeness
from app.store import predlog

K = TypeVar("K", bound=s.ClientScore)


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
        cid = parse_id(client_id)
        model = svc.require_model()
        rows = svc.score_query("SELECT client_id, score_features(x), x FROM features WHERE client_id = ?", (cid,))
        if not rows:
            raise ApiError(404, "unknown client", {"client_id": cid})
        row = rows[0][1:]
        p = finite(row[0])
        d = model.decide(p)
        entry = svc.row(request, "GET /clients/{id}/score", t0, cid, row[1], p, d, model, stored=True)
        await svc.write_log([entry])
        return client_score(s.ClientScore, entry, np.frombuffer(row[1], dtype="<f4"), model.threshold)

    @post("/clients/{client_id:str}/what-if", status_code=200, opt=OFFICER,
          responses=errors(400, 401, 403, 404, 413, 503),
          operation_class=operation(path_ids=("client_id",), body="WhatIf"))  # fmt: skip
    async def client_what_if(self, svc: Service, request: Request, client_id: str, body: bytes) -> s.WhatIf:
        """Score a known client after changing raw application values (e.g. {"application": {"AMT_CREDIT":
        450000}}). The application features are recomputed with the ingest's SQL, so ratios and other derived
        features follow; the other sources keep their stored values. `changed_features` lists every feature
        that moved. Logged before the answer, like every score."""
        t0 = time.perf_counter()
        cid = parse_id(client_id)
        req = decode(body, s.WhatIfRequest)
        model = svc.require_model()
        before, x = await asyncio.to_thread(svc.what_if, cid, req.application)
        p = finite(model.predict_row(x))
        d = svc.decide(p)
        entry = svc.row(request, "POST /clients/{id}/what-if", t0, cid, x.astype("<f4").tobytes(), p, d)
        await svc.write_log([entry])
        moved = np.flatnonzero(~((before == x) | (np.isnan(before) & np.isnan(x))))
        changed = {
            svc.feature_names[i]: s.FeatureChange(before=json_value(float(before[i])), after=json_value(float(x[i])))
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
        model = svc.require_model()
        x, missing = svc.vector(req.features)
        p = finite(model.predict_row(x))
        d = svc.decide(p)
        entry = svc.row(request, "POST /score", t0, None, x.astype("<f4").tobytes(), p, d)
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
        req = decode(body, s.BatchRequest)
        model = svc.require_model()
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
            found: dict[int, tuple[float, bytes]] = {}
            for cid, p, x in svc.score_query(
                "SELECT client_id, score_features(x), x FROM features"
                " WHERE client_id IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted(set(ids))),),
            ):
                found[cid] = (p, x)
            unknown = [cid for cid in dict.fromkeys(ids) if cid not in found]
            if unknown:
                raise ApiError(404, "unknown client ids", {"client_ids": unknown[:100], "count": len(unknown)})
            for cid in ids:
                p, xb = found[cid]
                p = finite(p)
                d = svc.decide(p)
                x = np.frombuffer(xb, dtype="<f4")
                missing = [svc.feature_names[i] for i in np.flatnonzero(np.isnan(x))]
                entry = svc.row(request, "POST /score/batch", t0, cid, xb, p, d, model, stored=True)
                rows.append(entry)
                results.append(s.BatchItem(cid, p, d, feature_completeness(x), missing, entry.request_id))
        else:
            vecs = [svc.vector(a.features, where=f"applicants[{i}]") for i, a in enumerate(applicants)]
            X = np.ascontiguousarray(np.stack([v[0] for v in vecs]), dtype=np.float32)
            probs = model.predict(X)
            for (x, missing), p in zip(vecs, probs, strict=True):
                p = finite(p)
                d = svc.decide(p)
                entry = svc.row(request, "POST /score/batch", t0, None, x.astype("<f4").tobytes(), p, d)
                rows.append(entry)
                results.append(s.BatchItem(None, p, d, feature_completeness(x), missing, entry.request_id))
        await svc.write_log(rows)
        return s.BatchScore(results=results, threshold=model.threshold, model_id=model.model_id)
