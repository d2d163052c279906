"""Detection and false-alarm rates of the drift verdict, measured in process.

Each window is what `credit traffic [--drift KIND] --n N` would send: N clients drawn at random from the
client database, the drift applied to their vectors (app.monitoring.traffic.apply_drift), scored by the
compiled model (the API's scores) and refused at its threshold; `judge` (the verdict of `credit drift`) then
decides. No HTTP and no log: the verdict's inputs are the same arrays the log would hold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.monitoring.traffic import DRIFTS, apply_drift
from app.monitoring.verdict import Reference, judge

SCENARIOS = (None, *DRIFTS)  # None: undrifted traffic


class Replayer:
    """The client database's vectors and the served model, loaded once; `levels` judges many windows."""

    def __init__(self, db_path: Path, model_dir: Path):
        from app.scoring.bundle import ModelBundle
        from app.scoring.db import connect

        self.bundle = ModelBundle.load(Path(model_dir))
        self.reference = Reference.load(Path(model_dir))
        conn = connect(Path(db_path), readonly=True)
        try:
            names = [r[0] for r in conn.execute("SELECT name FROM feature_names ORDER BY idx")]
            blobs = [r[0] for r in conn.execute("SELECT x FROM features ORDER BY client_id")]
        finally:
            conn.close()
        if names != self.reference.features:
            raise ValueError(f"{db_path}: its features are not the model's")
        self.names = names
        self.X = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), len(names))

    def window(self, scenario: str | None, n: int, rng: np.random.Generator) -> dict:
        """The verdict over one window of n requests."""
        X = apply_drift(scenario, self.X[rng.integers(0, len(self.X), n)], self.names)
        scores = np.asarray(self.bundle.predict(np.ascontiguousarray(X)), dtype=np.float64)
        return judge(X, scores, self.bundle.refuses(scores), self.reference)

    def rates(self, scenario: str | None, *, windows: int, n: int, seed: int = 0) -> dict:
        """Share of `windows` windows of n requests judged "act" and "watch or act", over seeds seed..seed+windows-1."""
        levels = [self.window(scenario, n, np.random.default_rng(seed + i))["level"] for i in range(windows)]
        return {
            "scenario": scenario or "none",
            "windows": windows,
            "requests": n,
            "act": sum(lv == "act" for lv in levels) / windows,
            "watch_or_act": sum(lv != "stable" for lv in levels) / windows,
        }
