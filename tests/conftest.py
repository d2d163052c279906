"""Shared fixtures: one small pipeline (generate -> ingest -> train -> compile), built once per version of app/
and cached on disk (benchmarks/pipeline.py), copied once per test session; for the API
tests, a module's private copy of it (`data`), a `credit serve` over that copy (`api`) and a known client (`known`).

Tiers (the justfile's `test-unit`, `test-fast`, `test`): a test that uses none of the pipeline fixtures below is
marked `unit` here at collection, so `-m unit` runs without generating, training or compiling the shared pipeline;
`slow`, `browser` and `integration` are set by the test modules themselves.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import apsw
import pytest
from apiserver import ApiServer, copy_pipeline

PIPELINE_CLIENTS = 3000
PIPELINE_SEED = 7
PIPELINE_FIXTURES = frozenset({"built_pipeline", "raw_data", "pipeline", "pipeline_copy", "data", "api", "known"})
NOT_UNIT = ("slow", "browser", "integration")
pytest_plugins = ["browser_fixtures"]  # chromium for the browser tests (tests/browser_fixtures.py)


def pytest_collection_modifyitems(config, items) -> None:
    """Marks `unit` every test that needs no shared pipeline and is neither slow, browser nor integration."""
    for item in items:
        if PIPELINE_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())) and not any(
            item.get_closest_marker(name) for name in NOT_UNIT
        ):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session")
def built_pipeline() -> SimpleNamespace:
    """The pipeline as built once per version of app/ (benchmarks/pipeline.py, cached on disk and shared with the
    benchmark pass): generate, ingest, train with the quick search, compile. Tests read their copy below."""
    from benchmarks.pipeline import cached_pipeline

    return cached_pipeline(PIPELINE_CLIENTS, PIPELINE_SEED, quick=True)


@pytest.fixture(scope="session")
def raw_data(built_pipeline, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("raw")
    shutil.copytree(built_pipeline.raw, out, dirs_exist_ok=True)
    return out


@pytest.fixture(scope="session")
def pipeline(built_pipeline, tmp_path_factory, raw_data) -> SimpleNamespace:
    """The session's copy of the built pipeline: tests may read it, and write only in `pipeline_copy` or `data`."""
    copied = copy_pipeline(built_pipeline, tmp_path_factory.mktemp("pipeline"))
    return SimpleNamespace(data_dir=raw_data, db=copied.db, model_dir=copied.model_dir, root=copied.root)


@pytest.fixture
def pipeline_copy(pipeline, tmp_path) -> SimpleNamespace:
    """A private copy of the pipeline's database and model, for tests that write."""
    db = tmp_path / "credit.db"
    shutil.copy(pipeline.db, db)
    model_dir = tmp_path / "model"
    shutil.copytree(pipeline.model_dir, model_dir, symlinks=True)
    return SimpleNamespace(data_dir=pipeline.data_dir, db=db, model_dir=model_dir, root=tmp_path)


@pytest.fixture(scope="module")
def data(pipeline, tmp_path_factory, request) -> SimpleNamespace:
    """The module's private copy of the pipeline (the API server writes its log into the database)."""
    return copy_pipeline(pipeline, tmp_path_factory.mktemp(request.module.__name__))


@pytest.fixture(scope="module")
def api(data):
    with ApiServer(data.db, data.model_dir) as server:
        yield server


@pytest.fixture(scope="module")
def known(data) -> tuple[int, list[str]]:
    """A client id in the database (the smallest) and the model's feature names."""
    conn = apsw.Connection(str(data.db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        cid = conn.execute("SELECT min(client_id) FROM features").fetchall()[0][0]
    finally:
        conn.close()
    return cid, json.loads((data.model_dir / "manifest.json").read_text())["features"]
