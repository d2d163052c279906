"""The on-disk cache of built pipelines and models (benchmarks/cache.py): keyed by the parameters and the
sources, built once even by concurrent processes, never read half-built, older keys removed."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from benchmarks.cache import DONE, cache_key, cached


def _sources(tmp_path: Path) -> Path:
    src = tmp_path / "app"
    (src / "model").mkdir(parents=True)
    (src / "model" / "train.py").write_text("X = 1\n")
    (src / "scoring.c").write_text("int f(void) { return 1; }\n")
    return src


def test_the_key_follows_the_sources_and_the_parameters(tmp_path):
    src = _sources(tmp_path)
    first = cache_key({"clients": 3000, "seed": 7}, src)
    assert cache_key({"seed": 7, "clients": 3000}, src) == first  # order of the parameters does not matter
    assert cache_key({"clients": 3000, "seed": 8}, src) != first
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\0")
    (src / "model" / "score.so").write_bytes(b"\x7fELF")
    assert cache_key({"clients": 3000, "seed": 7}, src) == first  # compiled files are not sources
    (src / "model" / "train.py").write_text("X = 2\n")
    assert cache_key({"clients": 3000, "seed": 7}, src) != first
    (src / "model" / "train.py").write_text("X = 1\n")
    assert cache_key({"clients": 3000, "seed": 7}, src) == first
    (src / "model" / "train.py").rename(src / "model" / "trained.py")  # a renamed file is another source tree
    assert cache_key({"clients": 3000, "seed": 7}, src) != first


def test_built_once_then_read_and_rebuilt_when_the_sources_change(tmp_path):
    src, cache = _sources(tmp_path), tmp_path / "cache"
    builds = []

    def build(folder: Path) -> None:
        builds.append(folder)
        assert not (folder / DONE).exists()
        (folder / "model.txt").write_text(f"build {len(builds)}")

    first = cached("thing", {"n": 1}, build, cache=cache, sources=src)
    assert cached("thing", {"n": 1}, build, cache=cache, sources=src) == first
    assert len(builds) == 1 and (first / "model.txt").read_text() == "build 1"
    assert builds[0] != first  # built in a private folder, renamed into place
    other = cached("thing", {"n": 2}, build, cache=cache, sources=src)
    assert other != first and not first.exists()  # the older key of the same name is removed
    (src / "model" / "train.py").write_text("X = 3\n")
    third = cached("thing", {"n": 2}, build, cache=cache, sources=src)
    assert third != other and (third / "model.txt").read_text() == "build 3"
    assert sorted(p.name for p in cache.iterdir() if p.is_dir()) == [third.name]


def test_a_failed_build_leaves_nothing_and_the_next_call_builds(tmp_path):
    src, cache = _sources(tmp_path), tmp_path / "cache"

    def broken(folder: Path) -> None:
        (folder / "half.txt").write_text("half")
        raise RuntimeError("gcc failed")

    with pytest.raises(RuntimeError, match="gcc failed"):
        cached("thing", {}, broken, cache=cache, sources=src)
    assert [p for p in cache.iterdir() if p.is_dir()] == []
    root = cached("thing", {}, lambda folder: (folder / "ok.txt").write_text("ok"), cache=cache, sources=src)
    assert (root / "ok.txt").read_text() == "ok" and (root / DONE).exists()


def _slow_build(args: tuple[str, str, str]) -> str:
    cache, src, log = (Path(a) for a in args)

    def build(folder: Path) -> None:
        with open(log, "a") as f:
            f.write("built\n")
        time.sleep(0.5)  # the other process arrives while this one builds
        (folder / "model.txt").write_text("whole")

    root = cached("shared", {"n": 1}, build, cache=cache, sources=src)
    return (root / "model.txt").read_text()


def test_two_processes_build_it_once(tmp_path):
    src, cache, log = _sources(tmp_path), tmp_path / "cache", tmp_path / "builds.log"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        got = pool.map(_slow_build, [(str(cache), str(src), str(log))] * 2)
    assert got == ["whole", "whole"]
    assert log.read_text() == "built\n"


def test_the_sources_include_linked_folders(tmp_path):
    """app/sql is a link to the repository's sql/ (the schema and feature queries): an edit there counts."""
    src = _sources(tmp_path)
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "features.sql").write_text("SELECT 1;\n")
    (src / "sql").symlink_to("../sql")
    first = cache_key({}, src)
    (tmp_path / "sql" / "features.sql").write_text("SELECT 2;\n")
    assert cache_key({}, src) != first
