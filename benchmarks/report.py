"""Markdown tables from results.json, written into benchmarks/README.md between markers."""

from __future__ import annotations

from benchmarks.common import ROOT

README = ROOT / "benchmarks" / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def fmt(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) < 1e-3:
            return f"{value:.1e}"
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def table(rows: list[dict], columns: list[str]) -> str:
    columns = [c for c in columns if any(c in r for r in rows)]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


SECTIONS = {
    "inference": (
        "Inference engines (µs per row; batch of 100,000 rows; one row from Python)",
        [
            "model",
            "engine",
            "max_abs_diff",
            "batch_us_per_row_1t",
            "batch_us_per_row_2t",
            "batch_speedup_vs_lightgbm_1t",
            "one_row_us_median",
            "one_row_us_p99",
            "one_row_speedup_vs_lightgbm",
            "error",
        ],
    ),
    "sql": (
        "SQL scoring",
        [
            "name",
            "rows",
            "us_per_row",
            "us_per_query_median",
            "us_per_query_p99",
            "ratio_vs_booster_batch",
            "max_abs_diff",
        ],
    ),
    "http": (
        "HTTP on loopback (wrk, one thread; medians over interleaved rounds, ratios to the floor per round)",
        [
            "name",
            "route",
            "connections",
            "p50_ms",
            "p99_ms",
            "rps",
            "rps_ratio_vs_floor",
            "p50_ratio_vs_floor",
            "throughput_ratio_vs_baseline",
            "us_per_row",
            "loop_thread_us_per_request",
            "other_thread_us_per_request",
            "non_2xx",
            "server_rss_mb",
            "explain_ms_median",
            "explain_ms_p99",
        ],
    ),
    "shadow": (
        "Shadow scoring: the same server without and with a challenger (wrk, alternated rounds, least disturbed)",
        [
            "name",
            "connections",
            "p50_ms",
            "p99_ms",
            "rps",
            "p50_ratio_vs_without",
            "throughput_ratio_vs_without",
            "budget",
            "within_budget",
            "p50_ms_median",
            "rps_median",
            "non_2xx",
            "us_per_request",
            "added_us_per_request",
        ],
    ),
    "explain": (
        "Explanations and what-if",
        [
            "name",
            "ms_median",
            "ms_p99",
            "rows_per_s",
            "pred_contrib_rows_per_s",
            "speedup_vs_pred_contrib",
            "rss_mb",
            "heavy_imports",
            "additivity_error",
            "max_abs_diff",
        ],
    ),
    "drift": ("Drift", ["name", "seconds", "dataset_drift"]),
    "monitoring": (
        "Realised performance and fairness (budget 2 s each)",
        ["name", "seconds", "cpu_seconds", "budget_s", "max_abs_diff"],
    ),
    "ingest": ("Data at demo size", ["name", "seconds", "peak_rss_mb", "mb"]),
    "ingest-full": ("Data at full Kaggle scale", ["name", "seconds", "peak_rss_mb", "mb"]),
    "portfolio": (
        "Dashboard worklist over HTTP (GET /portfolio...), full-scale portfolio",
        ["name", "clients", "seconds", "ms_median", "ms_p99", "ms_max", "budget_ms"],
    ),
    "dask": (
        "Portfolio scoring on Dask",
        ["name", "rows", "workers", "rows_per_s", "us_per_row", "ratio_vs_single_process"],
    ),
    "quality": (
        "Model quality on real credit data, withheld clients scored through SQL (AUC; cost per client)",
        [
            "dataset",
            "clients",
            "default_rate",
            "fn_cost",
            "champions",
            "reported_auc",
            "withheld_auc",
            "gap",
            "logistic regression auc",
            "LightGBM default auc",
            "LightGBM tuned auc",
            "withheld_cost",
            "honest_cost",
            "logistic regression cost",
            "LightGBM default cost",
            "LightGBM tuned cost",
            "accept_all_cost",
            "refuse_all_cost",
            "auc_budget_met",
            "gap_budget_met",
            "cost_budget_met",
            "max_abs_diff",
            "train_s",
            "train_s_mean",
            "cpu_s",
            "peak_rss_mb",
            "load_before",
            "threads",
            "error",
        ],
    ),
    "train-full": (
        "Training at full Kaggle scale (default search)",
        [
            "dataset",
            "clients",
            "train_s",
            "cpu_s",
            "peak_rss_mb",
            "load_before",
            "threads",
            "champions",
            "reported_auc",
        ],
    ),
}


def render(results: dict) -> str:
    m = results["machine"]
    out = [
        f"Run {results['started']} on {m['cores']} cores, {m['cpu']}, Python {m['python']}.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items() if v),
        "",
        f"Method: {results['method']}.",
    ]
    if results.get("rerun_parts"):
        out += [
            "",
            f"Parts measured in this run: {', '.join(results['rerun_parts'])}; the others come from the "
            "previous full run on the same machine.",
        ]
    steps = results.get("steps", {})
    if steps:
        rows = [{"step": k, "seconds": v["seconds"], "peak_rss_mb": v["peak_rss_mb"]} for k, v in steps.items()]
        out += [
            "",
            "### Time and peak memory of each part (its own process)",
            "",
            table(rows, ["step", "seconds", "peak_rss_mb"]),
        ]
    for part, (title, columns) in SECTIONS.items():
        rows = results["parts"].get(part)
        if rows:
            out += ["", f"### {title}", "", table(rows, columns)]
        elif part in results["errors"]:
            out += ["", f"### {title}", "", "failed: " + results["errors"][part].strip().splitlines()[-1]]
    return "\n".join(out)


def write_readme(results: dict) -> None:
    text = README.read_text()
    head, rest = text.split(START, 1)
    _old, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{render(results)}\n{END}{tail}")
