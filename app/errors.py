"""The one base of the errors a user can act on.

Domain code (app/data, app/model, app/scoring, app/monitoring, ...) raises a subclass of `CreditError`
whose message says what is wrong and what to do; it never imports click. The command line turns any
`CreditError` into `Error: <message>` and exit status 1 in one place (`app.cli.options.CreditCommand`);
the HTTP layer has its own error shape (app/service/http.py).
"""

from __future__ import annotations


class CreditError(Exception):
    """A problem told in one message (file, line, column, setting... when known)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
