"""Explanation (exact TreeSHAP) and what-if (application features recomputed in SQL, then scored) latency
for one client, in process. The what-if row's max |diff| is a no-change what-if against the stored vector."""

from __future__ import annotations

import time

import numpy as np

from benchmarks.models import project_matrix, project_pipeline


def what_if_row(pipe, quick: bool) -> dict:
    import apsw

    from app.data.features import feature_names
    from app.data.whatif import what_if
    from app.scoring import CompiledModel

    model = CompiledModel.load(pipe.model_dir)
    conn = apsw.Connection(str(pipe.db), flags=apsw.SQLITE_OPEN_READONLY)
    names = feature_names(conn)
    rows = conn.execute("SELECT client_id, x FROM features ORDER BY client_id LIMIT ?", (20 if quick else 300,))
    per_call, max_diff = [], 0.0
    for cid, blob in rows.fetchall():
        x = np.frombuffer(blob, dtype="<f4")
        same, raw = what_if(conn, cid, {}, names, x)
        max_diff = max(max_diff, float(np.nanmax(np.abs(same - x), initial=0.0)))
        t0 = time.perf_counter_ns()
        changed, _ = what_if(conn, cid, {"AMT_CREDIT": 1.5 * (raw["AMT_CREDIT"] or 1.0)}, names, x)
        model.predict_row(changed)
        per_call.append((time.perf_counter_ns() - t0) / 1e6)
    conn.close()
    return {
        "name": "what-if one client (application features in SQL + score)",
        "ms_median": float(np.median(per_call)),
        "ms_p99": float(np.percentile(per_call, 99)),
        "max_abs_diff": max_diff,
    }


def run(quick: bool) -> list[dict]:
    from app.model.explain import Explainer

    pipe = project_pipeline(3000 if quick else 20000)
    _ids, X = project_matrix(pipe.db)
    explainer = Explainer.load(pipe.model_dir)
    explainer.explain(X[0])
    per_call = []
    for row in X[: 20 if quick else 300]:
        t0 = time.perf_counter_ns()
        result = explainer.explain(row, top=4)
        per_call.append((time.perf_counter_ns() - t0) / 1e6)
    additivity = abs(result["base_value"] + sum(c["shap"] for c in result["contributions"]) - result["margin"])
    return [
        {
            "name": "explain one client (SHAP + reasons)",
            "ms_median": float(np.median(per_call)),
            "ms_p99": float(np.percentile(per_call, 99)),
            "additivity_error": additivity,
        },
        what_if_row(pipe, quick),
    ]
