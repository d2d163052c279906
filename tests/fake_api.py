"""A tiny stand-in for the credit API (docs/contracts.md "HTTP API" shapes), for dashboard tests.

A logistic model over 8 features of 300 synthetic clients; the explanation is exact (linear SHAP).
Keys: 'admin-key' (admin), 'officer-key' (officer). Run: python tests/fake_api.py --port 8765
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException

FEATURES = [
    "EXT_SOURCE_1",
    "EXT_SOURCE_2",
    "EXT_SOURCE_3",
    "AMT_CREDIT",
    "AMT_INCOME_TOTAL",
    "AMT_ANNUITY",
    "DAYS_BIRTH",
    "DAYS_EMPLOYED",
]
WEIGHTS = np.array([-0.9, -1.1, -1.0, 0.4, -0.2, 0.3, 0.35, 0.25])
BIAS = -1.6
THRESHOLD = 0.32
MODEL_ID = "f" * 12 + "0123456789abcdef" * 3 + "0123"
KEYS = {"admin-key": "admin", "officer-key": "officer"}

_rng = np.random.default_rng(3)
N = 300
IDS = np.arange(100001, 100001 + N)
X = np.column_stack(
    [
        _rng.uniform(0, 1, N),
        _rng.uniform(0, 0.9, N),
        _rng.uniform(0, 0.9, N),
        _rng.lognormal(13, 0.5, N).round(0),
        _rng.lognormal(12, 0.4, N).round(0),
        _rng.lognormal(10, 0.4, N).round(0),
        -_rng.integers(20 * 365, 65 * 365, N).astype(float),
        -_rng.integers(0, 30 * 365, N).astype(float),
    ]
)
X[::17, 0] = np.nan  # some missing EXT_SOURCE_1
MEAN = np.nanmean(X, axis=0)
STD = np.nanstd(X, axis=0)


def margin_parts(x: np.ndarray) -> np.ndarray:
    z = np.nan_to_num((x - MEAN) / STD, nan=0.0)
    return WEIGHTS * z


def predict(x: np.ndarray) -> float:
    return 1.0 / (1.0 + math.exp(-(BIAS + float(margin_parts(x).sum()))))


def _row(client_id: int) -> np.ndarray:
    idx = np.flatnonzero(client_id == IDS)
    if idx.size == 0:
        raise HTTPException(status_code=404, detail=f"client {client_id} not found")
    return X[idx[0]]


def _decision(p: float) -> str:
    return "refuse" if p >= THRESHOLD else "accept"


def _role(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    role = KEYS.get(auth.removeprefix("Bearer ").strip())
    if role is None:
        raise HTTPException(status_code=401, detail="missing or unknown API key")
    return role


# every request seen: (path, bearer key, start, end) in perf_counter seconds; DELAY_S slows every answer
CALLS: list[tuple[str, str, float, float]] = []
DELAY = {"s": 0.0}


def _record(app):
    import asyncio
    import time

    async def middleware(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        t0 = time.perf_counter()
        if DELAY["s"]:
            await asyncio.sleep(DELAY["s"])
        await app(scope, receive, send)
        key = dict(scope["headers"]).get(b"authorization", b"").decode().removeprefix("Bearer ")
        CALLS.append((scope["path"], key, t0, time.perf_counter()))

    return middleware


def _vals(x: np.ndarray) -> dict[str, float | None]:
    return {f: (None if math.isnan(v) else float(v)) for f, v in zip(FEATURES, x, strict=True)}


@get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@get("/clients")
async def suggest(request: Request, prefix: str = "", limit: int = 10) -> dict:
    _role(request)
    return {"client_ids": [int(i) for i in IDS if str(i).startswith(prefix)][:limit]}


@get("/clients/{client_id:int}")
async def client(request: Request, client_id: int) -> dict:
    _role(request)
    x = _row(client_id)
    return {
        "client_id": client_id,
        "fields": {
            "gender": "F" if client_id % 2 else "M",
            "age_years": round(-x[6] / 365, 1),
            "income": x[4],
            "credit": x[3],
            "annuity": x[5],
            "contract_type": "Cash loans",
            "ext_source_1": None if math.isnan(x[0]) else x[0],
        },
    }


@get("/clients/{client_id:int}/score")
async def score(request: Request, client_id: int) -> dict:
    _role(request)
    p = predict(_row(client_id))
    return {
        "client_id": client_id,
        "probability": p,
        "decision": _decision(p),
        "threshold": THRESHOLD,
        "model_id": MODEL_ID,
        "completeness": 1.0,
    }


@get("/clients/{client_id:int}/features")
async def features(request: Request, client_id: int) -> dict:
    _role(request)
    return {"features": _vals(_row(client_id))}


@post("/score", status_code=200)
async def score_post(request: Request, data: dict) -> dict:
    _role(request)
    feats = data.get("features", {})
    x = np.array([np.nan if feats.get(f) is None else float(feats[f]) for f in FEATURES])
    p = predict(x)
    missing = [f for f in FEATURES if feats.get(f) is None]
    return {
        "probability": p,
        "decision": _decision(p),
        "threshold": THRESHOLD,
        "model_id": MODEL_ID,
        "missing": missing,
        "completeness": 1 - len(missing) / len(FEATURES),
    }


@get("/clients/{client_id:int}/explain")
async def explain(request: Request, client_id: int, top: int = 4, lang: str = "fr") -> dict:
    _role(request)
    x = _row(client_id)
    parts = margin_parts(x)
    order = np.argsort(-np.abs(parts))[:top]
    contributions = [
        {"feature": FEATURES[i], "value": None if math.isnan(x[i]) else float(x[i]), "shap": float(parts[i])}
        for i in order
    ]
    word = {"fr": ("augmente", "diminue"), "en": ("increases", "decreases")}.get(lang, ("increases", "decreases"))
    reasons = [
        {"feature": c["feature"], "sentence": f"{c['feature']} {word[0] if c['shap'] > 0 else word[1]} risk"}
        for c in contributions
    ]
    margin = BIAS + float(parts.sum())
    return {
        "base_value": BIAS,
        "margin": margin,
        "probability": 1 / (1 + math.exp(-margin)),
        "contributions": contributions,
        "reasons": reasons,
    }


@get("/model")
async def model(request: Request) -> dict:
    _role(request)
    importance = sorted(zip(FEATURES, np.abs(WEIGHTS).tolist(), strict=True), key=lambda r: -r[1])
    return {
        "model_id": MODEL_ID,
        "app_version": "0.1.0",
        "features": FEATURES,
        "n_features": len(FEATURES),
        "threshold": THRESHOLD,
        "costs": {"fn": 10.0, "fp": 1.0},
        "metrics": {"auc": 0.7612, "business_cost": 0.4821, "cv": {"auc_mean": 0.755, "auc_std": 0.012}},
        "trained_at": "2026-11-25T16:00:00Z",
        "global_importance": [list(r) for r in importance],
    }


@get("/monitoring/summary")
async def summary(request: Request) -> dict:
    if _role(request) != "admin":
        raise HTTPException(status_code=403, detail="admin role required")
    hours = [1764072000 + 3600 * h for h in range(6)]
    return {
        "count": 1234,
        "latency_ms": {"p50": 1.2, "p99": 4.8},
        "hourly": [
            {"hour": h, "count": 200 + 5 * i, "mean_probability": 0.2 + 0.01 * i, "histogram": [50, 60, 40, 30, 20 + i]}
            for i, h in enumerate(hours)
        ],
        "edges": [0, 0.2, 0.4, 0.6, 0.8, 1.0],
    }


@get("/monitoring/drift")
async def drift(request: Request) -> dict:
    if _role(request) != "admin":
        raise HTTPException(status_code=403, detail="admin role required")
    return {
        "window": {"rows": 5000, "first_ts": "2026-12-07T10:00:05+00:00", "last_ts": "2026-12-07T10:12:40+00:00"},
        "verdict": {"level": "act", "reasons": ["EXT_SOURCE_2 (importance rank 6, 2% of the model): PSI 3.92 > 0.25"]},
        "reference": {"rows": 2580},
        "psi_threshold": 0.2,
        "dataset_drift": False,
        "features": [
            {"feature": f, "psi": 0.05 * (i + 1), "drifted": 0.05 * (i + 1) > 0.2} for i, f in enumerate(FEATURES)
        ],
    }


@get("/population")
async def population(request: Request, features: str = "", limit: int = 2000) -> dict:
    _role(request)
    names = [f for f in features.split(",") if f]
    unknown = [f for f in names if f not in FEATURES]
    if unknown:
        raise HTTPException(status_code=400, detail=f"unknown features {unknown}")
    idx = [FEATURES.index(f) for f in names]
    rows = []
    for cid, x in list(zip(IDS, X, strict=True))[:limit]:
        p = predict(x)
        rows.append(
            {
                "client_id": int(cid),
                "decision": _decision(p),
                "values": {f: (None if math.isnan(x[j]) else float(x[j])) for f, j in zip(names, idx, strict=True)},
            }
        )
    return {"features": names, "rows": rows}


@get("/monitoring/performance")
async def performance(request: Request, period: str = "day") -> dict:
    if _role(request) != "admin":
        raise HTTPException(status_code=403, detail="risk role required")
    band = {"band": [0.1, 0.2], "n": 80, "mean_predicted": 0.15, "observed_default_rate": 0.175}
    overall = {"outcomes": 120, "defaults": 18, "too_few_outcomes": False, "auc": 0.7312, "cost_per_client": 0.61,
               "accept_all_cost_per_client": 1.5, "calibration": [band]}  # fmt: skip
    return {"matched": 120, "min_outcomes": 100, "never_scored": {"count": 3, "client_ids": [1, 2, 3]},
            "overall": overall, "models": []}  # fmt: skip


@get("/monitoring/fairness")
async def fairness(request: Request) -> dict:
    if _role(request) != "admin":
        raise HTTPException(status_code=403, detail="risk role required")
    groups = [
        {"group": "F", "clients": 200, "approval_rate": 0.8, "approval_ratio": 1.0, "tpr": 0.5, "fpr": 0.1,
         "flagged": False},
        {"group": "M", "clients": 100, "approval_rate": 0.6, "approval_ratio": 0.75, "tpr": 0.6, "fpr": 0.2,
         "flagged": True},
    ]  # fmt: skip
    return {"ratio_floor": 0.8, "clients": 300, "attributes": {"gender": {"groups": groups}}}


@get("/model/card", media_type="text/markdown")
async def model_card(request: Request) -> str:
    _role(request)
    return f"# Model card: {MODEL_ID[:12]}\n\n- Model id: `{MODEL_ID}`\n"


@get("/portfolio")
async def portfolio(request: Request) -> dict:
    _role(request)
    probs = np.array([predict(x) for x in X])
    band = np.minimum((probs * 10).astype(int), 9)
    refused = int((probs >= THRESHOLD).sum())
    bands = [
        {"band": k, "lower": k / 10, "upper": (k + 1) / 10, "clients": int((band == k).sum()),
         "refused": int(((band == k) & (probs >= THRESHOLD)).sum())}
        for k in range(10) if (band == k).any()
    ]  # fmt: skip
    return {
        "model_id": MODEL_ID, "threshold": THRESHOLD, "clients": N, "accepted": N - refused, "refused": refused,
        "refusal_rate": refused / N, "bands": bands, "scored_at": 1764072000.0, "scoring_seconds": 0.01,
    }  # fmt: skip


@get("/portfolio/recent")
async def recent(request: Request, limit: int = 10) -> dict:
    _role(request)
    rows = [
        {"client_id": int(c), "probability": predict(x), "decision": _decision(predict(x)), "ts": 1764072000.0 - i}
        for i, (c, x) in enumerate(list(zip(IDS, X, strict=True))[:limit])
    ]
    return {"rows": rows, "threshold": THRESHOLD, "model_id": MODEL_ID}


@get("/portfolio/borderline")
async def borderline(request: Request, limit: int = 10) -> dict:
    _role(request)
    probs = np.array([predict(x) for x in X])
    order = np.argsort(np.abs(probs - THRESHOLD), kind="stable")[:limit]
    rows = [{"client_id": int(IDS[i]), "probability": float(probs[i]), "decision": _decision(float(probs[i]))}
            for i in order]  # fmt: skip
    return {"rows": rows, "threshold": THRESHOLD, "model_id": MODEL_ID}


def _error(request: Request, exc: HTTPException) -> Response:
    return Response(
        {"error": exc.detail if exc.status_code >= 500 else "error", "detail": exc.detail}, status_code=exc.status_code
    )


def create_app() -> Litestar:
    return Litestar(
        [
            healthz,
            suggest,
            client,
            score,
            features,
            score_post,
            explain,
            model,
            summary,
            drift,
            population,
            performance,
            fairness,
            model_card,
            portfolio,
            recent,
            borderline,
        ],  # fmt: skip
        exception_handlers={HTTPException: _error},
        middleware=[_record],
    )


app = create_app()

if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
