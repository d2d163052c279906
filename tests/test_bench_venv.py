"""The engines' private virtual environments (benchmarks/bench_inference.py): made once per set of pins and
reused by every later run; new pins make a new one and remove the old."""

from __future__ import annotations

import subprocess

import pytest

from benchmarks.bench_inference import make_venv, venv_key


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
