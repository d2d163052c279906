"""Progress bars on a terminal, plain periodic lines elsewhere (log files, pipes, CI).

tqdm redraws its bar with carriage returns; written to a file that is one ever-growing line of
redraws. `install()` (called by `credit` before any command module is imported) makes every
`from tqdm import tqdm` get `LineProgress` when standard error is not a terminal: the same
counters, one plain line at most every `CREDIT_PROGRESS_INTERVAL` seconds (default 10) and a
last line when the bar closes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import tqdm as _tqdm_module
from tqdm import tqdm as _tqdm

INTERVAL_ENV = "CREDIT_PROGRESS_INTERVAL"


class LineProgress(_tqdm):
    """tqdm that writes whole lines (no carriage return, no bar redraw)."""

    def __init__(self, *args, **kwargs):
        interval = float(os.environ.get(INTERVAL_ENV) or 10.0)
        kwargs["mininterval"] = max(float(kwargs.get("mininterval") or 0.1), interval)
        kwargs["maxinterval"] = max(float(kwargs.get("maxinterval") or 10.0), interval)
        kwargs["miniters"] = kwargs.get("miniters") or 1
        kwargs["ascii"] = True
        kwargs["dynamic_ncols"] = False
        kwargs["ncols"] = 100
        kwargs.setdefault("bar_format", "{desc}: {n_fmt}/{total_fmt} ({percentage:.0f}%) {elapsed} elapsed")
        if kwargs.get("total") is None and (not args or not hasattr(args[0], "__len__")):
            kwargs["bar_format"] = "{desc}: {n_fmt} {elapsed} elapsed"
        self._last_line = None
        self._lines_on = kwargs.get("disable", False) is False  # None: tqdm's "disable when not a terminal"
        super().__init__(*args, **kwargs)
        self._lines_on = self._lines_on and not self.disable

    def display(self, msg=None, pos=None):
        if not getattr(self, "_lines_on", False):
            return True
        line = msg or self.__str__()
        if line != self._last_line:
            self.fp.write(line + "\n")
            self.fp.flush()
            self._last_line = line
        return True

    def clear(self, nolock=False):
        pass

    def close(self):
        if getattr(self, "_lines_on", False):
            self.display()  # the final state, once
            self._lines_on = False
        if not hasattr(self, "fp"):  # a disabled bar
            return super().close()
        fp, self.fp = self.fp, _Discard()  # tqdm's own closing newline or carriage return
        try:
            super().close()
        finally:
            self.fp = fp


class _Discard:
    def write(self, _s):
        return 0

    def flush(self):
        pass


def plain(stream=None) -> bool:
    """Whether progress on `stream` (default standard error) should be plain lines."""
    stream = stream if stream is not None else sys.stderr
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return True


def install() -> None:
    """Make `from tqdm import tqdm` give LineProgress when standard error is not a terminal."""
    if plain():
        _tqdm_module.tqdm = LineProgress
        import tqdm.auto

        tqdm.auto.tqdm = LineProgress


def say(progress: bool | Callable[[str], None], msg: str) -> None:
    """A progress line: given to `progress` when it is a function (the command line's), printed on standard
    error when it is True, dropped when False."""
    if callable(progress):
        progress(msg)
    elif progress:
        print(msg, file=sys.stderr, flush=True)
