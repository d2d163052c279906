"""The serving folder: the one owner of its links, layout, journal, lock and history of champions.

    compiled/                        settings.model_dir (CREDIT_MODEL_DIR); layout in app/scoring/layout.py
      bundles/<id12>-<stamp>/        one immutable folder per installed model
      champion, challenger, previous links; manifest.json, model.txt, score.so... -> champion/...
      .lifecycle.lock                held (flock) by the one life-cycle command running; names its holder
      .txn/                          the journal of the life-cycle command under way (absent when none)
      .servers/<host>-<pid>.json     each running API worker's champion (app/service/registry.py)

Every life-cycle command (`credit compile --challenger`, `credit promote`, `credit promote --rollback`) goes
through `ServingFolder` and runs under its lock (`lock`; the loser waits up to a bound, then fails naming the
holder), inside a journal (`_transaction`): before a name of the folder is changed its old state (link text,
regular file kept by a hard link, or absence) is written to .txn/, and every new bundle folder is noted. A
failure at any step (gcc, a parity gate, verification, a full disk, Ctrl-C) restores every name and removes what
was created; a command killed outright (kill -9, power loss) leaves .txn/, which the next life-cycle command
rolls back before it starts (or completes, when its history row was written). Files that are not model files
(compiled/README.md, anything else tracked) are never touched.

The history of champions lives in the operational store (table champion_history, sql/store/005_...): who, when,
from, to, the command. `rollback` walks back along it (a stack: each promote pushes the champion it replaced,
each rollback pops), so running it twice goes two champions back and never toggles; `previous` mirrors the
top of that stack. `credit train` and `credit compile` aimed at a serving folder are refused with the commands to
run instead (`refuse_direct_write`): a model is only ever put in service by the guarded switch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import getpass
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from app.files import atomic_write_json
from app.scoring import layout
from app.scoring.bundle import MANIFEST, ModelBundle, ModelError, read_manifest

__all__ = [
    "LOCK_FILE",
    "MODEL_FILES",
    "LifecycleBusyError",
    "ServingFolder",
    "refuse_direct_write",
]

LOCK_FILE = ".lifecycle.lock"
JOURNAL_DIR = ".txn"
LOCK_WAIT_SECONDS = 30.0
# the files `credit train` and `credit compile` write (besides model-<id12>.so and build/): the only names of the
# serving folder's top level that a life-cycle command links to the champion
MODEL_FILES = (
    MANIFEST,
    "model.txt",
    "score.so",
    "reference.npy",
    "reference_scores.npy",
    "report.html",
    "model_card.md",
    "fairness.json",
)


class LifecycleBusyError(ModelError):
    """Another life-cycle command holds the serving folder's lock for longer than the caller waits."""


def _step(name: str) -> None:
    """A named point of a life-cycle command (tests inject failures here to prove each step is all or nothing)."""


def refuse_direct_write(model_dir: Path | str, command: str) -> None:
    """`credit train` / `credit compile` must not write into a serving folder: that is how a retrain split the
    system (the sqlite3 shell saw the new library while the champion link kept the old one). Raise with the
    commands that put a new model in service through the guarded switch."""
    model_dir = Path(model_dir)
    if os.path.lexists(model_dir / "champion"):
        champion = layout.role_dir(model_dir, "champion")
        what = f"a serving folder (champion {champion.name if champion is not None else '?'})"
    else:
        servers = live_servers(model_dir)
        if not servers:
            return
        what = f"served by the running API (pid {', '.join(str(r.get('pid')) for r in servers)})"
    raise ModelError(
        f"{model_dir} is {what}: `{command}` would change what one entry point "
        "scores with and not the others. Train and compile the new model in a folder of its own, then install "
        "and promote it:\n"
        f"  credit train --model models/next ...\n"
        f"  credit compile --model models/next --challenger --into {model_dir}\n"
        f"  credit promote --model {model_dir}"
    )


def _who() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def _command_line() -> str:
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return " ".join([prog, *sys.argv[1:]])


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")


class _Journal:
    """What a life-cycle command changed, written down before each change, so it can be undone."""

    def __init__(self, folder: Path, txn: str) -> None:
        self.folder = folder
        self.dir = folder / JOURNAL_DIR
        self.txn = txn
        self.entries: list[dict[str, str]] = []
        self.seen: set[str] = set()

    def start(self) -> None:
        self.dir.mkdir()
        self._save()

    def _save(self) -> None:
        atomic_write_json(self.dir / "journal.json", {"txn": self.txn, "entries": self.entries})

    def before_change(self, name: str) -> None:
        """Record the state of folder/name before its first change in this command."""
        if name in self.seen:
            return
        self.seen.add(name)
        path = self.folder / name
        if path.is_symlink():
            entry = {"name": name, "kind": "link", "target": os.readlink(path)}
        elif path.is_file():
            os.link(path, self.dir / f"file-{len(self.entries)}")
            entry = {"name": name, "kind": "file", "backup": f"file-{len(self.entries)}"}
        elif os.path.lexists(path):
            raise ModelError(f"{path}: neither a file nor a link; not changed")
        else:
            entry = {"name": name, "kind": "absent"}
        self.entries.append(entry)
        self._save()

    def created(self, path: Path) -> None:
        """A folder created by this command (removed on rollback)."""
        self.entries.append({"name": str(path.relative_to(self.folder)), "kind": "created"})
        self._save()

    def rollback(self) -> None:
        for entry in reversed(self.entries):
            self._undo(entry)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _undo(self, entry: dict[str, str]) -> None:
        for attempt in range(3):  # a transient failure (the disk that just filled up) gets two more chances
            try:
                self._undo_once(entry)
                return
            except OSError:
                if attempt == 2:
                    raise
                time.sleep(0.05)

    def _undo_once(self, entry: dict[str, str]) -> None:
        path = self.folder / entry["name"]
        kind = entry["kind"]
        if kind == "created":
            shutil.rmtree(path, ignore_errors=True)
        elif kind == "link":
            layout.set_link(self.folder, entry["name"], entry["target"])
        elif kind == "absent":
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        elif kind == "file":
            tmp = self.folder / f".{entry['name']}.restore.tmp"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.link(self.dir / entry["backup"], tmp)
            try:
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise

    def commit(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> _Journal | None:
        path = folder / JOURNAL_DIR / "journal.json"
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            if (folder / JOURNAL_DIR).exists():  # died before the first entry was written: nothing changed
                journal = cls(folder, "")
                return journal
            return None
        journal = cls(folder, str(raw.get("txn", "")))
        journal.entries = list(raw.get("entries", []))
        return journal


def _files_to_copy(folder: Path, library: str | None) -> list[Path]:
    """The model files of a model folder (MODEL_FILES and the files its manifest names) and its library."""
    names = set(MODEL_FILES)
    with contextlib.suppress(ModelError):
        manifest = read_manifest(folder)[0]
        if manifest.reference is not None:
            names |= {manifest.reference.file, manifest.reference.scores_file} - {""}
    if library:
        names.add(library)
    out = []
    for name in sorted(names):
        entry = folder / name
        if name == "score.so" or "/" in name or entry.is_symlink() or not entry.is_file():
            continue
        out.append(entry)
    return out


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class ServingFolder:
    """A serving folder (or a plain model folder about to become one) and the operational store that keeps its
    history. `who` and `command` are what the history records (default: the user@host and this process's
    command line)."""

    def __init__(
        self,
        path: Path | str,
        store_path: Path | str | None = None,
        *,
        who: str | None = None,
        command: str | None = None,
        lock_wait: float = LOCK_WAIT_SECONDS,
    ) -> None:
        self.path = Path(path)
        self.store_path = Path(store_path) if store_path is not None else None
        self.who = who or _who()
        self.command = command or _command_line()
        self.lock_wait = lock_wait
        self._journal: _Journal | None = None
        self._pending: list[tuple] = []  # history rows of the command under way, written when it succeeds
        self._notes: list[str] = []

    # ------------------------------------------------------------ reading

    @property
    def is_serving(self) -> bool:
        return os.path.lexists(self.path / "champion")

    def role_dir(self, role: str) -> Path | None:
        return layout.role_dir(self.path, role)

    def status(self) -> dict[str, str | None]:
        """role -> model id (None when absent)."""
        out: dict[str, str | None] = {}
        for role in layout.ROLES:
            folder = self.role_dir(role)
            out[role] = None
            if folder is not None:
                with contextlib.suppress(ModelError):
                    out[role] = read_manifest(folder)[0].model_id
        return out

    def notes(self) -> list[str]:
        """What the last command noticed on the way (a recovered journal...)."""
        return list(self._notes)

    # ------------------------------------------------------------ the lock

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder's life-cycle lock (waiting at most `lock_wait` seconds), then finish or undo what a
        killed command left (.txn/)."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        held = False
        try:
            deadline = time.monotonic() + self.lock_wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held = True
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown"
                        raise LifecycleBusyError(
                            f"{self.path}: another life-cycle command holds {LOCK_FILE} ({holder}); waited "
                            f"{self.lock_wait:g} s. Nothing was changed: run this command again when it is done"
                        ) from None
                    time.sleep(0.05)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}, {self.who}, since {_now()}: {self.command}\n".encode(), 0)
            self._recover()
            yield
        finally:
            if held:  # a command that only waited leaves the holder's description alone
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
            os.close(fd)  # releases the flock

    def _recover(self) -> None:
        journal = _Journal.load(self.path)
        if journal is None:
            return
        if journal.txn and journal.txn in self._recorded_txns():
            journal.commit()
            self._notes.append(f"completed an interrupted life-cycle command (journal {journal.txn[:8]})")
        else:
            journal.rollback()
            self._notes.append("undid an interrupted life-cycle command (its journal was left in .txn/)")

    # ------------------------------------------------------------ the journal

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[_Journal]:
        journal = _Journal(self.path, uuid.uuid4().hex)
        self._journal = journal
        self._pending = []
        try:
            journal.start()
            yield journal
            self._write_history()  # the last step: a failure here still undoes every change
        except BaseException:
            journal.rollback()
            raise
        else:
            journal.commit()
        finally:
            self._journal = None
            self._pending = []

    def _set(self, name: str, target: str | None) -> None:
        assert self._journal is not None, "a life-cycle change outside a transaction"
        self._journal.before_change(name)
        layout.set_link(self.path, name, target)

    def _publish(self, prefix: str, fill: Callable[[Path], ModelBundle], name: str | None = None) -> Path:
        """A new bundle folder: `fill` writes and verifies it in a hidden folder, renamed into place in one step."""
        assert self._journal is not None
        root = self.path / layout.BUNDLES
        if not root.is_dir():
            self._journal.before_change(layout.BUNDLES)
            root.mkdir()
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=prefix))
        self._journal.created(tmp)
        bundle = fill(tmp)
        final = root / (name or f"{bundle.model_id[:12]}-{_stamp()}")
        self._journal.created(final)
        _step("publish")
        os.rename(tmp, final)
        return final

    def _link_root_names(self) -> None:
        """The model files' plain names at the top (manifest.json, score.so...) -> champion/NAME; other files
        (README.md, anything tracked) are never touched."""
        champion = self.role_dir("champion")
        if champion is None or champion == self.path:
            return
        for name in sorted({p.name for p in _files_to_copy(champion, None)} | {"score.so"}):
            if os.path.lexists(champion / name):
                if os.path.islink(self.path / name) and os.readlink(self.path / name) == f"champion/{name}":
                    continue
                self._set(name, f"champion/{name}")
            elif os.path.islink(self.path / name):
                self._set(name, None)  # a file the new champion does not have must not show the old one's

    # ------------------------------------------------------------ adopting a plain folder

    def _adopt(self) -> Path:
        """Give a plain model folder the versioned layout (no-op when it has it); returns the champion bundle."""
        if self.is_serving:
            return self.role_dir("champion")  # type: ignore[return-value]
        bundle = ModelBundle.load(self.path)  # verified before anything is linked
        _step("adopt.verify")

        def fill(tmp: Path) -> ModelBundle:
            for src in _files_to_copy(self.path, bundle.library_path.name):
                _link_or_copy(src, tmp / src.name)
            for link in ("score.so", layout.CHALLENGER_LINK):
                layout.set_link(tmp, link, bundle.library_path.name)
            return ModelBundle.load(tmp)

        final = self._publish(".adopt-", fill)
        _step("adopt.link")
        self._set("champion", layout.relative(self.path, final))
        _step("adopt.names")
        self._link_root_names()
        self._record("adopt", None, bundle.model_id, None, final.name)
        return final

    # ------------------------------------------------------------ life-cycle commands

    def install_challenger(self, src: Path | str, compile_fn: Callable[..., dict]) -> ModelBundle:
        """Compile the model trained in `src` into a new bundle and make it the challenger (all or nothing)."""
        src = Path(src)
        if os.path.realpath(src) == os.path.realpath(self.path):
            raise ModelError(
                f"{src}: the challenger must be trained in its own folder (e.g. `credit train --model models/next`), "
                f"not in the serving folder {self.path}"
            )
        new_manifest = read_manifest(src)[0]  # a clear error before anything is created or compiled
        with self.lock():
            current = self.status()
            for role in ("champion", "challenger"):
                if current[role] == new_manifest.model_id:
                    raise ModelError(f"{src}: model {new_manifest.model_id[:12]} is already the {role}; nothing done")
            final_name = f"{new_manifest.model_id[:12]}-{_stamp()}"
            compile_it = self._shown_as(compile_fn, self.path / layout.BUNDLES / final_name)
            champion = ModelBundle.load(self.path)
            with self._transaction():

                def fill(tmp: Path) -> ModelBundle:
                    _step("install.copy")
                    for path in _files_to_copy(src, None):  # no library: compiled afresh below
                        shutil.copy2(path, tmp / path.name)
                    if not (tmp / MANIFEST).is_file():
                        raise ModelError(f"{src}: no {MANIFEST}")
                    _step("install.compile")
                    lib = compile_it(tmp)  # the parity gates of `credit compile`
                    for link in ("score.so", layout.CHALLENGER_LINK):
                        layout.set_link(tmp, link, lib["file"])
                    shutil.rmtree(tmp / "build", ignore_errors=True)
                    _step("install.verify")
                    bundle = ModelBundle.load(tmp)
                    if bundle.model_id == champion.model_id:
                        raise ModelError(f"{src}: model {bundle.model_id[:12]} is already the champion")
                    if bundle.feature_names != champion.feature_names:
                        raise ModelError(
                            f"{src}: the challenger's {bundle.n_features} features are not the champion's "
                            f"{champion.n_features} (same names in the same order are required to shadow-score)"
                        )
                    return bundle

                final = self._publish(".new-", fill, final_name)  # hidden until renamed; nothing links to it yet
                self._adopt()  # the links appear only now, once the challenger is compiled and verified
                _step("install.link")
                self._set("challenger", layout.relative(self.path, final))
                self._record("install", current["challenger"], new_manifest.model_id, None, final.name)
            return ModelBundle.load(final)

    @staticmethod
    def _shown_as(compile_fn: Callable[..., dict], final: Path) -> Callable[[Path], dict]:
        """`compile_fn` told to name the bundle's final folder in what it prints, when it can (`shown_as`): the
        hidden folder it builds in is renamed at the end."""
        import inspect

        try:
            takes = "shown_as" in inspect.signature(compile_fn).parameters
        except (TypeError, ValueError):
            takes = False
        return (lambda tmp: compile_fn(tmp, shown_as=final)) if takes else compile_fn

    def promote(self) -> tuple[str, str]:
        """Make the challenger the champion; returns (old champion id, new champion id)."""
        with self.lock():
            return self._switch("challenger")

    def rollback(self) -> tuple[str, str]:
        """Go back one champion along the history; returns (rolled-back id, restored id)."""
        with self.lock():
            return self._switch("previous")

    def plan(self, action: str) -> tuple[str, str]:
        """What `promote` / `rollback` would switch (old id, new id), verified, without changing anything."""
        target = self._target("challenger" if action == "promote" else "previous")
        new = ModelBundle.load(target)
        old = ModelBundle.load(self.path)
        self._check_switch(old, new, target)
        return old.model_id, new.model_id

    def _target(self, to_role: str) -> Path:
        if not self.is_serving:
            raise ModelError(
                f"{self.path}: no champion link (install a challenger with "
                f"`credit compile --model models/next --challenger --into {self.path}`)"
            )
        if to_role == "challenger":
            target = self.role_dir("challenger")
            if target is None:
                raise ModelError(f"{self.path}: no challenger installed; nothing switched")
            return target
        stack = self._stack()
        if not stack:
            raise ModelError(
                f"{self.path}: no earlier champion to go back to (the history holds none; `credit promote --history`)"
            )
        target = self.path / layout.BUNDLES / stack[-1]
        if not target.is_dir():
            raise ModelError(f"{target}: the earlier champion's bundle is gone; nothing switched")
        return target

    @staticmethod
    def _check_switch(old: ModelBundle, new: ModelBundle, target: Path) -> None:
        if new.feature_names != old.feature_names:
            raise ModelError(f"{target}: its features are not the champion's; not switched")

    def _switch(self, to_role: str) -> tuple[str, str]:
        target = self._target(to_role)
        new = ModelBundle.load(target)  # refuse a bundle that fails verification: nothing is switched
        old = ModelBundle.load(self.path)
        _step("switch.verify")
        self._check_switch(old, new, target)
        old_name = self.role_dir("champion").name  # type: ignore[union-attr]
        stack = self._stack()
        with self._transaction():
            if to_role == "challenger":
                _step("switch.previous")
                self._set("previous", f"{layout.BUNDLES}/{old_name}")
            else:
                stack = stack[:-1]
                _step("switch.previous")
                self._set("previous", f"{layout.BUNDLES}/{stack[-1]}" if stack else None)
            _step("switch.champion")
            self._set("champion", layout.relative(self.path, target))  # THE switch: one atomic rename
            if to_role == "challenger":
                _step("switch.challenger")
                self._set("challenger", None)
            _step("switch.names")
            self._link_root_names()
            action = "promote" if to_role == "challenger" else "rollback"
            self._record(action, old.model_id, new.model_id, old_name, target.name)
        return old.model_id, new.model_id

    # ------------------------------------------------------------ history

    def _open_store(self) -> Any:
        from app import store

        return store.open_store(self.store_path)

    def _key(self) -> str:
        return os.path.realpath(self.path)

    def _record(self, action: str, from_id: str | None, to_id: str | None, from_b: str | None, to_b: str) -> None:
        """One history row of the command under way (written by `_write_history` when every change is made)."""
        assert self._journal is not None
        self._pending.append(
            (time.time(), self._key(), action, self.who, self.command, from_id, to_id, from_b, to_b, self._journal.txn)
        )

    def _write_history(self) -> None:
        """The command's history rows, in one store transaction, inside the journal's (a failure undoes it all)."""
        _step("history")
        if self.store_path is None or not self._pending:
            return
        conn = self._open_store()
        try:
            with conn:
                conn.executemany(
                    "INSERT INTO champion_history (ts, serving_dir, action, who, command, from_model_id, to_model_id,"
                    " from_bundle, to_bundle, txn) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    self._pending,
                )
        finally:
            conn.close()

    def _recorded_txns(self) -> set[str]:
        if self.store_path is None or not self.store_path.is_file():
            return set()
        conn = self._open_store()
        try:
            rows = conn.execute("SELECT txn FROM champion_history WHERE serving_dir = ?", (self._key(),))
            return {r[0] for r in rows if r[0]}
        finally:
            conn.close()

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        """The folder's life-cycle events, newest first."""
        if self.store_path is None or not self.store_path.is_file():
            return []
        conn = self._open_store()
        try:
            cols = ("id", "ts", "action", "who", "command", "from_model_id", "to_model_id", "from_bundle", "to_bundle")
            rows = conn.execute(
                f"SELECT {', '.join(cols)} FROM champion_history WHERE serving_dir = ? ORDER BY id DESC LIMIT ?",
                (self._key(), limit),
            ).fetchall()
        finally:
            conn.close()
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def _stack(self) -> list[str]:
        """The champions to go back to, oldest first (bundle folder names): each promote pushes the champion it
        replaced, each rollback pops. Without a recorded history (no store, or a folder promoted before the
        history existed) the `previous` link alone."""
        stack: list[str] = []
        if self.store_path is not None and self.store_path.is_file():
            conn = self._open_store()
            try:
                for action, from_b in conn.execute(
                    "SELECT action, from_bundle FROM champion_history WHERE serving_dir = ? "
                    "AND action IN ('promote', 'rollback') ORDER BY id",
                    (self._key(),),
                ):
                    if action == "promote" and from_b:
                        stack.append(from_b)
                    elif action == "rollback" and stack:
                        stack.pop()
            finally:
                conn.close()
        if not stack:
            previous = self.role_dir("previous")
            champion = self.role_dir("champion")
            if previous is not None and previous != champion:
                stack = [previous.name]
        return stack


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------- running servers (the switch is true on return)

SERVERS_DIR = ".servers"
SERVER_WAIT_SECONDS = 10.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def register_server(model_dir: Path | str, record: dict[str, Any]) -> Path | None:
    """Write (atomically) what this serving process scores with into model_dir/.servers/<host>-<pid>.json:
    {"pid", "host", "pointer": [champion link, challenger link], "champion", "challenger", "switch_error",
    "updated"}. A running API worker does it at startup and after every switch (or refused switch), so a
    life-cycle command can wait until each one has switched. None when the folder is not writable."""
    folder = Path(model_dir) / SERVERS_DIR
    path = folder / f"{socket.gethostname()}-{os.getpid()}.json"
    try:
        folder.mkdir(exist_ok=True)
        atomic_write_json(path, {"pid": os.getpid(), "host": socket.gethostname(), "updated": time.time(), **record})
    except OSError:
        return None
    return path


def unregister_server(model_dir: Path | str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(Path(model_dir) / SERVERS_DIR / f"{socket.gethostname()}-{os.getpid()}.json")


def live_servers(model_dir: Path | str) -> list[dict[str, Any]]:
    """The registered serving processes of this host that are still running (stale records are removed)."""
    folder = Path(model_dir) / SERVERS_DIR
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if record.get("host") == socket.gethostname() and not _pid_alive(int(record.get("pid", 0))):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        record["file"] = str(path)
        out.append(record)
    return out


def wait_for_servers(model_dir: Path | str, timeout: float = SERVER_WAIT_SECONDS) -> list[str]:
    """Wait until every running server of the folder reports the links now on disk (champion and challenger).
    Returns one line per server that has not switched within `timeout` seconds (empty: all did)."""
    model_dir = Path(model_dir)
    want = list(layout.pointers(model_dir))
    deadline = time.monotonic() + timeout
    while True:
        late = []
        for record in live_servers(model_dir):
            if record.get("pointer") == want:
                continue
            error = record.get("switch_error")
            why = f": {error}" if error and record.get("refused") == want else ""
            late.append(
                f"server pid {record.get('pid')} on {record.get('host')} still scores with champion "
                f"{str(record.get('champion'))[:12]}{why}"
            )
        if not late or time.monotonic() >= deadline:
            return late
        time.sleep(0.05)
