"""CompiledModel: hash check before loading, identity checks, input validation, decisions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.model.compile import compile_model, prepare_model_dir
from app.scoring.bundle import ModelBundle, load_model
from app.scoring.library import ModelError, sha256_file

MODELS = Path(__file__).parent / "models"


def _build(name: str, dst: Path, threshold: float = 0.5) -> Path:
    d = prepare_model_dir(MODELS / f"{name}.txt", dst, threshold=threshold)
    compile_model(d, progress=False, flags=("-O1",), tl2cgen_reference=False, with_native=False)
    return d


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return _build("nan_missing", tmp_path_factory.mktemp("score") / "m", threshold=0.3)


@pytest.fixture
def model_dir(built, tmp_path) -> Path:
    d = tmp_path / "m"
    shutil.copytree(built, d, symlinks=True)
    return d


def _so(d: Path) -> Path:
    return d / json.loads((d / "manifest.json").read_text())["library"]["file"]


def test_load_and_attributes(model_dir):
    b = ModelBundle.load(model_dir)
    m = b.model
    man = json.loads((model_dir / "manifest.json").read_text())
    assert m.model_id == b.model_id == man["model_id"]
    assert b.threshold == 0.3
    assert m.n_features == len(m.feature_names) == 5
    assert m.so_path == _so(model_dir) == b.library_path
    assert b.decide(0.3) == "refuse" and b.decide(0.2999) == "accept"


def test_probabilities_finite_for_extreme_rows(model_dir):
    m = load_model(model_dir)
    X = np.array([[np.inf] * 5, [-np.inf] * 5, [np.nan] * 5, [3.4e38] * 5, [-3.4e38] * 5, [0.0] * 5], dtype=np.float32)
    p = m.predict(X)
    assert np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1))
    assert m.predict_row(X[0]) == p[0]


def test_input_validation(model_dir):
    m = load_model(model_dir)
    with pytest.raises(TypeError):
        m.predict(np.zeros((2, 5), dtype=np.float64))
    with pytest.raises(ValueError):
        m.predict(np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(ValueError):
        m.predict(np.zeros(5, dtype=np.float32))
    with pytest.raises(ValueError):
        m.predict(np.zeros((5, 4), dtype=np.float32).T)  # not C-contiguous
    with pytest.raises(ValueError):
        m.predict_row(np.zeros(6, dtype=np.float32))
    with pytest.raises(TypeError):
        m.predict_row([0.0] * 5)


def test_corrupted_library_refused(model_dir):
    so = _so(model_dir)
    data = bytearray(so.read_bytes())
    data[len(data) // 2] ^= 0xFF
    so.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="refusing to load.*expected sha256 [0-9a-f]{64}, found [0-9a-f]{64}"):
        load_model(model_dir)


def test_truncated_library_refused(model_dir):
    so = _so(model_dir)
    so.write_bytes(so.read_bytes()[:1000])
    with pytest.raises(ModelError, match="expected sha256"):
        load_model(model_dir)


def test_swapped_library_refused(model_dir, tmp_path):
    other = _build("none_only", tmp_path / "other")
    shutil.copy(_so(other), _so(model_dir))
    with pytest.raises(ModelError, match="expected sha256"):
        load_model(model_dir)
    # even with the manifest hash forged, the library's own model id gives it away
    man = json.loads((model_dir / "manifest.json").read_text())
    man["library"]["sha256"] = sha256_file(_so(model_dir))
    (model_dir / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ModelError, match="library is for model"):
        load_model(model_dir)


def test_missing_pieces(model_dir):
    _so(model_dir).unlink()
    with pytest.raises(ModelError, match="missing"):
        load_model(model_dir)
    man = json.loads((model_dir / "manifest.json").read_text())
    del man["library"]
    (model_dir / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ModelError, match="not compiled"):
        load_model(model_dir)
    (model_dir / "manifest.json").unlink()
    with pytest.raises(ModelError, match="no manifest"):
        load_model(model_dir)


def test_scoring_imports_no_heavy_modules(built):
    code = (
        "import sys, numpy as np; from app.scoring.bundle import load_model; "
        f"m = load_model({str(built)!r}); m.predict(np.zeros((3, 5), np.float32)); "
        "bad = [k for k in ('pandas', 'lightgbm', 'shap', 'sklearn') if k in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
