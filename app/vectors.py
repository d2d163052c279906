"""The stored feature vector, owned here: `features.x` is the client's features as little-endian float32, one
4-byte value per name of `feature_names` (NaN = missing), and every reader and writer goes through this module.

    vector(blob)               the blob as a float32 array (read-only view, no copy)
    matrix(blobs, n_features)  many blobs as one n x n_features array
    to_blob(x)                 the array as the stored bytes
    read_vector(conn, id)      one client's vector from `features`, or None for an unknown client
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

F32 = np.dtype("<f4")
VECTOR_SQL = "SELECT x FROM features WHERE client_id = ?"


def vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=F32)


def matrix(blobs: Iterable[bytes], n_features: int) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), dtype=F32).reshape(-1, n_features)


def to_blob(x: np.ndarray) -> bytes:
    return np.asarray(x).astype(F32).tobytes()


def read_vector(conn, client_id: int) -> np.ndarray | None:
    row = conn.execute(VECTOR_SQL, (int(client_id),)).fetchone()
    return None if row is None else vector(row[0])
