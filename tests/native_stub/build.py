"""Build the stand-in model (stub_model.c + every app/scoring/native/*.c) into a model folder like `credit compile`.

The folder gets model-<id12>.so, manifest.json (model_id, features, threshold, library.sha256, ...)
and the symlink score.so, so app.scoring.bundle.load_model and app.scoring.db.connect accept it.
`predict_reference` is the same model in Python, for parity tests.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from app.scoring.bundle import manifest_digest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NATIVE_DIR = ROOT / "app" / "scoring" / "native"
STUB_C = HERE / "stub_model.c"
FEATURES = ["f0", "f1", "f2"]
NAN_TRIGGER = 777.0  # x[2] == 777 makes the stub return NaN


def model_id_for(bias: float, threshold: float) -> str:
    return hashlib.sha256(f"stub bias={bias!r} threshold={threshold!r}".encode()).hexdigest()


def predict_reference(x: np.ndarray, bias: float = -1.0) -> float:
    """The stub model in Python: float32 compares, float64 margin, glibc exp (bit-identical to C)."""
    x = np.asarray(x, dtype=np.float32)
    f0, f1, f2 = x[0], x[1], x[2]
    if f2 == np.float32(NAN_TRIGGER):
        return math.nan
    right = not (f0 < np.float32(0.5))  # NaN goes right, as in C
    t0 = (0.8 if f1 < np.float32(2.0) else 0.3) if right else (-0.6 if f2 < np.float32(-1.0) else -0.1)
    t1 = -0.4 if f1 < np.float32(1.0) else (0.5 if not (f2 < np.float32(0.25)) else 0.1)
    margin = bias + t0 + t1
    return 1.0 / (1.0 + math.exp(-margin))


def build_stub_model(
    model_dir: Path, *, bias: float = -1.0, threshold: float = 0.35, cc: str = "gcc", extra_flags: tuple[str, ...] = ()
) -> dict:
    """Compile the stub into model_dir, write manifest.json, repoint score.so. Returns the manifest."""
    if shutil.which(cc) is None:
        raise RuntimeError(f"C compiler {cc!r} not found")
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    model_id = model_id_for(bias, threshold)
    so_name = f"model-{model_id[:12]}.so"
    tmp = model_dir / f".{so_name}.tmp"
    manifest = {
        "model_id": model_id,
        "app_version": "test",
        "features": FEATURES,
        "n_features": len(FEATURES),
        "threshold": threshold,
        "costs": {"fn": 10.0, "fp": 1.0},
    }
    sources = [STUB_C, *sorted(NATIVE_DIR.glob("*.c"))]
    # Same shape of command as app/model/compile.py (no -Bsymbolic, default visibility): the
    # worst case for two model libraries loaded in one process.
    cmd = [
        cc, "-shared", "-fPIC", "-std=gnu11", "-O2", "-Wall", "-Werror", *extra_flags,
        f'-DSTUB_MODEL_ID="{model_id}"', f"-DSTUB_BIAS={bias!r}", f"-DSTUB_THRESHOLD={threshold!r}",
        f'-DSTUB_MANIFEST_SHA256="{manifest_digest(manifest)}"',
        f"-I{NATIVE_DIR}", "-o", str(tmp), *map(str, sources), "-lm",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    os.replace(tmp, model_dir / so_name)
    digest = hashlib.sha256((model_dir / so_name).read_bytes()).hexdigest()
    manifest["library"] = {"file": so_name, "sha256": digest, "compiler": cc, "flags": " ".join(extra_flags)}
    (model_dir / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    link_tmp = model_dir / ".score.so.tmp"
    link_tmp.unlink(missing_ok=True)
    os.symlink(so_name, link_tmp)
    os.replace(link_tmp, model_dir / "score.so")
    return manifest


def make_features_db(db_path: Path, *, n_clients: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A small real SQLite file: features(client_id, x float32[3] BLOB) and clients(client_id, split).

    Ids include 7 (so TEXT '7' would match through affinity if the extension were lax). About 10% of
    the values are NaN. Returns (ids int64[n], X float32[n, 3]) in id order.
    """
    import apsw

    rng = np.random.default_rng(seed)
    ids = np.sort(np.concatenate([[7], rng.choice(np.arange(100_001, 200_000), n_clients - 1, replace=False)]))
    X = np.column_stack(
        [rng.uniform(-1, 2, n_clients), rng.uniform(-1, 3, n_clients), rng.uniform(-2, 2, n_clients)]
    ).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    conn = apsw.Connection(str(db_path))
    with conn:
        conn.execute(
            "CREATE TABLE features(client_id INTEGER PRIMARY KEY, x BLOB NOT NULL);"
            "CREATE TABLE clients(client_id INTEGER PRIMARY KEY, split TEXT NOT NULL);"
            "CREATE TABLE feature_names(idx INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
        )
        conn.executemany("INSERT INTO feature_names VALUES (?, ?)", list(enumerate(FEATURES)))
        conn.executemany(
            "INSERT INTO features VALUES (?, ?)", [(int(i), X[k].astype("<f4").tobytes()) for k, i in enumerate(ids)]
        )
        conn.executemany("INSERT INTO clients VALUES (?, 'train')", [(int(i),) for i in ids])
    conn.close()
    return ids.astype(np.int64), X
