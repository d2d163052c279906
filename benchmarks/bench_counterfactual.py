"""How many refusals the counterfactual turns round, why not the others, and its cost (docs/rights.md).

    python -m benchmarks.bench_counterfactual --model compiled --db data/credit.db [--n 200]

On a random sample of the model's refusals (seed 0): the share with a verified counterfactual for the configured
levers, for each subset of levers, and with the bounds relaxed far past the training data (diagnostic only: such
changes are never offered); the thread CPU time per search (p50, p90, max); and, by exact TreeSHAP, the median
share of the risk-raising contributions carried by the features the levers move, by the protected or immutable
application features, and by the credit history (bureau, previous applications, instalments, POS, cards).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import numpy as np

from app.data.whatif import application_columns, application_row
from app.model.explain import Explainer
from app.rights import counterfactual as cf
from app.scoring.bundle import ModelBundle
from app.scoring.db import connect

PROTECTED_MARKS = (
    "EXT_SOURCE", "DAYS_BIRTH", "AGE", "DAYS_EMPLOYED", "EMPLOYED", "GENDER", "FAMILY", "CHILDREN", "FAM_MEMBERS",
    "SOCIAL_CIRCLE", "DAYS_REGISTRATION", "DAYS_ID_PUBLISH", "EDUCATION", "INCOME_TYPE", "OCCUPATION",
)  # fmt: skip
HISTORY_PREFIXES = ("BUREAU", "BURO", "PREV", "INST", "POS", "CC")


def found_share(searcher: cf.Searcher, conn, ids, X, pick) -> tuple[float, list[float], list[str]]:
    cpu, status = [], []
    for i in pick:
        t0 = time.thread_time()
        status.append(searcher.search(conn, ids[i], X[i]).status)
        cpu.append((time.thread_time() - t0) * 1e3)
    return sum(s == "found" for s in status) / len(pick), cpu, status


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="compiled")
    ap.add_argument("--db", default="data/credit.db")
    ap.add_argument("--n", type=int, default=200, help="refusals sampled")
    args = ap.parse_args()
    bundle = ModelBundle.load(args.model)
    conn = connect(args.db, readonly=True)
    rows = conn.execute("SELECT client_id, x FROM features ORDER BY client_id").fetchall()
    ids = [c for c, _ in rows]
    X = np.stack([np.frombuffer(x, dtype="<f4") for _, x in rows])
    P = np.asarray(bundle.predict(np.ascontiguousarray(X)), dtype=np.float64)
    refused = np.flatnonzero(bundle.refuses(P))
    pick = np.random.default_rng(0).choice(refused, size=min(args.n, len(refused)), replace=False)
    out: dict = {"clients": len(ids), "refused": len(refused), "threshold": float(bundle.threshold)}
    out["sampled"] = len(pick)

    searcher = cf.Searcher(bundle)
    share, cpu, status = found_share(searcher, conn, ids, X, pick)
    out["levers"] = list(searcher.levers)
    out["share_found"] = share
    out["cpu_ms"] = {q: float(np.percentile(cpu, p)) for q, p in (("p50", 50), ("p90", 90), ("max", 100))}
    out["cpu_ms"]["budget"] = cf.BUDGET_MS
    out["p90_within_budget"] = out["cpu_ms"]["p90"] <= cf.BUDGET_MS
    out["by_levers"] = {
        ",".join(sub): found_share(cf.Searcher(bundle, sub), conn, ids, X, pick)[0]
        for k in (1, 2)
        for sub in itertools.combinations(cf.DEFAULT_LEVERS, k)
    }
    wide = cf.Scales(searcher.scales.mad, 0.0, searcher.scales.term_cap * 4, searcher.scales.income_add_cap * 10)
    searcher.scales = wide
    out["share_found_bounds_relaxed"] = found_share(searcher, conn, ids, X, pick)[0]
    out["relaxed_bounds"] = {"credit_floor": 0.0, "term_cap": wide.term_cap, "income_add_cap": wide.income_add_cap}

    explainer = Explainer.from_bundle(bundle)
    names = bundle.feature_names
    protected = {n for n in names if any(m in n for m in PROTECTED_MARKS)}
    history = {n for n in names if n.split("_")[0] in HISTORY_PREFIXES}
    cols = application_columns(conn)
    groups: dict[str, list[tuple[float, float, float]]] = {"found": [], "not found": []}
    for i, st in zip(pick, status, strict=True):
        row = application_row(conn, ids[i], cols)
        base = {c: float(row[c]) for c in cf.VARYING}
        moved = set(searcher._dependent(conn, row, cols, base))
        phi = np.clip(explainer.shap_values(X[i][None, :])[0][: len(names)], 0, None)
        total = float(phi.sum()) or 1.0

        def part(group: set[str], phi=phi, total=total) -> float:
            return float(sum(phi[j] for j, n in enumerate(names) if n in group) / total)

        groups["found" if st == "found" else "not found"].append(
            (part(moved), part(protected - moved), part(history - moved - protected))
        )
    out["risk_raising_shap_share_median"] = {
        k: dict(zip(("lever-moved", "protected or immutable", "credit history"), np.median(v, axis=0), strict=True))
        for k, v in groups.items()
        if v
    }
    out["probability_above_threshold_median"] = {
        k: float(np.median([P[i] - bundle.threshold for i, s in zip(pick, status, strict=True) if (s == "found") == f]))
        for k, f in (("found", True), ("not found", False))
    }
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
