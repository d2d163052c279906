"""Load the compiled model (model_dir/model-<id12>.so) and score float32 rows through its C ABI.

The library's sha256 is checked against manifest["library"]["sha256"] before it is loaded, because
loading a shared library runs its code. Imports only numpy, ctypes, json, hashlib (no pandas,
LightGBM or shap on the scoring path).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
from pathlib import Path

import numpy as np

MANIFEST = "manifest.json"


class ModelError(RuntimeError):
    """The model folder is missing, inconsistent, or its library does not match the manifest."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def bind_library(so_path: Path) -> ctypes.CDLL:
    """dlopen a model library and declare its C ABI. Does NOT check its hash: callers do."""
    lib = ctypes.CDLL(str(so_path))
    lib.credit_num_features.restype = ctypes.c_int32
    lib.credit_num_features.argtypes = []
    lib.credit_predict_row.restype = ctypes.c_double
    lib.credit_predict_row.argtypes = [ctypes.c_void_p]
    lib.credit_predict_batch.restype = None
    lib.credit_predict_batch.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    lib.credit_model_id.restype = ctypes.c_char_p
    lib.credit_model_id.argtypes = []
    lib.credit_threshold.restype = ctypes.c_double
    lib.credit_threshold.argtypes = []
    if hasattr(lib, "credit_shap_batch"):  # TreeSHAP (app/model/codegen_shap.py); absent in older libraries
        lib.credit_shap_row.restype = None
        lib.credit_shap_row.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.credit_shap_batch.restype = None
        lib.credit_shap_batch.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    return lib


def as_rows(X: object, n_features: int) -> np.ndarray:
    """Validate a batch: float32, 2-D, C-contiguous, n_features columns (no silent copies of other dtypes)."""
    if not isinstance(X, np.ndarray):
        raise TypeError(f"expected a numpy float32 array, got {type(X).__name__}")
    if X.dtype != np.float32:
        raise TypeError(f"expected float32 features, got {X.dtype}")
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"expected shape (n, {n_features}), got {X.shape}")
    if not X.flags.c_contiguous:
        raise ValueError("features must be C-contiguous (np.ascontiguousarray)")
    return X


def predict_with(lib: ctypes.CDLL, X: np.ndarray) -> np.ndarray:
    out = np.empty(X.shape[0], dtype=np.float64)
    if X.shape[0]:
        lib.credit_predict_batch(X.ctypes.data, X.shape[0], out.ctypes.data)
    return out


def shap_with(lib: ctypes.CDLL, X: np.ndarray) -> np.ndarray:
    """TreeSHAP of float32 rows: float64[n, n_features + 1], last column the expected value (raw margin)."""
    out = np.empty((X.shape[0], X.shape[1] + 1), dtype=np.float64)
    if X.shape[0]:
        lib.credit_shap_batch(X.ctypes.data, X.shape[0], out.ctypes.data)
    return out


class CompiledModel:
    """A verified, loaded model library plus its manifest."""

    def __init__(self, lib: ctypes.CDLL, manifest: dict, so_path: Path) -> None:
        self._lib = lib
        self.manifest = manifest
        self.so_path = so_path
        self.model_id: str = manifest["model_id"]
        self.threshold: float = float(manifest["threshold"])
        self.feature_names: list[str] = list(manifest["features"])
        self.n_features: int = len(self.feature_names)

    @classmethod
    def load(cls, model_dir: Path | str) -> CompiledModel:
        model_dir = Path(model_dir)
        manifest_path = model_dir / MANIFEST
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{manifest_path}: no manifest; run `credit train` then `credit compile`") from None
        except (OSError, ValueError) as exc:
            raise ModelError(f"{manifest_path}: unreadable manifest: {exc}") from None
        lib_info = manifest.get("library")
        if not isinstance(lib_info, dict) or "file" not in lib_info or "sha256" not in lib_info:
            raise ModelError(f"{manifest_path}: the model is not compiled; run `credit compile --model {model_dir}`")
        name = str(lib_info["file"])
        if "/" in name or name.startswith("."):
            raise ModelError(f"{manifest_path}: library file name {name!r} is not a plain file name")
        so_path = model_dir / name
        if not so_path.is_file():
            raise ModelError(f"{so_path}: compiled library is missing; run `credit compile --model {model_dir}`")
        expected = str(lib_info["sha256"])
        found = sha256_file(so_path)
        if found != expected:
            raise ModelError(
                f"{so_path}: refusing to load: manifest expected sha256 {expected}, found {found} "
                f"(the library was modified or replaced; run `credit compile --model {model_dir}`)"
            )
        try:
            lib = bind_library(so_path)
        except (OSError, AttributeError) as exc:
            raise ModelError(f"{so_path}: cannot load compiled library: {exc}") from None
        lib_id = lib.credit_model_id().decode("ascii", "replace")
        if lib_id != manifest.get("model_id"):
            raise ModelError(f"{so_path}: library is for model {lib_id}, manifest says {manifest.get('model_id')}")
        n = lib.credit_num_features()
        if n != len(manifest.get("features", [])):
            raise ModelError(f"{so_path}: library expects {n} features, manifest lists {len(manifest['features'])}")
        return cls(lib, manifest, so_path)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Probabilities of default (float64[n]) for float32 rows (n x n_features, C-contiguous)."""
        return predict_with(self._lib, as_rows(X, self.n_features))

    def predict_row(self, x: np.ndarray) -> float:
        if not isinstance(x, np.ndarray) or x.dtype != np.float32:
            raise TypeError("expected a float32 numpy vector")
        if x.shape != (self.n_features,):
            raise ValueError(f"expected shape ({self.n_features},), got {x.shape}")
        x = np.ascontiguousarray(x)
        return float(self._lib.credit_predict_row(x.ctypes.data))

    def decision(self, p: float) -> str:
        return "refuse" if p >= self.threshold else "accept"
