"""The features export's Parquet format, owned here for the two layers that write it (app.scoring.batch's
`credit export`, app.data.distributed's `credit features`) and the batch scorer that reads it; and the one
read-and-check of a folder's format manifest (the features export's, `credit partition`'s sources)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

FEATURES_FILE = "_manifest/_features.json"
EXPORT_FORMAT = "credit-features-parquet/1"
PART_TEMPLATE = "part-{:05d}.parquet"


def features_table(ids: np.ndarray, X: np.ndarray):
    """A Parquet-ready table: client_id (int64) and x (a fixed-size list of float32, one per feature)."""
    import pyarrow as pa

    n, p = X.shape
    values = pa.array(np.ascontiguousarray(X, dtype=np.float32).reshape(-1), type=pa.float32())
    x = pa.FixedSizeListArray.from_arrays(values, p)
    return pa.Table.from_arrays([pa.array(np.asarray(ids, dtype=np.int64)), x], names=["client_id", "x"])


def read_format_manifest(
    folder: Path | str, file: str, expected_format: str, *, made_by: str, error: type[Exception]
) -> dict[str, Any]:
    """The JSON manifest `folder/file` of a folder written by the command `made_by`, checked to be of
    `expected_format`; a missing file, invalid JSON or another format raises `error` naming the file."""
    path = Path(folder) / file
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise error(f"{path} not found: is {folder} a `{made_by}` folder?") from None
    except ValueError as e:
        raise error(f"{path}: invalid JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != expected_format:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise error(f"{path}: format {found!r}, expected {expected_format!r}")
    return manifest
