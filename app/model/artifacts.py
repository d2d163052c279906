"""Small helpers for the model folder: PSI bins, .npy bytes (no pickle), data fingerprint, LightGBM names."""

from __future__ import annotations

import hashlib
import io

import numpy as np

from app.vectors import F32


def psi_bins(values: np.ndarray) -> dict[str, list[float]]:
    """Decile edges of the finite values and the fraction per bin.

    Bins: (-inf, e0], (e0, e1], ..., (ek, +inf), then NaN; index = searchsorted(edges, v, 'left'),
    NaN -> len(edges) + 1. So len(fractions) == len(edges) + 2 and they sum to 1.
    """
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    deciles = np.quantile(finite, np.linspace(0.1, 0.9, 9)) if len(finite) else np.array([], dtype=np.float64)
    edges = np.unique(deciles)
    idx = np.searchsorted(edges, v, side="left")
    idx[np.isnan(v)] = len(edges) + 1
    counts = np.bincount(idx, minlength=len(edges) + 2).astype(np.float64)
    fractions = counts / max(len(v), 1) if len(v) else counts
    return {"edges": [float(e) for e in edges], "fractions": [float(f) for f in fractions]}


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def fingerprint_arrays(X: np.ndarray, names: list[str]) -> str:
    h = hashlib.sha256()
    h.update("\n".join(names).encode("utf-8"))
    h.update(np.ascontiguousarray(X, dtype=F32).tobytes())
    return h.hexdigest()


def lgb_names(names: list[str]) -> list[str]:
    """LightGBM refuses some characters in feature names; the manifest keeps the real names."""
    bad = set('[]{}":,')
    return ["".join("_" if ch in bad or ch.isspace() else ch for ch in n) for n in names]
