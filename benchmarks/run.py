"""Run the benchmark suite; write results.json and the table in benchmarks/README.md.

python -m benchmarks.run [--quick] [--only PART ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path

from benchmarks.common import ROOT, machine, peak_rss_mb

PARTS = ["inference", "sql", "http", "explain", "drift", "ingest", "dask"]
TOLERANCE = {"ONNX Runtime": 1e-2}  # ONNX Runtime evaluates trees in float32: close, not exact
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
    for part in parts:
        print(f"== {part}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            if part == "ingest-full":
                module = importlib.import_module("benchmarks.bench_ingest")
                results["parts"][part] = module.run_full()
            else:
                module = importlib.import_module(f"benchmarks.bench_{part}")
                results["parts"][part] = module.run(quick=quick)
        except Exception:
            results["errors"][part] = traceback.format_exc()
            print(results["errors"][part], file=sys.stderr)
        print(f"   {part}: {time.perf_counter() - t0:.1f} s, peak RSS {peak_rss_mb():.0f} MB", file=sys.stderr)
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = out_dir / "results.json"
    if set(parts) != set(PARTS) and previous.exists():  # a partial rerun updates those parts only
        old = json.loads(previous.read_text())
        old_parts = {k: v for k, v in old["parts"].items() if k not in results["parts"] and k not in results["errors"]}
        results["parts"] = old_parts | results["parts"]
        results["rerun_parts"] = parts
    previous.write_text(json.dumps(results, indent=2))
    return results


def correctness_failures(results: dict) -> list[str]:
    """Engines that disagree with LightGBM, and parts that crashed."""
    bad = [f"{part}: crashed" for part in results["errors"]]
    for row in results["parts"].get("inference", []):
        if "error" in row:
            bad.append(f"{row['model']}/{row['engine']}: {row['error']}")
        elif row["max_abs_diff"] > TOLERANCE.get(row["engine"], DEFAULT_TOLERANCE):
            bad.append(f"{row['model']}/{row['engine']}: max |diff| {row['max_abs_diff']:.3g}")
    for part, rows in results["parts"].items():
        if part == "inference" or not isinstance(rows, list):
            continue
        for row in rows:
            if row.get("max_abs_diff", 0) > DEFAULT_TOLERANCE:
                bad.append(f"{part}/{row.get('name')}: max |diff| {row['max_abs_diff']:.3g}")
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short correctness pass (CI)")
    parser.add_argument("--only", nargs="*", choices=PARTS, default=None)
    parser.add_argument("--full", action="store_true", help="also ingest at full Kaggle scale")
    parser.add_argument("--out", type=Path, default=None, help="folder for results.json")
    args = parser.parse_args(argv)
    out = args.out or (ROOT / "benchmarks" / ("quick" if args.quick else ""))
    parts = list(args.only or PARTS) + (["ingest-full"] if args.full else [])
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
