"""The stamps of the files a scoring request depends on, re-read only when the kernel said one may have changed.

Every scoring request checks that the data file and the loaded libraries are still the ones it scores with
(app.service.state `Service.conn`, app.service.model_holder `ModelHolder.follow`): their stamp (device, inode,
size, mtime, ctime; app.scoring.db.file_stamp) against the one remembered. That was one `stat` system call per
file per request (issue 34). `FileStamps.stamp(path)` returns the same tuple without a system call while nothing
happened to the file: each path read is watched with Linux inotify (the file itself: written, truncated,
touched, its links changed, deleted or moved; its folder: an entry of that name created, removed or renamed
over), and the inotify descriptor is read by the event loop that serves the requests (`attach`). An event marks
the path stale; the next `stamp(path)` re-reads it with one stat (and watches the new file, after a re-import).

Why nothing stale is scored: the kernel queues an event in the system call that changes the file, before that
call returns. A request sent after the change reaches the loop no earlier than that event: the poll that reports
the request's bytes also reports the inotify descriptor readable, and the loop runs every ready descriptor's
callback before the request's task takes its first step (asyncio and uvloop alike). So the rule is the same as
with a stat per request: a request sent after the change is answered from the new file (tests/test_file_watch.py
pins it with a re-import, an in-place write and a library rewritten under a served app).

Where a path cannot be watched the stamp is read by a stat at every call, as before: outside a running event
loop (before `attach`, after `detach`, a Service used without its lifespan), on a system without inotify, for a
path reached through a symbolic link (a link changed above it would not be seen), for a path whose folder is
missing, and after the kernel's event queue overflowed (every path turns stale, then is re-watched). Not seen: a
change made on another machine (a network file system: serve from a local disk), and a folder two or more levels
above the file renamed or replaced (the file's own folder moved or deleted is seen).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.scoring.db import file_stamp

__all__ = ["FileStamps"]

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF, IN_Q_OVERFLOW, IN_IGNORED = 0x400, 0x800, 0x4000, 0x8000
FILE_EVENTS = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF
FOLDER_EVENTS = IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF
EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then len bytes of name


def _libc() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1  # noqa: B018 - AttributeError where there is no inotify
        libc.inotify_add_watch  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


class _Entry:
    """One path: `state` = (its stamp as last read, whether that is still the file's), replaced whole so that a
    reader on another thread never sees a stamp half-published; `seq` counts the events seen for the path."""

    __slots__ = ("seq", "state")

    def __init__(self) -> None:
        self.state: tuple[tuple[int, ...] | None, bool] = (None, False)
        self.seq = 0


class FileStamps:
    """`stamp(path)`: app.scoring.db.file_stamp(path), from memory while inotify reports no change (module
    docstring). Attach it to the serving event loop (`attach`) and detach it before the loop ends."""

    def __init__(self, read: Callable[[Any], tuple[int, ...] | None] = file_stamp) -> None:
        self._read = read
        self._entries: dict[Any, _Entry] = {}
        self._watches: dict[int, list[tuple[Any, bytes | None]]] = {}  # wd -> (path, name in folder or None)
        self._lock = threading.Lock()  # the slow path: re-reading a stamp, (re)watching
        self._fd: int | None = None
        self._loop: Any = None
        self.reads = 0  # stats made (for the tests and the benchmarks)

    @property
    def watching(self) -> bool:
        return self._fd is not None

    def stamp(self, path: Any) -> tuple[int, ...] | None:
        """The path's stamp now (None: no file there)."""
        entry = self._entries.get(path)
        if entry is not None:
            stamp, fresh = entry.state
            if fresh:
                return stamp
        return self._reread(path)

    def attach(self, loop: Any) -> None:
        """Watch from now on, the inotify descriptor read by `loop` (the loop serving the requests)."""
        libc = _libc()
        if libc is None or self._fd is not None:
            return
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            return
        with self._lock:
            self._forget_all()
            self._fd, self._loop, self._libc = fd, loop, libc
        loop.add_reader(fd, self._drain)

    def detach(self) -> None:
        """Stop watching (every later `stamp` is a stat) and close the descriptor."""
        with self._lock:
            fd, loop, self._fd, self._loop = self._fd, self._loop, None, None
            self._forget_all()
        if fd is None:
            return
        with contextlib.suppress(Exception):
            loop.remove_reader(fd)
        os.close(fd)

    # ---- the slow path ----------------------------------------------------------------------------------------

    def _reread(self, path: Any) -> tuple[int, ...] | None:
        with self._lock:
            entry = self._entries.get(path)
            if entry is None:
                entry = self._entries[path] = _Entry()
            seq = entry.seq  # the watch first, then the stat: a change after the stat is an event (seq moves)
            watched = self._fd is not None and self._watch(path)
        stamp = self._read(path)
        with self._lock:
            self.reads += 1
            entry.state = (stamp, watched and entry.seq == seq and self._fd is not None)
        return stamp

    def _watch(self, path: Any) -> bool:
        """Watch the path's folder (entries of its name) and the file now at the path; False: cannot be watched."""
        p = Path(path)
        absolute = os.path.abspath(p)
        if os.path.realpath(absolute) != absolute:  # a link on the way: a change above it would go unseen
            return False
        folder, name = os.path.dirname(absolute), os.path.basename(absolute).encode()
        if not self._add(folder, FOLDER_EVENTS, path, name):
            return False
        self._add(absolute, FILE_EVENTS, path, None)  # no file there (None stamp): its creation is a folder event
        return True

    def _add(self, target: str, mask: int, path: Any, name: bytes | None) -> bool:
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(target), mask)
        if wd < 0:
            return False
        watchers = self._watches.setdefault(wd, [])
        if (path, name) not in watchers:
            watchers.append((path, name))
        return True

    def _forget_all(self) -> None:
        for entry in self._entries.values():
            self._stale(entry)
        self._watches.clear()

    @staticmethod
    def _stale(entry: _Entry) -> None:
        """(the caller holds _lock)"""
        entry.seq += 1
        entry.state = (entry.state[0], False)

    # ---- the loop side ----------------------------------------------------------------------------------------

    def _drain(self) -> None:
        """On the event loop, when the kernel has events: mark the paths they concern stale."""
        fd = self._fd
        if fd is None:
            return
        while True:
            try:
                data = os.read(fd, 65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                with self._lock:
                    self._forget_all()
                return
            if not data:
                return
            self._mark(data)

    def _mark(self, data: bytes) -> None:
        with self._lock:
            offset = 0
            while offset + EVENT.size <= len(data):
                wd, mask, _cookie, length = EVENT.unpack_from(data, offset)
                name = data[offset + EVENT.size : offset + EVENT.size + length].rstrip(b"\0")
                offset += EVENT.size + length
                if mask & IN_Q_OVERFLOW:  # events were lost: nothing read before is trusted
                    self._forget_all()
                    continue
                watchers = self._watches.get(wd, ())
                for path, wanted in watchers:
                    if wanted is None or wanted == name or mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED):
                        entry = self._entries.get(path)
                        if entry is not None:
                            self._stale(entry)
                if mask & IN_IGNORED:  # the watch is gone (its file deleted): re-watched at the next read
                    self._watches.pop(wd, None)
