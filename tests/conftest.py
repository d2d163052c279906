"""Shared fixtures: one small pipeline (generate -> ingest -> train -> compile) per test session."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

PIPELINE_CLIENTS = 3000
PIPELINE_SEED = 7


@pytest.fixture(scope="session")
def raw_data(tmp_path_factory) -> Path:
    from app.data.synthetic import generate

    out = tmp_path_factory.mktemp("raw")
    generate(out, n_clients=PIPELINE_CLIENTS, seed=PIPELINE_SEED)
    return out


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory, raw_data) -> SimpleNamespace:
    from app.data.ingest import ingest
    from app.model.compile import compile_model
    from app.model.train import train

    root = tmp_path_factory.mktemp("pipeline")
    db = root / "credit.db"
    model_dir = root / "model"
    ingest(raw_data, db, progress=False)
    train(db, model_dir, seed=PIPELINE_SEED, quick=True, progress=False)
    compile_model(model_dir, progress=False)
    return SimpleNamespace(data_dir=raw_data, db=db, model_dir=model_dir, root=root)


@pytest.fixture
def pipeline_copy(pipeline, tmp_path) -> SimpleNamespace:
    """A private copy of the pipeline's database and model, for tests that write."""
    db = tmp_path / "credit.db"
    shutil.copy(pipeline.db, db)
    model_dir = tmp_path / "model"
    shutil.copytree(pipeline.model_dir, model_dir, symlinks=True)
    return SimpleNamespace(data_dir=pipeline.data_dir, db=db, model_dir=model_dir, root=tmp_path)
