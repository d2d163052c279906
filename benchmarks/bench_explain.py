"""Explanation (exact TreeSHAP) latency for one client, in process."""

from __future__ import annotations

import time

import numpy as np

from benchmarks.models import project_matrix, project_pipeline


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
        }
    ]
