"""The project's pipeline (generate -> ingest -> train -> compile) built once per (clients, seed, search) and
per version of app/, cached on disk (benchmarks/cache.py): the test session's shared pipeline
(tests/conftest.py) and the benchmark pass's small one are the same folder.

    pipe = cached_pipeline(3000, seed=7, quick=True)  # pipe.raw, pipe.db, pipe.model_dir, pipe.timings
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

from benchmarks.cache import cached


def build_pipeline(root: Path, clients: int, seed: int, quick: bool) -> None:
    """Generate raw/, ingest credit.db, train model/ (the quick search when quick) and compile it; the seconds
    of each step in timings.json."""
    from app.data.ingest import ingest
    from app.data.synthetic import generate
    from app.model.compile import compile_model
    from app.model.train import train

    raw, db, model_dir = root / "raw", root / "credit.db", root / "model"
    timings = {}
    t0 = time.perf_counter()
    generate(raw, n_clients=clients, seed=seed, progress=False)
    timings["generate_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ingest(raw, db, progress=False)
    timings["ingest_features_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    train(db, model_dir, seed=seed, quick=quick, progress=False)
    timings["train_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    compile_model(model_dir, progress=False)
    timings["compile_s"] = time.perf_counter() - t0
    (root / "timings.json").write_text(json.dumps(timings))


def cached_pipeline(clients: int, seed: int, quick: bool, cache: Path | None = None) -> SimpleNamespace:
    """The pipeline folder for these settings, built the first time: raw, db, model_dir, root, timings."""
    params = {"clients": clients, "seed": seed, "quick": quick}
    name = f"pipeline-{clients}-{seed}-{'quick' if quick else 'full'}"
    root = cached(name, params, lambda work: build_pipeline(work, clients, seed, quick), cache=cache)
    timings = json.loads((root / "timings.json").read_text())
    return SimpleNamespace(
        raw=root / "raw", db=root / "credit.db", model_dir=root / "model", root=root, timings=timings
    )
