"""Replay scoring traffic against the running API, optionally with a simulated data drift.

`credit traffic --n N` picks N random clients (with replacement when N exceeds the number of
clients) from the `features` table of --db and scores them:

* by id (the default without --drift): GET /clients/{id}/score, so the log knows the client and the
  governance loop closes: `credit outcomes simulate` finds an outcome for each scored client, then
  `credit performance`, `credit fairness` and a challenger's comparison have figures;
* as applicants (--applicants, and always with --drift): POST /score {"features": {name: value|null}}
  with each one's feature vector, so what the API logs is exactly what was sent (no client id).

--drift changes the vectors before they are sent (feature names that are absent are ignored;
`drifted_features(kind, names)` lists what a given model's features get):

* income     AMT_INCOME_TOTAL x2, and every income-derived feature recomputed:
             ratios with income in the denominator (CREDIT_INCOME_RATIO, ANNUITY_INCOME_RATIO,
             <X>_INCOME_PERC / <X>_TO_INCOME...) are halved; features with income in the numerator
             (INCOME_CREDIT_RATIO, INCOME_ANNUITY_RATIO, INCOME_PER_PERSON, INCOME_PER_CHILD,
             INCOME_<X>_RATIO...) are doubled.
* ext-source EXT_SOURCE_2 x0.5, and the derived EXT_SOURCE_MEAN/_MIN/_MAX/_SUM/_STD/_PROD recomputed
             from EXT_SOURCE_1..3 when all three are features (nan-aware, like the feature SQL);
             otherwise MEAN/SUM/PROD are adjusted arithmetically and MIN/MAX/STD left unchanged.
* age        DAYS_BIRTH +3652 (ten years younger); AGE_YEARS / AGE / YEARS_BIRTH -10; ratios over
             DAYS_BIRTH (<X>_BIRTH_RATIO such as EMPLOYED_BIRTH_RATIO, PHONE_CHANGE_BIRTH_RATIO,
             DAYS_EMPLOYED_PERC) rescaled by old/new DAYS_BIRTH, ratios over the age in years
             (<X>_AGE_RATIO such as CAR_AGE_AGE_RATIO) by old/new age: exactly the recomputed value.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np

from app.errors import CreditError
from app.scoring.db import connect
from app.vectors import read_vector

DRIFTS = ("income", "ext-source", "age")
EXT = ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3")
_EXT_DERIVED = re.compile(r"^EXT_SOURCES?_(MEAN|MIN|MAX|SUM|STD|PROD|PRODUCT|AVG)$")
# X_INCOME_RATIO, X_TO_INCOME, X_INCOME_PERC, X_INCOME_PER_PERSON_RATIO: income in the denominator
_INCOME_DENOMINATOR = re.compile(r"^(?!INCOME)[A-Z0-9_]+_(TO_)?INCOME(_PER_[A-Z]+)?(_RATIO|_PERC|_PCT|_SHARE)?$")
# INCOME_PER_PERSON, INCOME_CREDIT_RATIO: income in the numerator
_INCOME_NUMERATOR = re.compile(r"^INCOME_(PER_[A-Z0-9_]+|[A-Z0-9_]+_(RATIO|PERC))$")
_AGE_YEARS = {"AGE_YEARS", "AGE", "YEARS_BIRTH", "AGE_YEAR"}
# X / DAYS_BIRTH (EMPLOYED_BIRTH_RATIO, PHONE_CHANGE_BIRTH_RATIO, DAYS_EMPLOYED_PERC...) and X / age in years
_PER_BIRTH = re.compile(r"^([A-Z0-9_]+_BIRTH_(RATIO|PERC)|DAYS_EMPLOYED_PERC)$")
_PER_AGE = re.compile(r"^[A-Z0-9_]+_AGE_(RATIO|PERC)$")


class TrafficError(CreditError, RuntimeError):
    pass


def drifted_features(kind: str, names: list[str]) -> dict[str, str]:
    """{feature: what happens to it} for a drift kind, given a model's feature names."""
    if kind not in DRIFTS:
        raise TrafficError(f"unknown drift {kind!r}: choose one of {', '.join(DRIFTS)}")
    upper = {n: n.upper() for n in names}
    if kind == "income":
        return _income_features(names, upper)
    if kind == "ext-source":
        return _ext_source_features(names, upper)
    return _age_features(names, upper)


def _income_features(names: list[str], upper: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for n in names:
        u = upper[n]
        if u == "AMT_INCOME_TOTAL":
            out[n] = "x2"
        elif _INCOME_NUMERATOR.match(u):
            out[n] = "x2 (income in the numerator)"
        elif _INCOME_DENOMINATOR.match(u) and u != "AMT_INCOME_TOTAL" and not u.startswith("NAME_"):
            out[n] = "/2 (income in the denominator)"
    return out


def _ext_source_features(names: list[str], upper: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    if "EXT_SOURCE_2" in set(names):
        out["EXT_SOURCE_2"] = "x0.5"
        for n in names:
            if _EXT_DERIVED.match(upper[n]):
                out[n] = "recomputed from EXT_SOURCE_1..3"
    return out


def _age_features(names: list[str], upper: dict[str, str]) -> dict[str, str]:
    present = set(names)
    out: dict[str, str] = {}
    if "DAYS_BIRTH" in present:
        out["DAYS_BIRTH"] = "+3652 days (10 years younger)"
    for n in names:
        if upper[n] in _AGE_YEARS:
            out[n] = "-10 years"
        elif _PER_BIRTH.match(upper[n]) and "DAYS_BIRTH" in present:
            out[n] = "x old/new DAYS_BIRTH (ratio over DAYS_BIRTH)"
        elif _PER_AGE.match(upper[n]) and "DAYS_BIRTH" in present:
            out[n] = "x old/new age (ratio over the age)"
    return out


def apply_drift(kind: str | None, X: np.ndarray, names: list[str]) -> np.ndarray:
    """A drifted copy of X (float32 [n, p] in `names` order); X itself is not modified."""
    X = np.array(X, dtype=np.float32, copy=True)
    if kind is None:
        return X
    plan = drifted_features(kind, names)
    ix = {n: i for i, n in enumerate(names)}
    Y = X.astype(np.float64)
    if kind == "income":
        for n, what in plan.items():
            Y[:, ix[n]] *= 0.5 if what.startswith("/2") else 2.0
    elif kind == "ext-source" and "EXT_SOURCE_2" in plan:
        _ext_source_drift(Y, plan, ix)
    elif kind == "age" and "DAYS_BIRTH" in plan:
        _age_drift(Y, plan, ix)
    return Y.astype(np.float32)


# the SQL's aggregates of EXT_SOURCE_1..3, by the feature name's last word
_EXT_AGGREGATES = {
    "MEAN": lambda s: np.nanmean(s, 1),
    "AVG": lambda s: np.nanmean(s, 1),
    "MIN": lambda s: np.nanmin(s, 1),
    "MAX": lambda s: np.nanmax(s, 1),
    "SUM": lambda s: np.nansum(s, 1),
    "STD": lambda s: np.nanstd(s, 1),
    "PROD": lambda s: np.prod(s, 1),
    "PRODUCT": lambda s: np.prod(s, 1),
}


def _ext_source_drift(Y: np.ndarray, plan: dict[str, str], ix: dict[str, int]) -> None:
    """EXT_SOURCE_2 halved in Y (float64, in place), its aggregates recomputed (or adjusted when a source is
    missing from the features)."""
    old2 = Y[:, ix["EXT_SOURCE_2"]].copy()
    Y[:, ix["EXT_SOURCE_2"]] = old2 * 0.5
    all_three = all(e in ix for e in EXT)
    with np.errstate(all="ignore"), _quiet():
        S = Y[:, [ix[e] for e in EXT]] if all_three else None
        for n in plan:
            if n == "EXT_SOURCE_2":
                continue
            agg = n.upper().rsplit("_", 1)[1]
            j = ix[n]
            if S is not None:
                new = _EXT_AGGREGATES[agg](S)
                if agg in ("PROD", "PRODUCT", "SUM"):
                    new = np.where(np.isnan(Y[:, j]), np.nan, new)  # keep the SQL's own NULL rule
                Y[:, j] = new
            else:
                _adjust_linear_aggregate(Y, j, agg, old2, ix)


def _adjust_linear_aggregate(Y: np.ndarray, j: int, agg: str, old2: np.ndarray, ix: dict[str, int]) -> None:
    """Without the other sources, only the linear aggregates can be adjusted for the halved EXT_SOURCE_2."""
    has2 = ~np.isnan(old2)
    if agg in ("PROD", "PRODUCT"):
        Y[has2, j] *= 0.5
    elif agg == "SUM":
        Y[has2, j] -= 0.5 * old2[has2]
    elif agg in ("MEAN", "AVG"):
        k = sum((~np.isnan(Y[:, ix[e]])).astype(int) for e in EXT if e in ix)
        k = np.maximum(k, 1)
        Y[has2, j] -= 0.5 * old2[has2] / k[has2]


def _age_drift(Y: np.ndarray, plan: dict[str, str], ix: dict[str, int]) -> None:
    """Every client ten years younger in Y (float64, in place): DAYS_BIRTH, the ages and the ratios over them."""
    old = Y[:, ix["DAYS_BIRTH"]].copy()
    new = old + 3652
    with np.errstate(all="ignore"):
        for n, what in plan.items():
            j = ix[n]
            if n == "DAYS_BIRTH":
                Y[:, j] = new
            elif what.startswith("-10"):
                Y[:, j] -= 10
            elif "old/new DAYS_BIRTH" in what:
                Y[:, j] *= old / new
            elif "old/new age" in what:
                Y[:, j] *= (-old / 365.25) / (-new / 365.25)


class _quiet:
    """Silence numpy's 'All-NaN slice' / 'Mean of empty slice' warnings inside a block."""

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


def payload(x: np.ndarray, names: list[str]) -> dict:
    return {"features": {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, x.tolist(), strict=True)}}


def load_clients(conn, n: int, seed: int | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """n random clients' (ids, X float32[n, p], names) from the features table (with replacement if needed)."""
    names = [r[0] for r in conn.execute("SELECT name FROM feature_names ORDER BY idx")]
    if not names:
        raise TrafficError("the database has no feature_names (run `credit ingest` first)")
    ids = np.array([r[0] for r in conn.execute("SELECT client_id FROM features")], dtype=np.int64)
    if not len(ids):
        raise TrafficError("the database has no clients in `features`")
    rng = np.random.default_rng(seed)
    pick = rng.choice(ids, size=n, replace=n > len(ids))
    X = np.empty((n, len(names)), dtype=np.float32)
    for i, cid in enumerate(pick.tolist()):
        X[i] = read_vector(conn, cid)
    return pick, X, names


async def _replay(api: str, key: str | None, bodies: list, concurrency: int, timeout: float) -> dict:
    """Send each body: bytes -> POST /score (an applicant), int -> GET /clients/{id}/score (a stored client)."""
    import httpx

    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    latencies: list[float] = []
    statuses: Counter = Counter()
    decisions: Counter = Counter()
    errors: Counter = Counter()
    queue: asyncio.Queue = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=api, headers=headers, limits=limits, timeout=timeout) as client:

        async def worker() -> None:
            while True:
                try:
                    body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t = time.perf_counter()
                try:
                    if isinstance(body, bytes):
                        r = await client.post("/score", content=body)
                    else:
                        r = await client.get(f"/clients/{body}/score")
                except httpx.HTTPError as e:
                    errors[type(e).__name__] += 1
                    continue
                latencies.append(time.perf_counter() - t)
                statuses[r.status_code] += 1
                if r.status_code == 200:
                    try:
                        decisions[r.json().get("decision", "?")] += 1
                    except ValueError:
                        errors["bad JSON"] += 1
                else:
                    try:
                        errors[f"{r.status_code} {r.json().get('error', '')}".strip()] += 1
                    except ValueError:
                        errors[f"{r.status_code}"] += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
        elapsed = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    pct = {f"p{q}": float(np.percentile(lat, q)) for q in (50, 90, 99)} if len(lat) else {}
    if len(lat):
        pct["max"] = float(lat.max())
    return {
        "sent": len(bodies),
        "ok": statuses.get(200, 0),
        "status": {str(k): v for k, v in sorted(statuses.items())},
        "errors": dict(errors),
        "decisions": dict(decisions),
        "latency_ms": pct,
        "seconds": elapsed,
        "per_second": len(latencies) / elapsed if elapsed > 0 else 0.0,
    }


def run_traffic(
    db_path,
    api: str,
    *,
    n: int,
    drift: str | None = None,
    key: str | None = None,
    concurrency: int = 8,
    seed: int | None = None,
    timeout: float = 10.0,
    by_id: bool | None = None,
) -> dict:
    """Send n scoring requests; returns counts, errors, decisions and latency percentiles.

    by_id: score stored clients by id (GET /clients/{id}/score); None: by id unless a drift is asked for
    (a drift changes the vectors, so those are sent as applicants)."""
    if by_id is None:
        by_id = drift is None
    if by_id and drift:
        raise TrafficError("--drift changes the vectors sent: it needs --applicants (not --by-id)")

    db_path = Path(db_path)
    if not db_path.exists():
        raise TrafficError(
            f"{db_path}: database not found; `credit traffic` draws the applicants it sends from a local copy of "
            "the client database: pass --db PATH (or set CREDIT_DB)"
        )
    conn = connect(db_path, readonly=True)
    try:
        ids, X, names = load_clients(conn, n, seed)
    finally:
        conn.close()
    plan = drifted_features(drift, names) if drift else {}
    if by_id:
        bodies: list = ids.tolist()
    else:
        X = apply_drift(drift, X, names)
        bodies = [json.dumps(payload(x, names)).encode() for x in X]
    result = asyncio.run(_replay(api.rstrip("/"), key, bodies, concurrency, timeout))
    result.update({"api": api, "drift": drift, "drifted_features": plan, "mode": "by id" if by_id else "applicants"})
    return result
