"""Home Credit data: the synthetic generator, the CSV import, the per-client features.

The files' names (KAGGLE_FILES) and their columns (kaggle_schema.json, read by load_schema) are owned here, for
the generator and the import alike.
"""

from __future__ import annotations

import json
from pathlib import Path

SCHEMA_PATH = Path(__file__).with_name("kaggle_schema.json")

# the eight CSV files of the Kaggle download, in the Kaggle order
KAGGLE_FILES = (
    "application_train.csv",
    "application_test.csv",
    "bureau.csv",
    "bureau_balance.csv",
    "previous_application.csv",
    "POS_CASH_balance.csv",
    "installments_payments.csv",
    "credit_card_balance.csv",
)


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, list[tuple[str, str]]]:
    """{file name: [(column, dtype), ...]} in Kaggle order from kaggle_schema.json; dtype in int64/float64/object."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return {name: [(c, t) for c, t in cols] for name, cols in raw.items()}
