"""One rule for numbers the feature SQL cannot store: a feature is a finite float32 or NaN (missing).

Raw values are refused at import beyond the float32 range, but a derived feature can still overflow it:
AMT_CREDIT = 1e30 over AMT_INCOME_TOTAL = 1e-30 is 1e60, two bureau sums of 3e38 add up to 6e38, and SQLite
itself answers +Inf for a double that overflows. Stored as float32 they would all be +-inf.

The rule: **clamp to the float32 range**. A value above FLOAT32_MAX (+inf included) becomes FLOAT32_MAX, one
below -FLOAT32_MAX becomes -FLOAT32_MAX; NaN (SQL NULL) stays NaN. Why clamp rather than NULL: a ratio of 1e60
is a very large ratio, not a missing one. Every split a model learns sits between two finite float32 values,
so the clamped value takes exactly the branch +inf took (the decision does not move), whereas NaN would send
it down the missing-value branch; and a clamped value is a number the API can show (JSON has no inf) and
accept back (POST /score takes |x| <= FLOAT32_MAX).

The same rule runs everywhere a feature becomes a float32: the ingest (`app.data.features.pack_rows`, for
`credit ingest` and `credit ingest-csv`), the what-if recomputation (same function), and the display of a
stored vector (`display_value`, which also clamps an inf left by an older import, so what is shown is what
the model decides on).
"""

from __future__ import annotations

import math

import numpy as np

FLOAT32_MAX = float(np.finfo(np.float32).max)  # 3.4028234663852886e38


def to_feature_float32(values: np.ndarray) -> np.ndarray:
    """float32 copy of `values` (any float array) with every value clamped to [-FLOAT32_MAX, FLOAT32_MAX];
    NaN stays NaN. Clamping happens in float64, before the conversion, so nothing rounds up to inf."""
    wide = np.asarray(values, dtype=np.float64)
    return np.clip(wide, -FLOAT32_MAX, FLOAT32_MAX).astype(np.float32)


def display_value(v: float) -> float | None:
    """A stored feature value as shown by the API: None for NaN (missing), else the clamped number."""
    if math.isnan(v):
        return None
    return min(max(float(v), -FLOAT32_MAX), FLOAT32_MAX)
