"""The client id rule, owned here for every layer: a whole number from 1 to 2**53, written with ASCII digits.

2**53 is the largest integer a JSON reader that uses doubles (JavaScript, many clients) reads exactly, so the API,
the CSV import, the outcome files and the command line all accept the same ids.
"""

from __future__ import annotations

import re

MAX_ID = 2**53
ID_PATTERN = re.compile(r"[1-9][0-9]{0,15}")  # digits only, no sign, no leading zero (16 digits hold 2**53)


def parse_id(text: str) -> int:
    """'100002' -> 100002; anything but ASCII digits without a leading zero, or outside 1 .. 2**53, is a ValueError."""
    if not ID_PATTERN.fullmatch(text) or int(text) > MAX_ID:
        raise ValueError(f"a client id is a whole number from 1 to 2**53 written with digits only, got {text[:40]!r}")
    return int(text)
