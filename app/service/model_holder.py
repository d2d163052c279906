"""The model a worker scores with (`ModelHolder`, held by app.service.state.Service as `svc.models`).

It owns the champion / challenger pair (`bundles`: ONE reference, swapped whole), the explainer built for it, the
switch on a promote, a rollback or a new challenger, the watcher thread that follows the serving folder's links,
and the stamps of the loaded libraries' files (a library changed on disk stops the champion's scoring, or the
challenger's shadow scoring). The module docstring of app.service.state tells the whole story; the Service
asks this holder once per scoring request (`follow`) and reads the pair it holds.

What the holder needs of the Service is passed in: the data file (to check a new pair's SQL functions on it),
the settings, the Service's lock (one lock for the swap and the Service's other shared state, as before the
holder was split out), `on_lost` (re-run the readiness checks when the champion's library is lost) and
`on_switch` (warm the explanations after a switch).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.config import Settings
from app.scoring import layout
from app.scoring.bundle import Bundles, DataMismatchError, ModelBundle
from app.scoring.db import connect, file_stamp

if TYPE_CHECKING:
    from app.model.explain import Explainer

log = logging.getLogger("app.service.api")

POINTER_CHECK_SECONDS = 0.5  # how often a scoring request looks at the champion/challenger links
WATCH_SECONDS = 0.1  # how often the watcher thread looks at them (two readlink calls), traffic or not


class ModelHolder:
    """The champion and challenger a worker scores with, their explainer, the switch and the watcher."""

    def __init__(
        self,
        model_dir: Path,
        db_path: Path,
        settings: Settings,
        lock: threading.Lock,
        *,
        on_lost: Callable[[], Any],
        on_switch: Callable[[], Any],
        stamp: Callable[[Path], tuple[int, ...] | None] = file_stamp,
    ) -> None:
        self.model_dir = model_dir
        self.db_path = db_path
        self.settings = settings
        self.lock = lock
        self.on_lost = on_lost
        self.on_switch = on_switch
        self.stamp = stamp  # a library file's stamp now (the Service's app.service.file_watch.FileStamps.stamp)
        self.bundles: Bundles | None = None  # the champion and the shadow challenger: ONE reference, swapped whole
        self.pointer: tuple[str | None, str | None] = (None, None)
        self.pointer_due = 0.0
        self.switching = False
        self.switch_error: str | None = None
        self.model_error: str | None = "not started"
        self.feature_names: list[str] = []
        self.index: dict[str, int] = {}
        self.explainer: Explainer | None = None
        self.lib_stamp: tuple[int, ...] | None = None
        self.chal_stamp: tuple[int, ...] | None = None
        self.switch_lock = threading.Lock()  # one switch at a time (the watcher and a request may both notice)
        self.stopping = threading.Event()
        self.refused: tuple[str | None, str | None] | None = None  # the links last refused (switch_error says why)

    @property
    def model(self) -> ModelBundle | None:
        """The champion (decides every answer)."""
        pair = self.bundles
        return pair.champion if pair is not None else None

    @model.setter
    def model(self, value: ModelBundle | None) -> None:
        self.bundles = Bundles(value) if value is not None else None

    @property
    def challenger(self) -> ModelBundle | None:
        pair = self.bundles
        return pair.challenger if pair is not None else None

    def load(self) -> None:
        """Load and verify the model folder once (app.scoring.bundle); a failure is reported by /readyz and 503s."""
        self.pointer = layout.pointers(self.model_dir)
        self.pointer_due = time.monotonic() + POINTER_CHECK_SECONDS
        try:
            pair = ModelBundle.load_pair(self.model_dir)
        except Exception as exc:  # noqa: BLE001
            self.model, self.model_error = None, f"model not loaded: {type(exc).__name__}: {exc}"
            return
        self.bundles = self.sql_checked(pair)
        self.switch_error = self.bundles.challenger_error
        self.model_error = None
        self.lib_stamp = file_stamp(self.model.library_path)
        self.chal_stamp = file_stamp(self.challenger.library_path) if self.challenger is not None else None
        self.feature_names = self.model.feature_names
        self.index = {n: i for i, n in enumerate(self.feature_names)}

    def start_watching(self) -> None:
        threading.Thread(target=self.watch, name="model-watch", daemon=True).start()

    def stop(self) -> None:
        """Stop the watcher and withdraw this worker's record from the serving folder."""
        self.stopping.set()
        from app.scoring.serving import unregister_server

        unregister_server(self.model_dir)

    def follow(self) -> None:
        """Per scoring request: the links at most every POINTER_CHECK_SECONDS (two readlink calls), and the loaded
        libraries' stamps (`self.stamp`: a stat each, or none while inotify saw no change, app.service.file_watch)."""
        if time.monotonic() >= self.pointer_due:
            self.check_pointer()
        if self.model is not None and self.stamp(self.model.library_path) != self.lib_stamp:
            self.library_changed()
        chal = self.challenger
        if chal is not None and self.stamp(chal.library_path) != self.chal_stamp:
            self.challenger_changed(chal)

    # champion / challenger switches (see app.service.state's docstring)
    def sql_checked(self, pair: Bundles) -> Bundles:
        """`pair`, or the champion alone when the challenger's SQL functions do not load beside it."""
        if pair.challenger is None or not self.db_path.is_file():
            return pair
        try:
            connect(self.db_path, pair.champion, readonly=True, challenger=pair.challenger).close()
        except Exception as exc:  # noqa: BLE001
            return Bundles(pair.champion, None, f"challenger not loaded: {type(exc).__name__}: {exc}")
        return pair

    def check_pointer(self) -> None:
        """Cheap: two readlink calls. On a change, load and verify the new pair in a background thread."""
        self.pointer_due = time.monotonic() + POINTER_CHECK_SECONDS
        ptr = layout.pointers(self.model_dir)
        if ptr == self.pointer or self.switching:
            return
        self.switching = True
        threading.Thread(target=self.switch_to, args=(ptr,), name="model-switch", daemon=True).start()

    def watch(self) -> None:
        """The watcher thread: notice a promote, a rollback or a new challenger within WATCH_SECONDS, traffic or
        not, and switch (see app.service.state's docstring)."""
        while not self.stopping.wait(WATCH_SECONDS):
            try:
                ptr = layout.pointers(self.model_dir)
                if ptr != self.pointer and not self.switching:
                    with self.lock:
                        if self.switching:
                            continue
                        self.switching = True
                    self.switch_to(ptr)
            except Exception:  # noqa: BLE001 - the watcher must outlive any one failure
                log.exception("model watcher")

    def register(self) -> None:
        """Tell life-cycle commands what this worker scores with (app/scoring/serving.py register_server)."""
        from app.scoring.serving import register_server

        pair = self.bundles
        register_server(
            self.model_dir,
            {
                "pointer": list(self.pointer),
                "champion": pair.champion.model_id if pair is not None else None,
                "challenger": pair.challenger.model_id if pair is not None and pair.challenger else None,
                "switch_error": self.switch_error,
                "refused": list(self.refused) if self.refused else None,
            },
        )

    def switch_to(self, ptr: tuple[str | None, str | None]) -> None:
        """Load, verify, then swap the one reference; on failure keep serving the old pair and say why."""
        try:
            pair = ModelBundle.load_pair(self.model_dir)
            if pair.champion.feature_names != self.feature_names and self.feature_names:
                raise DataMismatchError(
                    f"the new champion {pair.champion.model_id[:12]} has other features than the one serving"
                )
            conn = connect(self.db_path, pair.champion, readonly=True)
            try:
                from app.scoring.db import verify_data

                verify_data(conn, pair.champion, allow_other=self.settings.allow_other_data)
            finally:
                conn.close()
            pair = self.sql_checked(pair)
        except Exception as exc:  # noqa: BLE001
            with self.lock:
                self.pointer = ptr  # bundles are immutable: the same links will not verify better next time
                self.refused = ptr
                self.switch_error = f"not switched to {ptr[0]}: {type(exc).__name__}: {exc}"
                self.switching = False
            log.error("%s", self.switch_error)
            self.register()
            return
        old = self.bundles
        with self.lock:
            self.bundles = pair  # THE swap: requests that took the old pair finish with it
            self.pointer = ptr
            self.lib_stamp = file_stamp(pair.champion.library_path)
            self.chal_stamp = file_stamp(pair.challenger.library_path) if pair.challenger is not None else None
            self.switch_error = pair.challenger_error
            self.refused = None
            self.model_error = None
            self.feature_names = pair.champion.feature_names
            self.index = {n: i for i, n in enumerate(self.feature_names)}
            self.explainer = None
            self.switching = False
        log.warning(
            "switched models: champion %s -> %s, challenger %s",
            old.champion.model_id[:12] if old else None,
            pair.champion.model_id[:12],
            pair.challenger.model_id[:12] if pair.challenger else None,
        )
        self.register()
        self.on_switch()

    def library_changed(self) -> None:
        """The loaded library's file changed on disk (its stamp, checked per scoring request, notices it). The same
        bytes (touched, or copied over with the same content) are fine; anything else may already have changed the
        code mapped into this process, so nothing is scored any more until a restart."""
        model = self.model
        if model is None:
            return
        stamp, same = _library_check(model)
        with self.lock:
            if same:
                self.lib_stamp = stamp
                return
            self.model = None
            self.model_error = (
                f"the champion's library {model.library_path} changed on disk (this process is unaffected: it "
                "scores from a private copy checked at load, but the file no longer matches the manifest): restore "
                "it or install a verified bundle (`credit promote --rollback`, `credit compile --challenger`), then "
                "restart the API"
            )
        log.error("%s", self.model_error)
        self.on_lost()

    def challenger_changed(self, chal: ModelBundle) -> None:
        """The challenger's library changed on disk: same bytes are fine; otherwise stop shadow scoring and say
        why (/readyz `reason`, `checks.challenger`); the champion keeps deciding."""
        stamp, same = _library_check(chal)
        with self.lock:
            pair = self.bundles
            if pair is None or pair.challenger is not chal:
                return
            if same:
                self.chal_stamp = stamp
                return
            self.switch_error = (
                f"challenger not scored: its library {chal.library_path} changed on disk (this process is "
                "unaffected: it loaded a private checked copy); reinstall it with `credit compile --challenger`"
            )
            self.bundles = Bundles(pair.champion, None, self.switch_error)
        log.error("%s", self.switch_error)
        self.register()


def _library_check(bundle: ModelBundle) -> tuple[tuple[int, ...] | None, bool]:
    """(the library file's stamp now, whether its bytes still match the manifest's sha256)."""
    from app.scoring.library import sha256_file

    stamp = file_stamp(bundle.library_path)
    try:
        return stamp, sha256_file(bundle.library_path) == bundle.manifest.library.sha256
    except OSError:
        return stamp, False
