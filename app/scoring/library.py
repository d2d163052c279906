"""The compiled model's C ABI: bind a library (model-<id12>.so) and score float32 rows through it.

Loading and verifying a model folder is app.scoring.bundle.ModelBundle's job (it checks the library's
sha256 before it is loaded, because loading a shared library runs its code). Imports only numpy,
ctypes and hashlib (no pandas, LightGBM or shap on the scoring path).

`private_copy(path)` reads a library ONCE into an anonymous, sealed in-memory file (memfd) and hashes those
bytes: the hash checked is the hash of the code loaded, and no one can truncate or rewrite what the process maps
(truncating a mapped library on disk kills the process with SIGBUS). Where memfd is unavailable, a copy in a
private 0700 temporary folder is used instead.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import hashlib
import os
import shutil
import tempfile
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


class PrivateImage:
    """A library's bytes in a file only this process can reach: `path` is what dlopen / load_extension are given.

    Kept open for the life of the process (a mapped library outlives its file descriptor, but SQLite's
    load_extension opens the same path again for every new connection)."""

    def __init__(self, fd: int | None, path: str, sha256: str, size: int) -> None:
        self.fd = fd
        self.path = path
        self.sha256 = sha256
        self.size = size

    def read(self) -> bytes:
        """The verified bytes (e.g. to ship to batch workers) without reading the file on disk again."""
        if self.fd is not None:
            return os.pread(self.fd, self.size, 0)
        return Path(self.path).read_bytes()

    def close(self) -> None:
        """Only for an image that was never loaded (a failed verification); a shared image stays open."""
        if self.fd is not None and _IMAGES.get(self.sha256) is not self:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


_SEALS = getattr(fcntl, "F_SEAL_SEAL", 0) | getattr(fcntl, "F_SEAL_SHRINK", 0) | getattr(fcntl, "F_SEAL_GROW", 0)
_SEALS |= getattr(fcntl, "F_SEAL_WRITE", 0)
_PRIVATE_DIR: list[Path] = []


def private_copy(so_path: Path | str) -> PrivateImage:
    """Read `so_path` once, hash the bytes read, and put them where only this process can reach them."""
    data = Path(so_path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    cached = _IMAGES.get(digest)
    if cached is not None and cached.fd is not None:  # the same bytes, sealed: one copy per library per process
        return cached
    image = _new_image(so_path, data, digest)
    if image.fd is not None:
        _IMAGES[digest] = image
    return image


_IMAGES: dict[str, PrivateImage] = {}


def _new_image(so_path: Path | str, data: bytes, digest: str) -> PrivateImage:
    name = Path(so_path).name
    if hasattr(os, "memfd_create"):
        flags = os.MFD_CLOEXEC | getattr(os, "MFD_ALLOW_SEALING", 0)
        fd = os.memfd_create(f"credit-{name}", flags)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if _SEALS and hasattr(fcntl, "F_ADD_SEALS"):
                with contextlib.suppress(OSError):
                    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
        except BaseException:
            os.close(fd)
            raise
        return PrivateImage(fd, f"/proc/self/fd/{fd}", digest, len(data))
    if not _PRIVATE_DIR:
        _PRIVATE_DIR.append(Path(tempfile.mkdtemp(prefix="credit-libs-")))
        atexit.register(shutil.rmtree, _PRIVATE_DIR[0], True)
    fd, path = tempfile.mkstemp(dir=_PRIVATE_DIR[0], prefix=f"{digest[:16]}-", suffix=".so")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o500)
    return PrivateImage(None, path, digest, len(data))


def bind_library(so_path: Path | str) -> ctypes.CDLL:
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

    def __init__(
        self,
        lib: ctypes.CDLL,
        model_id: str,
        feature_names: list[str],
        so_path: Path,
        image: PrivateImage | None = None,
    ) -> None:
        self._lib = lib
        self.model_id = model_id
        self.feature_names = feature_names
        self.n_features = len(feature_names)
        self.so_path = so_path  # the file on disk it was read from (messages, change detection)
        self.image = image  # the private copy actually loaded

    @property
    def load_path(self) -> str:
        """What SQLite's load_extension must be given: the private copy (the same object dlopen already holds)."""
        return self.image.path if self.image is not None else str(self.so_path)

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
