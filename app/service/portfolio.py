"""The loan officer's worklist, served to the dashboard's landing page (officer role):

  GET /portfolio             counts accepted / refused and clients per probability band (the bands of the
                             `score_bands` view of sql/views.sql: [k/10, (k+1)/10), the last one closed)
  GET /portfolio/recent      the most recently scored clients (prediction log), newest first, one row a client
  GET /portfolio/borderline  the clients whose probability is closest to the threshold, on both sides

Scoring every client is a full scan (about 1 s at 300,000 clients), so the portfolio is scored once and kept
in memory, sorted by probability, until the model, the data (meta.data_fingerprint) or the database file
(inode) changes; the API scores it in the background at start, so calls answer from memory (O(log n)).
The decision is the model's own rule (refuse when probability >= threshold), as in app.scoring.library.
The routes are app.service.routes.portfolio.PortfolioController.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import apsw
import msgspec
import numpy as np
from litestar import Request

from app.scoring.db import read_meta
from app.service.http import ApiError
from app.service.state import Service, warm_explanations

log = logging.getLogger("app.service.api")

N_BANDS = 10
OFFICER = {"role": "officer"}


class Band(msgspec.Struct):
    band: int
    lower: float
    upper: float
    clients: int
    refused: int


class PortfolioSummary(msgspec.Struct):
    model_id: str
    threshold: float
    clients: int
    accepted: int
    refused: int
    refusal_rate: float
    bands: list[Band]
    scored_at: float  # unix seconds when the portfolio was scored
    scoring_seconds: float


class WorklistRow(msgspec.Struct):
    client_id: int
    probability: float
    decision: str
    ts: float | None = None  # when it was scored (recent) or None (borderline: the current model's score)


class Worklist(msgspec.Struct):
    rows: list[WorklistRow]
    threshold: float
    model_id: str


class Snapshot:
    """Every client's probability under one model and one database, sorted by probability."""

    def __init__(self, key: tuple, ids: np.ndarray, probs: np.ndarray, threshold: float, model_id: str, seconds: float):
        order = np.argsort(probs, kind="stable")
        self.key, self.ids, self.probs = key, ids[order], probs[order]
        self.threshold, self.model_id, self.seconds = threshold, model_id, seconds
        self.scored_at = time.time()
        self.first_refused = int(np.searchsorted(self.probs, threshold, side="left"))  # probs >= threshold
        self._summary: PortfolioSummary | None = None

    def summary(self) -> PortfolioSummary:
        if self._summary is None:
            self._summary = self._summarise()
        return self._summary

    def _summarise(self) -> PortfolioSummary:
        n = len(self.probs)
        refused = n - self.first_refused
        band = np.minimum((self.probs * N_BANDS).astype(np.int64), N_BANDS - 1)
        counts = np.bincount(band, minlength=N_BANDS)
        refused_counts = np.bincount(band[self.first_refused :], minlength=N_BANDS)
        bands = [
            Band(k, k / N_BANDS, (k + 1) / N_BANDS, int(counts[k]), int(refused_counts[k]))
            for k in range(N_BANDS)
            if counts[k]
        ]
        return PortfolioSummary(
            model_id=self.model_id,
            threshold=self.threshold,
            clients=n,
            accepted=self.first_refused,
            refused=refused,
            refusal_rate=refused / n if n else 0.0,
            bands=bands,
            scored_at=self.scored_at,
            scoring_seconds=self.seconds,
        )

    def borderline(self, limit: int) -> list[WorklistRow]:
        """The `limit` clients closest to the threshold (merging outwards from it), closest first."""
        lo, hi, out = self.first_refused - 1, self.first_refused, []
        n = len(self.probs)
        while len(out) < limit and (lo >= 0 or hi < n):
            below = self.threshold - self.probs[lo] if lo >= 0 else np.inf
            above = self.probs[hi] - self.threshold if hi < n else np.inf
            i = hi if above <= below else lo
            if i == hi:
                hi += 1
            else:
                lo -= 1
            p = float(self.probs[i])
            out.append(WorklistRow(int(self.ids[i]), p, "refuse" if p >= self.threshold else "accept"))
        return out


class PortfolioCache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.snapshot: Snapshot | None = None

    def get(self, svc: Service) -> Snapshot:
        key = _key(svc)
        snap = self.snapshot
        if snap is not None and snap.key == key:
            return snap
        with self.lock:  # one scan at a time; the others wait for it and use it
            snap = self.snapshot
            if snap is None or snap.key != key:
                snap = self.snapshot = _score_all(svc, key)
        return snap

    def warm(self, svc: Service) -> None:
        """Score the portfolio in a background thread (API start), so the first call answers from memory."""

        def run() -> None:
            try:
                self.get(svc)
            except Exception as exc:  # noqa: BLE001 - a call will report it with the API's error shape
                log.warning("portfolio not scored at start: %s", getattr(exc, "detail", None) or exc)

        threading.Thread(target=run, name="portfolio-warm", daemon=True).start()


def _key(svc: Service) -> tuple:
    model = svc.require_model()
    try:
        st = os.stat(svc.db_path)
        fingerprint = read_meta(svc.conn(model=False)).get("data_fingerprint")
    except (OSError, apsw.Error) as exc:
        raise ApiError(503, "database unavailable", f"{type(exc).__name__}: {exc}") from exc
    return (model.model_id, fingerprint, st.st_dev, st.st_ino)


def _score_all(svc: Service, key: tuple) -> Snapshot:
    model = svc.require_model()
    t0 = time.perf_counter()
    try:
        rows = (
            svc.conn()
            .execute("SELECT client_id, probability FROM client_scores WHERE probability IS NOT NULL")
            .fetchall()
        )
    except apsw.Error as exc:
        raise ApiError(503, "cannot score the portfolio", f"{type(exc).__name__}: {exc}") from exc
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    probs = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
    snap = Snapshot(key, ids, probs, float(model.threshold), model.model_id, time.perf_counter() - t0)
    log.info("portfolio: %d clients scored in %.2f s", len(ids), snap.seconds)
    return snap


def recent_clients(conn: Any, limit: int) -> list[WorklistRow]:
    """The `limit` clients scored most recently (newest first, each once), from the prediction log."""
    out: dict[int, WorklistRow] = {}
    scan = max(100, 20 * limit)
    try:
        for cid, p, d, ts in conn.execute(
            "SELECT client_id, probability, decision, ts FROM prediction_log WHERE client_id IS NOT NULL"
            " ORDER BY id DESC LIMIT ?",
            (scan,),
        ):
            if cid not in out:
                out[cid] = WorklistRow(cid, p, d, ts)
                if len(out) >= limit:
                    break
    except apsw.Error as exc:
        if "no such table" in str(exc):
            return []
        raise ApiError(503, "prediction log unavailable", f"{type(exc).__name__}: {exc}") from exc
    return list(out.values())


def _service(request: Request) -> Service:
    return request.app.state.service


CACHE_ATTR = "portfolio_cache"


def cache_of(svc: Service) -> PortfolioCache:
    cache = getattr(svc, CACHE_ATTR, None)
    if cache is None:
        cache = PortfolioCache()
        setattr(svc, CACHE_ATTR, cache)
    return cache


def warm_up(app: Any) -> None:
    """Litestar on_startup hook: score the portfolio and ready the explainer, in the background."""
    svc = app.state.service
    if svc.model is not None and svc.db_path.is_file():
        cache_of(svc).warm(svc)
    warm_explanations(svc)
