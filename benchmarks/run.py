"""Run the benchmark suite; write results.json and the table in benchmarks/README.md.

python -m benchmarks.run [--quick] [--only PART ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from benchmarks.common import ROOT, machine

PARTS = [
    "inference",
    "sql",
    "http",
    "shadow",
    "explain",
    "drift",
    "drift_detection",
    "monitoring",
    "ingest",
    "dask",
    "portfolio",
    "quality",
]
# engines that evaluate in float32 (a value between a threshold and its float32 rounding takes the other
# branch): gated on the share of checked rows that agree with LightGBM to 1e-6, not on the largest difference
APPROXIMATE = {"ONNX Runtime": 0.95}
# engines whose max |diff| (or error) is reported but not gated
REPORT_ONLY = {
    "oneDAL (daal4py, own venv)": "float32 thresholds (max |diff| ~7e-3 with ±inf and huge values); "
    "no categorical splits (the model builder refuses them)",
    "timber-compiler (own venv)": "timber 0.6 sends missing values (NaN) another way than LightGBM (max |diff| ~1)",
}
DEFAULT_TOLERANCE = 1e-6


def versions() -> dict:
    names = ["lightgbm", "treelite", "tl2cgen", "lleaves", "onnxruntime", "apsw", "litestar", "numpy", "dask"]
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# parts the quick pass leaves out, and the test that checks more than the part would
QUICK_SKIPPED = {
    "drift_detection": "tests/test_drift_verdict.py: the same replayed windows, with the goals asserted",
}
QUICK_PARTS = [p for p in PARTS if p not in QUICK_SKIPPED]
# settings of the quick pass for parts whose run() takes them (the other parts choose their own quick sizes)
QUICK_SETTINGS: dict[str, dict] = {}
# parts whose quick pass is a module of its own: HTTP starts every server and checks every route's answers against
# the reference, without the timed wrk rounds (its figures are read from the full run)
QUICK_MODULES = {"http": "benchmarks.http_quick"}


def part_rows(part: str, quick: bool) -> list[dict]:
    if part == "ingest-full":
        return importlib.import_module("benchmarks.bench_ingest").run_full()
    if part == "train-full":
        return importlib.import_module("benchmarks.bench_quality").run_full()
    settings = QUICK_SETTINGS.get(part, {}) if quick else {}
    module = QUICK_MODULES[part] if quick and part in QUICK_MODULES else f"benchmarks.bench_{part}"
    return importlib.import_module(module).run(quick=quick, **settings)


def run_in_child(part: str, quick: bool) -> tuple[list[dict] | None, str | None, float, float, float]:
    """One part in its own process, so that its peak RSS and CPU time are its own: (rows, error, seconds, MB, CPU
    seconds of the part and the children it waited for)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        code = (
            "import json, sys, traceback\n"
            "from benchmarks.run import part_rows\n"
            "try:\n"
            "    result = {'rows': part_rows(sys.argv[1], sys.argv[2] == '1')}\n"
            "except Exception:\n"
            "    result = {'error': traceback.format_exc()}\n"
            "    print(result['error'], file=sys.stderr)\n"
            "open(sys.argv[3], 'w').write(json.dumps(result))\n"
        )
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code, part, "1" if quick else "0", str(out)], cwd=ROOT)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        cpu = usage.ru_utime + usage.ru_stime
        if not out.exists():
            died = f"the {part} benchmark process died (wait status {status})"
            return None, died, seconds, usage.ru_maxrss / 1024, cpu
        result = json.loads(out.read_text())
    return result.get("rows"), result.get("error"), seconds, usage.ru_maxrss / 1024, cpu


def run(parts: list[str], quick: bool, out_dir: Path) -> dict:
    results = {
        "machine": machine(),
        "versions": versions(),
        "quick": quick,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "method": "warm-up call, then N repetitions; batch figures are the minimum over N runs, "
        "single-row and HTTP figures median and p99 over all calls; ratios against the baseline "
        "measured in the same run",
        "parts": {},
        "errors": {},
    }
    results["steps"] = {}
    for part in parts:
        print(f"== {part}", file=sys.stderr, flush=True)
        rows, error, seconds, rss, cpu = run_in_child(part, quick)
        if error is None:
            results["parts"][part] = rows
        else:
            results["errors"][part] = error
        results["steps"][part] = {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": rss}
        print(f"   {part}: {seconds:.1f} s, {cpu:.1f} s of CPU, peak RSS {rss:.0f} MB", file=sys.stderr)
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = out_dir / "results.json"
    # a partial rerun updates those parts only
    if set(parts) != set(QUICK_PARTS if quick else PARTS) and previous.exists():
        old = json.loads(previous.read_text())
        old_parts = {k: v for k, v in old["parts"].items() if k not in results["parts"] and k not in results["errors"]}
        results["parts"] = old_parts | results["parts"]
        results["steps"] = {k: v for k, v in old.get("steps", {}).items() if k not in parts} | results["steps"]
        results["rerun_parts"] = parts
    previous.write_text(json.dumps(results, indent=2))
    return results


def correctness_failures(results: dict) -> list[str]:
    """Engines that disagree with LightGBM, and parts that crashed."""
    bad = [f"{part}: crashed" for part in results["errors"]]
    for row in results["parts"].get("inference", []):
        if row.get("engine") in REPORT_ONLY:
            continue
        if "error" in row:
            bad.append(f"{row['model']}/{row['engine']}: {row['error']}")
        elif row["engine"] in APPROXIMATE:
            share = row.get("agree_share")
            if share is None:  # a row kept from a run made before the share was recorded
                share = 1.0 if row["max_abs_diff"] <= DEFAULT_TOLERANCE else 0.0
            if share < APPROXIMATE[row["engine"]]:
                bad.append(f"{row['model']}/{row['engine']}: {share:.1%} of rows agree to 1e-6")
        elif row["max_abs_diff"] > DEFAULT_TOLERANCE:
            bad.append(f"{row['model']}/{row['engine']}: max |diff| {row['max_abs_diff']:.3g}")
    for part, rows in results["parts"].items():
        if part == "inference" or not isinstance(rows, list):
            continue
        for row in rows:
            if row.get("max_abs_diff", 0) > DEFAULT_TOLERANCE:
                bad.append(f"{part}/{row.get('name', row.get('dataset'))}: max |diff| {row['max_abs_diff']:.3g}")
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short correctness pass (CI)")
    parser.add_argument("--only", nargs="*", choices=PARTS, default=None)
    parser.add_argument("--full", action="store_true", help="also ingest and train at full Kaggle scale")
    parser.add_argument("--out", type=Path, default=None, help="folder for results.json")
    args = parser.parse_args(argv)
    out = args.out or (ROOT / "benchmarks" / ("quick" if args.quick else ""))
    parts = list(args.only or (QUICK_PARTS if args.quick else PARTS)) + (
        ["ingest-full", "train-full"] if args.full else []
    )
    results = run(parts, args.quick, out)
    if not args.quick and args.out is None:
        from benchmarks.report import write_readme

        write_readme(results)
    bad = correctness_failures(results)
    for line in bad:
        print(f"FAILED {line}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
