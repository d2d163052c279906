"""The compiled model's C ABI: bind a library (model-<id12>.so) and score float32 rows through it.

Loading and verifying a model folder is app.scoring.bundle.ModelBundle's job (it checks the library's
sha256 before it is loaded, because loading a shared library runs its code). Imports only numpy,
ctypes and hashlib (no pandas, LightGBM or shap on the scoring path).
"""

from __future__ import annotations

import ctypes
import hashlib
from pathlib import Path

import numpy as np

from app.errors import CreditError


class ModelError(CreditError, RuntimeError):
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
    lib.credit_manifest_sha256.restype = ctypes.c_char_p
    lib.credit_manifest_sha256.argtypes = []
    lib.credit_refuses.restype = ctypes.c_int
    lib.credit_refuses.argtypes = [ctypes.c_double, ctypes.c_double]
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
    """A loaded model library (verified by app.scoring.bundle.ModelBundle.load, which builds this; load_model(dir)
    there is the shorthand)."""

    def __init__(self, lib: ctypes.CDLL, model_id: str, feature_names: list[str], so_path: Path) -> None:
        self._lib = lib
        self.model_id = model_id
        self.feature_names = feature_names
        self.n_features = len(feature_names)
        self.so_path = so_path

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
