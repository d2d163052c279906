"""`credit demo`: generate -> ingest -> train -> compile, then serve the API and the dashboard.

Each step is skipped when its output is up to date, so a rerun starts serving in seconds:
  - generate: `<data_dir>/_generated.json` records the clients and seed of the CSVs there;
  - ingest:   `<db>.demo.json` records which generated data (clients, seed) the database came from
              and the database's data_fingerprint (meta table) right after ingest;
  - train:    model_dir/manifest.json's data_fingerprint equals the database's (and a model demo trained
              with --quick is retrained without it, and the other way round);
  - compile:  app.scoring.bundle.ModelBundle.load succeeds (library present, sha256 matches manifest).
When CREDIT_API_KEYS is empty, an officer key and an admin key (random) are written to the keys file
(settings.keys_file, mode 0600; it is in .gitignore) or reused from it. The API (`credit serve`) and
the dashboard (`credit ui`) run as child processes, configured through CREDIT_* environment variables;
Ctrl-C or SIGTERM stops both and exits 0; if one dies the other is stopped and the exit code is 1.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import click
import msgspec

from app.cli.options import command, db_option, model_option, say, with_settings
from app.config import Settings
from app.data import KAGGLE_FILES
from app.scoring.bundle import ModelError, as_manifest, read_manifest
from app.scoring.db import connect

STAMP = "_generated.json"
STOP_GRACE_SECONDS = 35.0  # the API drains in-flight requests for up to 30 s
READY_TIMEOUT_SECONDS = 120.0


def _db_fingerprint(db: Path) -> str | None:
    import apsw

    if not db.is_file():
        return None
    try:
        conn = connect(db, readonly=True)
    except apsw.Error:
        return None
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'data_fingerprint'").fetchone()
        return row[0] if row else None
    except apsw.Error:
        return None
    finally:
        conn.close()


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def prepare(settings: Settings, *, clients: int, seed: int, quick: bool, progress: bool) -> dict[str, str]:
    """Run the pipeline steps that are not up to date; returns {step: 'done'|'up to date'}."""
    data_dir, db, model_dir = Path(settings.data_dir), settings.db_path, settings.model_path
    status: dict[str, str] = {}
    want = {"clients": clients, "seed": seed}

    # generate
    stamp = _read_json(data_dir / STAMP)
    have_csvs = all((data_dir / f).is_file() for f in KAGGLE_FILES)
    if have_csvs and (stamp is None or {k: stamp.get(k) for k in want} == want):
        status["generate"] = "up to date" if stamp else "user data (no _generated.json): kept"
        want = {k: stamp.get(k) for k in want} if stamp else {"source": str(data_dir.resolve())}
    else:
        from app.data.synthetic import generate

        t0 = time.perf_counter()
        say(f"[1/4] generate {clients:,} clients (seed {seed}) into {data_dir}")
        kwargs = {"progress": progress} if "progress" in inspect.signature(generate).parameters else {}
        rows = generate(data_dir, n_clients=clients, seed=seed, **kwargs)
        _write_json(data_dir / STAMP, {**want, "rows": rows})
        status["generate"] = f"done in {time.perf_counter() - t0:.1f} s"

    # ingest
    state_path = db.with_name(db.name + ".demo.json")
    state = _read_json(state_path) or {}
    fingerprint = _db_fingerprint(db)
    if fingerprint and state.get("data") == want and state.get("data_fingerprint") == fingerprint:
        status["ingest"] = "up to date"
    else:
        from app.data.ingest import ingest

        t0 = time.perf_counter()
        say(f"[2/4] ingest {data_dir} -> {db}")
        db.parent.mkdir(parents=True, exist_ok=True)
        ingest(data_dir, db, progress=progress, notify=say)
        fingerprint = _db_fingerprint(db)
        _write_json(state_path, {"data": want, "data_fingerprint": fingerprint})
        status["ingest"] = f"done in {time.perf_counter() - t0:.1f} s"

    # train
    try:
        manifest = read_manifest(model_dir)[0]
    except ModelError:
        manifest = None  # none yet, or not one `credit train` wrote: train again
    trained = (_read_json(state_path) or {}).get("trained") or {}
    fresh = manifest is not None and manifest.data_fingerprint == fingerprint and (model_dir / "model.txt").is_file()
    same_kind = manifest is not None and (trained.get("model_id") != manifest.model_id or trained.get("quick") == quick)
    if fresh and same_kind:
        status["train"] = "up to date"
    else:
        from app.model.train import train

        t0 = time.perf_counter()
        budget = " (quick)" if quick else " (one search trial for the demo; `credit train` searches more)"
        say(f"[3/4] train on {db} -> {model_dir}{budget}")
        # one search trial (the default parameters, early-stopped inside each fold) keeps the demo within its
        # budget; `credit train` searches more by default
        manifest = as_manifest(
            train(
                db,
                model_dir,
                fn_cost=settings.fn_cost,
                fp_cost=settings.fp_cost,
                seed=seed,
                quick=quick,
                progress=progress,
                trials=1,
                sensitive_attributes=settings.sensitive,
                exclude_sensitive=settings.exclude_sensitive,
            )
        )
        state = _read_json(state_path) or {}
        _write_json(state_path, {**state, "trained": {"model_id": manifest.model_id, "quick": quick}})
        status["train"] = f"done in {time.perf_counter() - t0:.1f} s"

    # compile
    from app.scoring.bundle import ModelBundle

    try:
        ModelBundle.load(model_dir)
        status["compile"] = "up to date"
    except ModelError:
        from app.model.compile import compile_model

        t0 = time.perf_counter()
        say(f"[4/4] compile {model_dir}")
        compile_model(model_dir, progress=progress)
        status["compile"] = f"done in {time.perf_counter() - t0:.1f} s"
    return status


def ensure_keys(settings: Settings) -> tuple[str, str, str]:
    """(officer key, admin key, where they come from). Writes the keys file (0600) when needed."""
    from app.service.auth import KeyRing

    ring = KeyRing.from_settings(settings)
    if settings.api_keys.strip():
        source = "CREDIT_API_KEYS"
    else:
        path = Path(settings.keys_file)
        if ring.first_with_role("officer") is None or ring.first_with_role("admin") is None:
            officer, admin = "off-" + secrets.token_urlsafe(24), "adm-" + secrets.token_urlsafe(24)
            text = f"# demo API keys written by `credit demo`; keep private\n{officer}:officer\n{admin}:admin\n"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                os.fchmod(fh.fileno(), 0o600)
                fh.write(text)
            os.replace(tmp, path)
            ring = KeyRing.from_settings(settings)
        os.chmod(path, 0o600)
        source = str(path)
    officer, admin = ring.first_with_role("officer"), ring.first_with_role("admin")
    if admin is None:
        raise click.ClickException(f"{source} has no admin key")
    return officer or admin, admin, source


DEMO_ACCOUNTS = (("agent", "officer"), ("risque", "risk"), ("admin", "admin"))


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(text)
    os.replace(tmp, path)


def ensure_accounts(settings: Settings) -> tuple[list[tuple[str, str, str]], str]:
    """([(name, role, password or '')], where the accounts come from). When there are none, writes demo accounts
    (one per role, random passwords) to the accounts file as scrypt hashes, and their passwords to a private file
    beside it (`<file>.demo`, 0600) so that every `credit demo` can print them, as it prints its keys."""
    from app.accounts import account_line, load_accounts

    if settings.ui_users.strip():
        return [(a.name, a.role, "") for a in load_accounts(settings.ui_users, None).values()], "CREDIT_UI_USERS"
    path = Path(settings.ui_users_file)
    shown = path.with_name(path.name + ".demo")
    accounts = load_accounts("", path)
    if not accounts:
        passwords = {name: secrets.token_urlsafe(12) for name, _ in DEMO_ACCOUNTS}
        lines = [account_line(name, role, passwords[name]) for name, role in DEMO_ACCOUNTS]
        _write_private(path, "# demo dashboard accounts written by `credit demo`\n" + "\n".join(lines) + "\n")
        _write_private(shown, "".join(f"{name}:{pw}\n" for name, pw in passwords.items()))
        accounts = load_accounts("", path)
    known = {}
    if shown.is_file():
        known = dict(line.split(":", 1) for line in shown.read_text().splitlines() if ":" in line)
    return [(a.name, a.role, known.get(a.name, "")) for a in accounts.values()], str(path)


def _sample_client(db: Path) -> int | None:

    conn = connect(db, readonly=True)
    try:
        row = conn.execute("SELECT min(client_id) FROM clients").fetchone()
        return row[0] if row else None
    finally:
        conn.close()


def _credit_cmd() -> str:
    """How to call this `credit` from the user's shell: `.venv/bin/credit` when the venv is here
    (`./dev demo` puts it on PATH only for its own run)."""
    mine = Path(sys.executable).parent / "credit"
    if not mine.exists():
        return "credit"
    try:
        return shlex.quote(str(mine.relative_to(Path.cwd())))
    except ValueError:
        found = shutil.which("credit")
        return "credit" if found and Path(found).resolve() == mine.resolve() else shlex.quote(str(mine))


def child_env(settings: Settings, officer: str, admin: str, key_source: str) -> dict[str, str]:
    values = {
        "db": str(settings.db_path.resolve()),
        "model_dir": str(settings.model_path.resolve()),
        "api_url": f"http://{_client_host(settings.host)}:{settings.port}",
        "ui_key": settings.ui_key,  # empty: the dashboard uses the officer key, the admin key for monitoring
    }
    if key_source != "CREDIT_API_KEYS":
        values["api_keys"] = f"{officer}:officer,{admin}:admin"
    return {**os.environ, **msgspec.structs.replace(settings, **values).to_env()}


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def wait_ready(url: str, proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    return False


def stop_children(procs: list[subprocess.Popen], grace: float = STOP_GRACE_SECONDS) -> None:
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def print_summary(
    settings: Settings,
    officer: str,
    admin: str,
    key_source: str,
    serving: bool,
    accounts: tuple[list[tuple[str, str, str]], str] = ([], ""),
) -> None:
    host = _client_host(settings.host)
    api, ui = f"http://{host}:{settings.port}", f"http://{host}:{settings.ui_port}"
    client_id = _sample_client(settings.db_path) or 100002
    credit = _credit_cmd()
    defaults = Settings()
    loc = ""
    if settings.db != defaults.db or os.environ.get("CREDIT_DB"):
        loc += f" --db {shlex.quote(str(settings.db_path))}"
    if settings.model_dir != defaults.model_dir or os.environ.get("CREDIT_MODEL_DIR"):
        loc += f" --model {shlex.quote(str(settings.model_path))}"
    lines = ["", "Prêt à dépenser demo " + ("is running:" if serving else "is ready (not serving: --no-serve)")]
    lines += [f"  API        {api}   (OpenAPI: {api}/schema)", f"  dashboard  {ui}"]
    lines += [f"  API keys   ({key_source})", f"    officer  {officer}", f"    admin    {admin}"]
    users, users_source = accounts
    if users:
        lines += [f"  dashboard accounts ({users_source}): name / password"]
        lines += [f"    {role:<8} {name} / {pw or '(not shown)'}" for name, role, pw in users]
    if not serving:
        lines += ["", "Start them with:", f"  {credit} serve{loc}", f"  {credit} ui"]
    lines += [
        "",
        "Try:",
        f'  curl -H "Authorization: Bearer {officer}" {api}/clients/{client_id}/score',
        f'  {credit} sql{loc} "SELECT client_id, score(client_id) FROM clients LIMIT 5"',
    ]
    officer_account = next((name for name, role, _pw in users if role == "officer"), None)
    if officer_account:  # the letter of the decision the curl above logged, as a verified account (password asked)
        lines.append(f"  {credit} letter{loc} {client_id} --as {officer_account} --html letter.html")
    lines.append("")
    if serving:
        lines.append("Ctrl-C stops both.")
    click.echo("\n".join(lines))


@command("demo")
@db_option
@model_option
@click.option("--clients", type=click.IntRange(min=100), default=None, help="clients [env CREDIT_CLIENTS, 20000]")
@click.option("--seed", type=int, default=None, help="random seed [env CREDIT_SEED, default 42]")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="API port [env CREDIT_PORT, default 8000]")
@click.option("--ui-port", type=click.IntRange(1, 65535), default=None, help="dashboard port [env CREDIT_UI_PORT]")
@click.option("--no-serve", is_flag=True, help="prepare data, model and keys, print how to use them, then exit")
@click.option("--quick", is_flag=True, help="train a few small trees (tests, smoke runs)")
@click.option("--progress/--no-progress", default=True, show_default=True, help="progress output on stderr")
@with_settings("db", "model_dir", "clients", "seed", "port", "ui_port")
def demo_command(settings: Settings, no_serve: bool, quick: bool, progress: bool) -> None:
    """Generate, ingest, train, compile (each only if needed), then serve API + dashboard."""
    t0 = time.perf_counter()
    status = prepare(settings, clients=settings.clients, seed=settings.seed, quick=quick, progress=progress)
    officer, admin, key_source = ensure_keys(settings)
    accounts = ensure_accounts(settings)
    say("pipeline: " + ", ".join(f"{k} {v}" for k, v in status.items()) + f" ({time.perf_counter() - t0:.1f} s total)")
    if no_serve:
        print_summary(settings, officer, admin, key_source, serving=False, accounts=accounts)
        return
    raise SystemExit(serve(settings, officer, admin, key_source, accounts))


def serve(settings: Settings, officer: str, admin: str, key_source: str, accounts=([], "")) -> int:
    """Start API and dashboard; block until Ctrl-C/SIGTERM (-> 0) or a child dies (-> 1)."""
    env = child_env(settings, officer, admin, key_source)
    host = _client_host(settings.host)
    cli = [sys.executable, "-m", "app.cli.main"]
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    procs: list[subprocess.Popen] = []
    try:
        # children get their own process group, so a terminal Ctrl-C reaches them only through us
        api = subprocess.Popen([*cli, "serve"], env=env, start_new_session=True)
        procs.append(api)
        ui = subprocess.Popen([*cli, "ui", "--host", host], env=env, start_new_session=True)
        procs.append(ui)
        ready = wait_ready(f"http://{host}:{settings.port}/readyz", api, READY_TIMEOUT_SECONDS) and wait_ready(
            f"http://{host}:{settings.ui_port}/", ui, READY_TIMEOUT_SECONDS
        )
        if stopping:
            return 0
        if not ready:
            dead = [name for name, p in (("API", api), ("dashboard", ui)) if p.poll() is not None]
            say(f"demo: {' and '.join(dead) or 'a service'} did not come up; stopping")
            return 1
        print_summary(settings, officer, admin, key_source, serving=True, accounts=accounts)
        while not stopping:
            for name, p in (("API", api), ("dashboard", ui)):
                if p.poll() is not None:
                    say(f"demo: the {name} exited with code {p.returncode}; stopping the other service")
                    return 1
            time.sleep(0.2)
        say("demo: stopping API and dashboard")
        return 0
    finally:
        stop_children(procs)
        for s, h in old.items():
            signal.signal(s, h)
