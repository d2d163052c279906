"""What a request brings to be scored, turned into the model's vector: an applicant's raw features (`vector`),
or a known client's stored features with some application values changed (`what_if`, `application`).

Every function answers bad input with ApiError (400 / 404) and a stored vector the model cannot read with
`features_mismatch` (503), the one wording of that refusal."""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from app.data.finite import FLOAT32_MAX
from app.service.http import ApiError
from app.vectors import read_vector


class Service(Protocol):
    """What these functions read of app.service.state.Service: the model's feature names and this thread's
    plain connection to the data file."""

    feature_names: list[str]

    def conn(self, model: bool = True, pair: Any = None) -> Any: ...


FEATURES_MISMATCH = "cannot score: the stored features do not match the model"


def features_mismatch(detail: Any) -> ApiError:
    """The 503 of a stored feature vector that is not the model's (wrong length, unreadable by its SQL)."""
    return ApiError(503, FEATURES_MISMATCH, detail)


def vector(
    feature_names: list[str], index: dict[str, int], features: dict[str, Any], where: str = "features"
) -> tuple[np.ndarray, list[str]]:
    """Strictly validated float32 vector from {name: number|null}; returns (x, missing names).
    `index`: each feature name's position in `feature_names`."""
    unknown = sorted(k for k in features if k not in index)
    if unknown:
        raise ApiError(400, f"unknown feature names in {where}", {"unknown_features": unknown[:50]})
    x = np.full(len(feature_names), np.nan, dtype=np.float32)
    for name, value in features.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ApiError(
                400,
                f"feature {name!r} must be a number or null",
                {"feature": name, "got": type(value).__name__},
            )
        try:
            v = float(value)
        except OverflowError:
            v = math.inf
        if not math.isfinite(v) or abs(v) > FLOAT32_MAX:
            raise ApiError(400, f"feature {name!r} is out of range (finite float32)", {"feature": name})
        x[index[name]] = v
    missing = [feature_names[i] for i in np.flatnonzero(np.isnan(x))]
    return x, missing


def application(svc: Service, client_id: int) -> dict[str, Any]:
    """The client's raw application columns (404 for an unknown client or a database without them)."""
    from app.data.whatif import application_columns, application_row

    conn = svc.conn(model=False)
    cols = application_columns(conn)
    if cols is None:
        raise ApiError(404, "this database has no Home Credit application tables")
    row = application_row(conn, client_id, cols)
    if row is None:
        raise ApiError(404, "unknown client", {"client_id": client_id})
    return row


def what_if(svc: Service, client_id: int, changes: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(stored x, x with the application features recomputed after `changes`); 400/404 as ApiError."""
    from app.data.whatif import WhatIfError
    from app.data.whatif import what_if as recompute

    conn = svc.conn(model=False)
    x = read_vector(conn, client_id)
    if x is None:
        raise ApiError(404, "unknown client", {"client_id": client_id})
    if x.size != len(svc.feature_names):
        raise features_mismatch({"client_id": client_id})
    try:
        result = recompute(conn, client_id, changes, svc.feature_names, x)
    except WhatIfError as exc:
        raise ApiError(400, str(exc), exc.detail) from None
    except LookupError as exc:
        raise ApiError(404, str(exc)) from None
    if result is None:
        raise ApiError(404, "unknown client", {"client_id": client_id})
    return x, result[0]
