"""Test helper: decisions logged as the API logs them (app.store.predlog rows: the vector scored, probability,
decision, model id), for the decision-letter, review and override tests."""

from __future__ import annotations

import time
from pathlib import Path

import apsw
import numpy as np

from app import store as stores
from app.scoring.bundle import ModelBundle
from app.store import predlog


def vectors(db: Path, client_ids: list[int] | None = None, limit: int = 400) -> dict[int, np.ndarray]:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        if client_ids is None:
            rows = conn.execute("SELECT client_id, x FROM features ORDER BY client_id LIMIT ?", (limit,)).fetchall()
        else:
            rows = [
                conn.execute("SELECT client_id, x FROM features WHERE client_id = ?", (c,)).fetchone()
                for c in client_ids
            ]
    finally:
        conn.close()
    return {int(c): np.frombuffer(x, dtype="<f4").copy() for c, x in rows}


def refused(bundle: ModelBundle, db: Path, n: int, limit: int = 1500) -> list[int]:
    """`n` clients the model refuses, the nearest the threshold first (those a small change may turn round)."""
    vs = vectors(db, limit=limit)
    p = {c: bundle.predict_row(x) for c, x in vs.items()}
    return sorted((c for c in vs if bundle.refuses(p[c])), key=lambda c: (p[c], c))[:n]


def serve(
    log_db: Path, bundle: ModelBundle, db: Path, client_id: int, probability: float | None = None, role: str = "officer"
) -> str:
    """Log one decision of a known client as GET /clients/{id}/score does; `probability` overrides the score
    (what the log says was served). Returns its request id."""
    x = vectors(db, [client_id])[client_id]
    p = float(bundle.predict_row(x)) if probability is None else probability
    row = predlog.LogRow(
        time.time(),
        predlog.new_request_id(),
        client_id,
        x.astype("<f4").tobytes(),
        p,
        bundle.decide(p),
        bundle.model_id,
        1.0,
        role,
        "GET /clients/{id}/score",
    )
    conn = stores.open_store(log_db)
    try:
        predlog.write(conn, [row])
    finally:
        conn.close()
    return row.request_id
