"""What the benchmark pass builds once and reuses (benchmarks/bench_inference.py): the engines' private virtual
environments, made once per set of pins and reused by every later run (new pins make a new one and remove the old),
and tl2cgen's library of a model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_bench_quick import clean_env

from benchmarks.bench_inference import make_venv, venv_key

ROOT = Path(__file__).resolve().parent.parent


def installed(python, package: str) -> str:
    code = f"from importlib.metadata import version; print(version({package!r}))"
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.slow  # two venvs made with uv (a package from PyPI, or uv's cache), as the benchmark pass makes them
def test_a_venv_is_made_once_per_set_of_pins(tmp_path):
    (tmp_path / "eng-venv" / "bin").mkdir(parents=True)  # the unkeyed folder older versions made
    python = make_venv(tmp_path / "eng-venv", ["sniffio==1.3.1"])
    assert python.parent.parent.name == f"eng-venv.{venv_key(['sniffio==1.3.1'])}"
    assert installed(python, "sniffio") == "1.3.1"
    ok = python.parent.parent / "ok"
    made = ok.stat().st_mtime_ns
    assert make_venv(tmp_path / "eng-venv", ["sniffio==1.3.1"]) == python  # the second run reuses it
    assert ok.stat().st_mtime_ns == made
    assert not (tmp_path / "eng-venv").exists()  # the unkeyed folder is gone

    newer = make_venv(tmp_path / "eng-venv", ["sniffio==1.3.0"])  # other pins: another venv, the old one removed
    assert newer != python and installed(newer, "sniffio") == "1.3.0"
    assert not python.parent.parent.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [newer.parent.parent.name]


def test_the_key_follows_the_pins_not_their_order():
    assert venv_key(["a==1", "b==2"]) == venv_key(["b==2", "a==1"])
    assert venv_key(["a==1", "b==2"]) != venv_key(["a==1", "b==3"])
    assert len(venv_key([])) == 12


@pytest.mark.slow  # three gcc builds of tl2cgen's library, as the benchmark pass makes it
def test_tl2cgens_library_is_built_once_per_model_and_agrees_with_lightgbm(tmp_path):
    """The quick pass reuses the library an earlier run built in the model's engine folder; the full run builds it.
    In a process of its own, as the benchmark runs it, without the thread caps that earlier tests' Dask clusters
    leave in the environment: tl2cgen's predictors ask OpenMP for two threads."""
    env = {**clean_env(), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, __file__, str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert len(list(tmp_path.glob("tl2cgen_default-*.so"))) == 1


def check_tl2cgen_reuse(tmp_path: Path) -> None:
    import lightgbm as lgb
    import numpy as np

    from benchmarks.bench_inference import LightGBM, TL2cgenDefault

    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 5)).astype(np.float32)
    y = (X[:, 0] + rng.normal(size=400) > 0).astype(int)
    params = {"objective": "binary", "num_leaves": 7, "verbose": -1, "num_threads": 1}
    lgb.train(params, lgb.Dataset(X, y), num_boost_round=5).save_model(str(tmp_path / "model.txt"))
    first = TL2cgenDefault(tmp_path / "model.txt", tmp_path, reuse=True)
    (lib,) = tmp_path.glob("tl2cgen_default-*.so")
    built = lib.stat().st_mtime_ns
    again = TL2cgenDefault(tmp_path / "model.txt", tmp_path, reuse=True)
    assert lib.stat().st_mtime_ns == built and list(tmp_path.glob("*.so")) == [lib]  # reused, nothing half-built
    want = LightGBM(tmp_path / "model.txt").batch(X, 1)
    for engine in (first, again):
        assert np.max(np.abs(engine.batch(X, 1) - want)) < 1e-6
    TL2cgenDefault(tmp_path / "model.txt", tmp_path)  # the full run compiles again
    assert lib.stat().st_mtime_ns > built


if __name__ == "__main__":
    check_tl2cgen_reuse(Path(sys.argv[1]))
