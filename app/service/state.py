"""The API's state, shared by its routes: settings, keys, the model bundle, per-thread database
connections (`DataConnection`), the prediction log writer and the readiness checks (app.service.readiness).
What a request brings to be scored (an applicant's features, a what-if) is read by app.service.inputs.

Routes receive it by dependency injection (`svc`, provided by `service_provider(svc)`); `lifespan` loads the
bundle and prepares the log at startup and closes the writer and every connection at shutdown.
apsw connections are not thread-safe, so each thread has its own (threading.local). Nothing is scored
while the service is not ready: `require_model` re-runs the checks at most every READY_RETRY_SECONDS.

The data database is opened read-only; the prediction log goes to the operational store (app.store,
`settings.log_db_path`). `credit ingest` replaces the data file by renaming a new one over it: every time a
thread takes its data connection, the path's stamp (device, inode, size, mtime, ctime) is compared with the file
that connection opened (the stamp is re-read by a stat only after inotify reported a change to the file or its
folder entry, app.service.file_watch: no system call per request, same rule); on a change the connection is
reopened on the new file after the readiness checks pass again, else the request is a 503 naming the cause. So
no score is computed from the replaced file once its replacement is visible. Because that stamp already tells a
replaced or rewritten file,
the connections are opened `immutable` (app.scoring.db.connect): SQLite takes no file lock and reads no change
counter per statement, which was most of a stored client's lookup (issue 34). A file written in place (not
what `credit ingest` does) changes its stamp too and is treated like a replacement.
HTTP helpers (the error shape, id parsing, strict decoding) are in app.service.http.

The model side lives in its own type, app.service.model_holder.ModelHolder (`svc.models`): the pair below, its
explainer, the switch and the watcher; the Service holds it beside the per-thread connections and readiness.
Challenger in shadow (app/scoring/layout.py): `svc.bundles` (champion, challenger) is the one reference the
routes read, once per request (`require_pair`). At most every POINTER_CHECK_SECONDS a scoring request reads the
serving folder's champion/challenger links (two readlink calls); when they changed, a background thread loads
and verifies the new pair fully (hashes, digest, threshold, features, SQL functions on the data file) and then
replaces that one reference; requests in flight finish with the pair they took, and each thread's data
connection is reopened with the new pair's extensions on its next use. A pair that fails is not switched to:
the old one keeps serving and /readyz names the reason (`switch_error`).

A watcher thread per worker (`watch`) also reads the links every WATCH_SECONDS, traffic or not, and switches
in that thread; after every switch (or refused switch) the worker writes what it scores with into the serving
folder's .servers/<host>-<pid>.json (app/scoring/serving.py `register_server`), which `credit promote` waits for:
when the command returns, every running worker has swapped its reference, so every later answer comes from the
new champion and /readyz names it. Libraries are loaded from private checked copies (app/scoring/library.py):
a library changed on disk cannot change or crash this process; the change is noticed (its stamp, per request, as
the data file's) and reported: the champion's stops scoring (503 naming it), the challenger's stops the shadow scoring.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import apsw
import numpy as np
from litestar import Litestar
from litestar.di import Provide

from app import store
from app.config import Settings
from app.scoring.bundle import Bundles, ModelBundle
from app.scoring.db import connect, file_stamp
from app.service import inputs
from app.service.auth import KeyRing
from app.service.file_watch import FileStamps
from app.service.http import ApiError
from app.service.model_holder import ModelHolder
from app.service.readiness import readiness
from app.store import predlog
from app.store.group_writer import GroupWriter

if TYPE_CHECKING:
    from app.model.explain import Explainer

log = logging.getLogger("app.service.api")

READY_RETRY_SECONDS = 1.0  # while not ready, scoring requests re-run the checks at most this often


class DataConnection(NamedTuple):
    """A thread's connection to the data file (`Service.conn`), with what decides whether it is still the one
    to use: the file it opened (its stamp, `app.scoring.db.file_stamp`), the model pair whose SQL functions it
    loaded, and that file's data version (what the log rows of its stored vectors carry)."""

    conn: apsw.Connection
    identity: tuple[int, ...] | None
    pair: Bundles | None
    data_version: str | None


class Service:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.db_path = Path(settings.db)
        self.log_db_path = settings.log_db_path
        self.data_identity: tuple[int, ...] | None = None  # the stamp of the data file last checked ready
        self.model_dir = Path(settings.model_dir)
        self.ring = KeyRing.from_settings(settings)
        self.local = threading.local()
        self.lock = threading.Lock()
        self.conns: list[apsw.Connection] = []
        self.data_warning: str | None = None
        self.population_ids: np.ndarray | None = None
        self.writer = GroupWriter(self.log_db_path, settings.log_durability)
        self.ready: tuple[str | None, dict[str, str], float] = ("not checked yet", {}, -1e9)
        self.files = FileStamps()  # the data file's and the libraries' stamps, without a stat per request
        # the champion / challenger pair, its explainer, the switch and the watcher (app.service.model_holder)
        self.models = ModelHolder(
            self.model_dir,
            self.db_path,
            settings,
            self.lock,
            on_lost=self.check_ready,
            on_switch=lambda: warm_explanations(self),
            stamp=self.files.stamp,
        )

    # what the routes read of the model holder (one reference each, read once per use); writable as before the
    # holder was split out (tests put the service in a state: no model, an error)
    @property
    def bundles(self) -> Bundles | None:
        return self.models.bundles

    @bundles.setter
    def bundles(self, value: Bundles | None) -> None:
        self.models.bundles = value

    @property
    def model(self) -> ModelBundle | None:
        """The champion (decides every answer)."""
        pair = self.models.bundles
        return pair.champion if pair is not None else None

    @model.setter
    def model(self, value: ModelBundle | None) -> None:
        self.models.model = value

    @property
    def challenger(self) -> ModelBundle | None:
        pair = self.models.bundles
        return pair.challenger if pair is not None else None

    @property
    def manifest(self) -> dict[str, Any] | None:
        """The champion's manifest.json as written (GET /model serves it); read its fields on `model.manifest`."""
        model = self.model
        return model.raw_manifest if model is not None else None

    @property
    def model_error(self) -> str | None:
        return self.models.model_error

    @model_error.setter
    def model_error(self, value: str | None) -> None:
        self.models.model_error = value

    @property
    def switch_error(self) -> str | None:
        return self.models.switch_error

    @switch_error.setter
    def switch_error(self, value: str | None) -> None:
        self.models.switch_error = value

    @property
    def feature_names(self) -> list[str]:
        return self.models.feature_names

    @property
    def index(self) -> dict[str, int]:
        return self.models.index

    @property
    def explainer(self) -> Explainer | None:
        return self.models.explainer

    @explainer.setter
    def explainer(self, value: Explainer | None) -> None:
        self.models.explainer = value

    # lifecycle (see `lifespan`)
    def startup(self) -> None:
        self.models.load()
        self.models.register()
        self.models.start_watching()
        if not len(self.ring):
            log.warning("no API keys configured: every endpoint except /healthz, /readyz and /schema answers 401")
        try:
            conn = store.open_store(self.log_db_path)
            try:
                added = store.import_legacy(conn, self.db_path)
            finally:
                conn.close()
            if added:
                log.info("copied %d prediction log rows from %s into %s", added, self.db_path, self.log_db_path)
        except Exception as exc:  # noqa: BLE001 - the app still starts; scoring answers 503
            log.warning("prediction log not ready: %s: %s", type(exc).__name__, exc)
        if not self.db_path.is_file():
            log.warning("database %s not found", self.db_path)
            return
        self.data_identity = file_stamp(self.db_path)
        reason = self.check_ready()
        if reason:
            log.warning("not ready: %s", reason)

    def check_ready(self) -> str | None:
        """Run the readiness checks now; remember the result (scoring is refused while not ready)."""
        checks: dict[str, str] = {}
        reason = readiness(self, checks)
        self.ready = (reason, checks, time.monotonic())
        return reason

    def shutdown(self) -> None:
        self.models.stop()
        self.writer.close()
        with self.lock:
            conns, self.conns = self.conns, []
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()

    def require_pair(self) -> Bundles:
        """The champion and challenger to score one request with (taken once: a switch never splits a request)."""
        self.require_model()
        pair = self.models.bundles
        if pair is None:
            raise ApiError(503, "model unavailable", self.models.model_error)
        return pair

    # resources
    def require_model(self) -> ModelBundle:
        """The model, if loaded AND the service is ready (else 503 saying why): nothing is scored while not ready."""
        models = self.models
        models.follow()
        if models.model is None:
            raise ApiError(503, "model unavailable", models.model_error)
        reason, checks, at = self.ready
        if reason is not None and time.monotonic() - at > READY_RETRY_SECONDS:
            reason = self.check_ready()
            checks = self.ready[1]
        if reason is not None:
            log.warning("refusing to score, not ready: %s", reason)
            raise ApiError(503, f"not ready: {reason}", {"checks": checks})
        return models.model

    def conn(self, model: bool = True, pair: Bundles | None = None) -> apsw.Connection:
        """This thread's read-only connection to the data file: with the scoring functions (model=True; of `pair`,
        default the current champion and challenger) or a plain one. Reopened when the file at the path is no
        longer the one it opened (a re-import), or when it was opened for another pair (a promote)."""
        attr = "conn" if model else "plain"
        ident = self.files.stamp(self.db_path)  # no system call while inotify saw no change (app.service.file_watch)
        cached: DataConnection | None = getattr(self.local, attr, None)
        if model and pair is None:
            pair = self.bundles
        if cached is not None:
            if cached.identity == ident and (not model or cached.pair is pair):
                return cached.conn
            setattr(self.local, attr, None)
            self._forget(cached.conn)
        if ident is None:
            raise ApiError(503, "database unavailable", f"{self.db_path} not found")
        if ident != self.data_identity:
            self.data_replaced(ident)
        if model:
            self.require_model()
            pair = pair or self.bundles
        champion = pair.champion if model and pair is not None else None
        challenger = pair.challenger if model and pair is not None else None
        try:
            for _attempt in range(3):
                conn = connect(self.db_path, champion, readonly=True, challenger=challenger, immutable=True)
                if file_stamp(self.db_path) == ident:
                    break
                conn.close()  # replaced while opening: take the newer file
                ident = file_stamp(self.db_path)
            else:
                raise ApiError(503, "database unavailable", "the data file is being replaced, try again")
        except ApiError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ApiError(503, "database unavailable", f"{type(exc).__name__}: {exc}") from exc
        from app.scoring.db import read_meta

        setattr(self.local, attr, DataConnection(conn, ident, pair, predlog.data_version(read_meta(conn))))
        with self.lock:
            self.conns.append(conn)
        return conn

    def data_replaced(self, ident: tuple[int, ...] | None) -> None:
        """The data file at the path is a new one (or the first seen): forget what was read from the old one and
        run the readiness checks on the new one (scoring answers 503 with the reason if they fail)."""
        with self.lock:
            if ident == self.data_identity:
                return
            first, old = self.data_identity is None, self.data_identity
            self.data_identity = ident
            self.population_ids = None
        if not first:
            how = "was written in place" if old and ident and old[:2] == ident[:2] else "was replaced"
            log.warning("data file %s %s: checking the new one", self.db_path, how)
        reason = self.check_ready()
        if reason and not first:
            self.ready = (f"data file replaced: {reason}", self.ready[1], self.ready[2])

    def _forget(self, conn: Any) -> None:
        with self.lock:
            if conn in self.conns:
                self.conns.remove(conn)
        with contextlib.suppress(Exception):
            conn.close()

    def log_conn(self) -> Any:
        """This thread's connection to the operational store, for reads (monitoring, drift)."""
        conn = getattr(self.local, "store", None)
        if conn is not None:
            return conn
        try:
            conn = store.open_store(self.log_db_path)
        except store.StoreError as exc:
            raise ApiError(503, "prediction log unavailable", str(exc)) from exc
        self.local.store = conn
        with self.lock:
            self.conns.append(conn)
        return conn

    def score_query(self, sql: str, args: tuple, pair: Bundles | None = None) -> list[tuple]:
        """Run a scoring statement (on `pair`'s connection); an SQL error (e.g. a features row of the wrong length) is
        a 503, not a 500."""
        try:
            rows = self.conn(pair=pair).execute(sql, args).fetchall()
        except apsw.Error as exc:
            log.warning("scoring query failed: %s: %s", type(exc).__name__, exc)
            raise inputs.features_mismatch(str(exc)) from exc
        width = 4 * len(self.feature_names)
        for r in rows:
            if len(r[-1]) != width:
                raise inputs.features_mismatch({"client_id": r[0]})
        return rows

    async def write_log(self, rows: list[predlog.LogRow], in_flight: Any = None) -> None:
        """Wait until the rows are committed (group commit, app.store.group_writer.GroupWriter); 503 if they cannot be.
        `in_flight`: the server's requests in hand, when known (GroupWriter.commit)."""
        try:
            await self.writer.commit(rows, in_flight)
        except predlog.PredictionLogError as exc:
            log.error("prediction log write failed: %s", exc)
            raise ApiError(503, "prediction log unavailable", str(exc)) from exc

    # scoring helpers (what a request brings: app.service.inputs)
    def vector(self, features: dict[str, Any], where: str = "features") -> tuple[np.ndarray, list[str]]:
        """Strictly validated float32 vector from {name: number|null}; returns (x, missing names)."""
        return inputs.vector(self.feature_names, self.index, features, where)

    def decide(self, p: float) -> str:
        return self.require_model().decide(p)

    def row(
        self,
        role: str,
        endpoint: str,
        t0: float,
        client_id: int | None,
        x: bytes,
        p: float,
        d: str,
        pair: Bundles | None = None,
        challenger_score: float | None = None,
        stored: bool = False,
        user: str | None = None,
    ) -> predlog.LogRow:
        """The log row of one answer to a caller of `role`; `pair` is what the request scored with (its champion
        decided; passing it means the library file is checked once per request, not once per helper), and
        `challenger_score` the challenger's shadow score of the same features. `stored`: `x` is the client's
        vector as read by this thread's data connection (GET score, a batch of ids), so the row carries that
        file's data version instead of the vector (kept once per version and client, app.store.predlog). `user`:
        the dashboard user the caller named (X-Credit-User, app.service.http.check_user)."""
        pair = pair or self.require_pair()
        shadow = pair.challenger if challenger_score is not None else None
        version = self.local.conn.data_version if stored and client_id is not None else None
        return predlog.LogRow(
            ts=time.time(),
            request_id=predlog.new_request_id(),
            client_id=client_id,
            features=x,
            probability=p,
            decision=d,
            model_id=pair.champion.model_id,
            latency_ms=(time.perf_counter() - t0) * 1000.0,
            role=role,
            endpoint=endpoint,
            data_version=version,
            challenger_score=challenger_score if shadow is not None else None,
            challenger_model_id=shadow.model_id if shadow is not None else None,
            user_name=user,
        )


def feature_completeness(x: np.ndarray) -> float:
    return float(1.0 - np.count_nonzero(np.isnan(x)) / x.size) if x.size else 1.0


def population_sample(svc: Service, conn: apsw.Connection) -> np.ndarray:
    """A fixed random sample (seeded) of at most 5000 client ids, drawn once per process."""
    with svc.lock:
        if svc.population_ids is None:
            ids = np.fromiter((r[0] for r in conn.execute("SELECT client_id FROM features")), dtype=np.int64)
            rng = np.random.default_rng(svc.settings.seed)
            svc.population_ids = rng.permutation(ids)[:5000] if ids.size else ids
        return svc.population_ids


def explainer_for(svc: Service) -> Explainer:
    if importlib.util.find_spec("app.model.explain") is None:
        raise ApiError(501, "explanations not available in this build")
    bundle = svc.require_model()  # before the lock: noticing a changed library takes it (ModelHolder.library_changed)
    models = svc.models
    with svc.lock:
        if models.explainer is None:
            from app.model import explain

            try:
                models.explainer = explain.Explainer.from_bundle(bundle)
            except getattr(explain, "ExplainError", ()) as exc:
                raise ApiError(503, "explanations unavailable", str(exc)) from exc
        return models.explainer


def warm_explanations(svc: Service) -> None:
    """Build the explainer and explain one row in a background thread (at startup and after a model switch), so
    the first explanation a client asks for finds it ready (issue 20: the first explanation after a start in
    20 ms or less). Failures are left for that request to report."""
    if svc.model is None or importlib.util.find_spec("app.model.explain") is None:
        return

    def build() -> None:
        with contextlib.suppress(Exception):
            explainer_for(svc).warm()

    threading.Thread(target=build, name="explainer-warm-up", daemon=True).start()


def service_provider(svc: Service) -> Provide:
    """The `svc` dependency of every route (app-level `dependencies`): the app's Service, cached.

    The provider takes no parameter, so Litestar has nothing to parse for it on each request (a `state`
    parameter would cost a State copy and a second signature parse per request on the hot path)."""

    def provide_service() -> Service:
        return svc

    return Provide(provide_service, sync_to_thread=False, use_cache=True)


@contextlib.asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    """Load and verify the bundle, prepare the log and run the readiness checks; on the way out close the log
    writer and every connection the routes opened."""
    svc: Service = app.state.service
    svc.startup()
    svc.files.attach(asyncio.get_running_loop())  # the files' stamps from now on read on change, not per request
    try:
        yield
    finally:
        svc.files.detach()
        svc.shutdown()
