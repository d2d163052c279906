"""The one rule for a client id, shared by the API, the CLI, the outcome imports and `credit ingest-csv`.

A client id is written with ASCII digits only, without a leading zero, and lies in 1 .. 2**53 (the largest
integer a JSON client reads exactly). `100002` is an id; `0100002`, `+100002`, ` 100002`, `100002.0` and
`١٠٠٠٠٢` (Arabic-Indic digits, which Python's int() would accept) are not.

This module sits below every layer (it imports nothing from the project), so the data layer and the HTTP
layer use the same rule without one importing the other.
"""

from __future__ import annotations

import re

MAX_ID = 2**53  # largest client id accepted (exact in a JSON double)
ID_PATTERN = re.compile(r"[1-9][0-9]{0,15}")  # [0-9] is ASCII only (\d would take any Unicode digit)
ID_RULE = "a whole number from 1 to 2**53 written with the digits 0-9, without a leading zero"


def is_client_id(number: int) -> bool:
    """An integer (not a bool) in 1 .. MAX_ID."""
    return isinstance(number, int) and not isinstance(number, bool) and 1 <= number <= MAX_ID


def parse_client_id(text: str) -> int:
    """The id written in `text`; ValueError (naming the rule) for anything else."""
    if not isinstance(text, str) or not ID_PATTERN.fullmatch(text) or int(text) > MAX_ID:
        raise ValueError(f"client_id must be {ID_RULE}, got {str(text)[:40]!r}")
    return int(text)
