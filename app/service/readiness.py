"""The readiness checks of the API (GET /readyz, and every scoring request while not ready): the data file opens
and its feature rows have the model's width, the model is loaded and its features are the database's, its SQL
functions load on the data file and report its id, the prediction log is writable, and the challenger's state.

`readiness` fills a {check: state} map and returns the first failure's reason (None: ready); the Service
remembers the result (`Service.check_ready`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from app import store
from app.config import Settings
from app.scoring.bundle import DataMismatchError, ModelBundle
from app.scoring.db import connect
from app.store import predlog

log = logging.getLogger("app.service.api")


class Service(Protocol):
    """What the checks read of app.service.state.Service (and `data_warning`, which they set)."""

    settings: Settings
    db_path: Path
    log_db_path: Path
    model: ModelBundle | None
    challenger: ModelBundle | None
    model_error: str | None
    switch_error: str | None
    data_warning: str | None
    feature_names: list[str]


def readiness(svc: Service, checks: dict[str, str]) -> str | None:
    """Fill `checks`; return the first failure's reason, or None when ready."""
    if not svc.db_path.is_file():
        checks["database"] = "missing"
        return f"database {svc.db_path} not found"
    try:
        conn = connect(svc.db_path, readonly=True)
        try:
            db_names = [r[0] for r in conn.execute("SELECT name FROM feature_names ORDER BY idx")]
            # the first and last rows of `features` (cheap: primary-key ends) must have one float32 per feature
            widths = {
                r[0]
                for r in conn.execute(
                    "SELECT length(x) FROM features WHERE client_id IN"
                    " ((SELECT min(client_id) FROM features), (SELECT max(client_id) FROM features))"
                )
            }
        finally:
            conn.close()
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["database"] = "error"
        return f"database does not open: {type(exc).__name__}: {exc}"
    if svc.model is None:
        checks["model"] = "error"
        return svc.model_error or "model not loaded"
    checks["model"] = "ok"
    if db_names != svc.feature_names:
        checks["features"] = "mismatch"
        return f"model features ({len(svc.feature_names)}) differ from the database's feature_names ({len(db_names)})"
    if widths and 4 * len(db_names) not in widths:  # one bad row is that client's 503, not the service's
        checks["features"] = "mismatch"
        return f"features rows hold {sorted(w // 4 for w in widths)} values, the model expects {len(db_names)}"
    checks["features"] = "ok"
    try:
        from app.scoring.db import verify_data

        conn = connect(svc.db_path, svc.model, readonly=True)
        try:
            svc.data_warning = verify_data(conn, svc.model, allow_other=svc.settings.allow_other_data)
            sql_id = conn.execute("SELECT model_id()").fetchall()[0][0]
        finally:
            conn.close()
    except DataMismatchError as exc:
        checks["data"] = "mismatch"
        return str(exc)
    except Exception as exc:  # noqa: BLE001
        checks["sql"] = "error"
        return f"SQL functions not available: {type(exc).__name__}: {exc}"
    if svc.data_warning:
        log.warning("scoring other data (--allow-other-data): %s", svc.data_warning)
        checks["data"] = "other data allowed"
    if sql_id != svc.model.model_id:
        checks["sql"] = "mismatch"
        return f"SQL model_id() {str(sql_id)[:12]} differs from the manifest's {svc.model.model_id[:12]}"
    checks["sql"] = "ok"
    try:  # opened afresh each time, so a store that was read-only recovers as soon as it is writable
        conn = store.open_store(svc.log_db_path)
        try:
            log_problem = predlog.check_writable(conn)
        finally:
            conn.close()
    except store.StoreError as exc:
        log_problem = str(exc)
    if log_problem:
        checks["prediction_log"] = "error"
        return f"prediction log not writable: {log_problem}"
    checks["prediction_log"] = "ok"
    if svc.challenger is not None or svc.switch_error:  # only with a challenger (or a refused switch) to report
        checks["challenger"] = "ok" if svc.challenger is not None else "error"
    return None
