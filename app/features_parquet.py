"""The features export's Parquet format, owned here for the two layers that write it (app.scoring.batch's
`credit export`, app.data.distributed's `credit features`) and the batch scorer that reads it."""

from __future__ import annotations

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
