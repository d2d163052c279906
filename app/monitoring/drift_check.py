"""`check`: the one owner of a drift check's steps, shared by `credit drift`, GET /monitoring/drift and the report.

1. the window: since/until/last as given, or the last DEFAULT_LAST requests when none is given;
2. no rows -> DriftError("no predictions logged ..."); fewer than min_rows -> the level "no verdict" and why;
3. the PSI of every feature and of the score (app.monitoring.drift.psi_summary) and the verdict
   (app.monitoring.verdict.judge) on the same rows;
4. the Evidently report on request (slow: seconds per column), beside the verdict, never deciding it.

The result says the window judged ("last 1,000 requests, 2026-12-07 10:00–10:12 UTC") and the reference.
"""

from __future__ import annotations

import time
from pathlib import Path

from app.monitoring.drift import (
    DriftError,
    EmptyWindow,
    evidently_report,
    load_window_decisions,
    psi_summary,
    too_few_rows,
)
from app.monitoring.verdict import Reference, judge, window_text

DEFAULT_LAST = 1000
NO_VERDICT = "no verdict"


def resolve_window(since=None, until=None, last: int | None = None) -> tuple:
    """(since, until, last): the last DEFAULT_LAST requests when no bound is given."""
    if since in (None, "") and until in (None, "") and last is None:
        return None, None, DEFAULT_LAST
    return since, until, last


def check(
    conn,
    reference: Reference,
    *,
    since=None,
    until=None,
    last: int | None = None,
    min_rows: int,
    psi_threshold: float,
    drift_share: float,
    model_dir: Path | None = None,
    evidently: bool = False,
    html_path: Path | None = None,
    max_columns: int = 20,
    max_rows: int = 10_000,
) -> dict:
    """The drift report of one window: {"verdict": {"level", "reasons", ...}, "window", "reference", the PSI
    report's fields ("features", "score_psi", ...), "evidently": summary | None}."""
    t0 = time.perf_counter()
    since, until, last = resolve_window(since, until, last)
    about = {
        "text": reference.text(),
        "rows": reference.rows,
        "model_id": reference.model_id,
        "trained_at": reference.trained_at,
    }
    try:
        X, scores, refused, window = load_window_decisions(
            conn, len(reference.features), since=since, until=until, last=last
        )
    except EmptyWindow as exc:
        window = {"since": since, "until": until, "last": last, "rows": 0, "first_ts": None, "last_ts": None}
        window["text"] = window_text(window)
        reasons = [too_few_rows(0, min_rows), str(exc)]
        verdict = {"level": NO_VERDICT, "reasons": reasons, "min_rows": min_rows}
        return {"verdict": verdict, "window": window, "reference": about, "evidently": None, "empty": True}
    window["text"] = window_text(window)
    report = psi_summary(
        X, scores, window, reference.manifest, psi_threshold=psi_threshold, drift_share=drift_share, t0=t0
    )
    message = too_few_rows(window["rows"], min_rows)
    if message:
        verdict = {"level": NO_VERDICT, "reasons": [message], "min_rows": min_rows}
    else:
        verdict = judge(X, scores, refused, reference)
    report["verdict"] = verdict
    report["reference"] = about
    report["empty"] = False
    report["evidently"] = None
    if evidently and not message:
        if model_dir is None:
            raise DriftError("the Evidently report needs the model folder")
        report["evidently"] = evidently_report(
            conn,
            model_dir,
            since=since,
            until=until,
            last=last,
            html_path=html_path,
            drift_share=drift_share,
            psi_threshold=psi_threshold,
            max_columns=max_columns,
            max_current_rows=max_rows,
        )
    report["seconds"] = time.perf_counter() - t0
    return report
