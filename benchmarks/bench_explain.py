"""Explanation (exact TreeSHAP) and what-if (application features recomputed in SQL, then scored) latency
for one client, in process. The what-if row's max |diff| is a no-change what-if against the stored vector.

TreeSHAP throughput: the compiled library's `credit_shap_batch` against LightGBM's
`Booster.predict(pred_contrib=True)` on the same rows, one thread, with its max |diff|, on the project
model and the anchor models. First explanation after a start: a fresh process imports the explainer,
loads it and explains one client (what the API does on its first explain request), with its RSS and
whether LightGBM, scikit-learn, scipy or pandas got imported."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, timeit
from benchmarks.models import anchor_model, bench_pipeline, project_matrix

FIRST_EXPLAIN = """
import json, resource, sys, time
t0 = time.perf_counter()
import numpy as np
from app.model.explain import Explainer
x = np.load(sys.argv[2])
t1 = time.perf_counter()
out = Explainer.load(sys.argv[1]).explain(x, top=4)
t2 = time.perf_counter()
heavy = [m for m in ("lightgbm", "sklearn", "scipy", "pandas") if m in sys.modules]
rss = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "first_ms": (t2 - t1) * 1e3, "rss_mb": rss, "heavy": heavy}))
"""


def shap_throughput(label: str, model_dir, X: np.ndarray, n: int) -> dict:
    import lightgbm as lgb

    from app.scoring.bundle import load_model
    from app.scoring.library import shap_with
    from benchmarks.shap_batch import ensure_tables

    ensure_tables(model_dir)  # a cached model compiled before the SHAP tables is rebuilt once
    model = load_model(model_dir)
    booster = lgb.Booster(model_file=str(model_dir / "model.txt"))
    rows = np.ascontiguousarray(X[np.random.default_rng(0).choice(len(X), n)], dtype=np.float32)
    ours = timeit(lambda: shap_with(model._lib, rows), repeat=3)
    theirs = timeit(lambda: booster.predict(rows, pred_contrib=True, num_threads=1), repeat=3, warmup=0)
    diff = float(np.max(np.abs(shap_with(model._lib, rows) - booster.predict(rows, pred_contrib=True))))
    return {
        "name": f"TreeSHAP, {label}: compiled vs pred_contrib ({n} rows, 1 thread)",
        "rows_per_s": n / ours["min"],
        "pred_contrib_rows_per_s": n / theirs["min"],
        "speedup_vs_pred_contrib": theirs["min"] / ours["min"],
        "max_abs_diff": diff,
    }


def first_explanation(model_dir, x: np.ndarray, tmp) -> dict:
    np.save(tmp / "x.npy", x)
    out = subprocess.run(
        [sys.executable, "-c", FIRST_EXPLAIN, str(model_dir), str(tmp / "x.npy")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    got = json.loads(out)
    return {
        "name": "first explanation in a fresh process (load + explain; import of the explainer apart)",
        "ms_median": got["first_ms"],
        "import_ms": got["import_ms"],
        "rss_mb": got["rss_mb"],
        "heavy_imports": ", ".join(got["heavy"]) or "none",
    }


def first_api_explanation(pipe, tmp: Path) -> dict:
    """`credit serve` started, then the first GET /clients/{id}/explain as soon as /readyz answers (the worst
    case: the explainer is readied in the background at startup), and the server's RSS after it."""
    import os

    import apsw
    import httpx
    import psutil

    from benchmarks.bench_http import Server

    cid = apsw.Connection(str(pipe.db), flags=apsw.SQLITE_OPEN_READONLY).execute("SELECT min(client_id) FROM features")
    cid = cid.fetchall()[0][0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_")}
    env |= {"CREDIT_DB": str(pipe.db), "CREDIT_MODEL_DIR": str(pipe.model_dir), "CREDIT_API_KEYS": "bench-key:officer"}
    env |= {"CREDIT_LOG_DB": str(tmp / "log.db")}
    credit = str(Path(sys.executable).parent / "credit")
    server = Server("api", [credit, "serve", "--port", "{port}"], env, "/readyz", "ours")
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": "Bearer bench-key"}) as client:
            t0 = time.perf_counter()
            client.get(f"/clients/{cid}/explain").raise_for_status()
            first_ms = (time.perf_counter() - t0) * 1e3
        rss = psutil.Process(server.proc.pid).memory_info().rss / 2**20
    finally:
        server.stop()
    return {
        "name": "first explanation from the API, right after /readyz (HTTP, credit serve)",
        "ms_median": first_ms,
        "rss_mb": rss,
    }


def what_if_row(pipe, quick: bool) -> dict:
    import apsw

    from app.data.features import feature_names
    from app.data.whatif import what_if
    from app.scoring.bundle import load_model

    model = load_model(pipe.model_dir)
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

    pipe = bench_pipeline(quick)
    _ids, X = project_matrix(pipe.db)
    explainer = Explainer.load(pipe.model_dir)
    explainer.explain(X[0])
    per_call = []
    for row in X[: 20 if quick else 300]:
        t0 = time.perf_counter_ns()
        result = explainer.explain(row, top=4)
        per_call.append((time.perf_counter_ns() - t0) / 1e6)
    additivity = abs(result["base_value"] + sum(c["shap"] for c in result["contributions"]) - result["margin"])
    with tempfile.TemporaryDirectory() as tmp:
        first = first_explanation(pipe.model_dir, X[1], Path(tmp))
        first_api = first_api_explanation(pipe, Path(tmp))
    rows = [
        {
            "name": "explain one client (SHAP + reasons)",
            "ms_median": float(np.median(per_call)),
            "ms_p99": float(np.percentile(per_call, 99)),
            "additivity_error": additivity,
        },
        first,
        first_api,
        what_if_row(pipe, quick),
        shap_throughput("project model", pipe.model_dir, X, 200 if quick else 2000),
    ]
    for name in ("500x31", "1000x63", "categorical"):
        model_dir, X_anchor = anchor_model(name, quick=quick)
        label = f"{name} anchor" + (" (100 trees)" if quick else "")
        rows.append(shap_throughput(label, model_dir, X_anchor, 50 if quick else 500))
    return rows
