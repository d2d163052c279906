"""The serving folder's life cycle (issue 28): one champion for every entry point, a model id that names what
decides, all-or-nothing commands (a failure injected at every step), a history that rollback walks back along, a
lock that serialises concurrent commands, servers that have switched when `credit promote` returns, and libraries
that a change on disk cannot crash.

Models: A is the session pipeline's; B is A with the first tree's leaves changed (benchmarks.bench_shadow.
perturbed_copy); C is A's trees with another threshold (what a retrain with another cost ratio changes). B and C are
compiled once for the module (real gcc, real parity gates); installs then copy their verified library
(`precompiled`), except where a compile step itself is under test.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import apsw
import httpx
import pytest
from apiserver import ADMIN, OFFICER, ApiServer, copy_pipeline
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli.main import cli
from app.model.compile import CompileError, compile_model
from app.scoring import layout, serving
from app.scoring.batch import ModelPackage, worker_model
from app.scoring.bundle import MANIFEST, ModelBundle, ModelError, decision_id, identify, read_manifest
from app.scoring.serving import LifecycleBusyError, ServingFolder
from benchmarks.bench_shadow import perturbed_copy

README_TEXT = "# compiled/ - a tracked file that no life-cycle command may change\n"


def quick_compile(folder: Path) -> dict:
    return compile_model(folder, progress=False, tl2cgen_reference=False, with_shap=False)


def threshold_copy(model_dir: Path, dest: Path, factor: float) -> Path:
    """A model folder with A's trees and another threshold (a new model id)."""
    dest.mkdir(parents=True)
    for name in ("model.txt", "reference.npy", "reference_scores.npy"):
        shutil.copy(model_dir / name, dest / name)
    manifest = json.loads((model_dir / MANIFEST).read_text())
    manifest.pop("library", None)
    manifest["threshold"] = manifest["threshold"] * factor
    identify(manifest, (dest / "model.txt").read_bytes())
    (dest / MANIFEST).write_text(json.dumps(manifest))
    return dest


def precompiled(folder: Path):
    """A compile step that installs `folder`'s already compiled and verified library (same bytes gcc made)."""

    def compile_fn(tmp: Path) -> dict:
        lib = json.loads((folder / MANIFEST).read_text())["library"]
        shutil.copy2(folder / lib["file"], tmp / lib["file"])
        return lib

    return compile_fn


@pytest.fixture(scope="module")
def models(pipeline, tmp_path_factory):
    root = tmp_path_factory.mktemp("lifecycle")
    data = copy_pipeline(pipeline, root / "data")
    b = perturbed_copy(pipeline.model_dir, root / "B")
    c = threshold_copy(pipeline.model_dir, root / "C", 1.3)
    quick_compile(b)
    quick_compile(c)
    plain = root / "plain"  # what `credit train` + `credit compile` leave, plus a tracked README
    shutil.copytree(data.model_dir, plain, symlinks=True)
    (plain / "README.md").write_text(README_TEXT)
    data.A, data.B, data.C, data.plain, data.root = pipeline.model_dir, b, c, plain, root
    data.ids = {name: read_manifest(folder)[0].model_id for name, folder in (("A", data.A), ("B", b), ("C", c))}
    return data


def fresh(models, tmp_path: Path, name: str = "serving") -> tuple[Path, Path]:
    """A private copy of the plain folder and a store path."""
    folder = tmp_path / name
    shutil.copytree(models.plain, folder, symlinks=True)
    return folder, tmp_path / "store.db"


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every name under `folder` (links not followed): its kind and link text or content hash."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(folder))
            if rel in (serving.LOCK_FILE,) or rel.startswith(serving.SERVERS_DIR):
                continue
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def client_ids(db: Path, n: int) -> list[int]:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return [r[0] for r in conn.execute("SELECT client_id FROM features ORDER BY client_id LIMIT ?", (n,))]
    finally:
        conn.close()


# ---------------------------------------------------------------- the model id


def test_the_model_id_names_everything_that_decides(models):
    base = json.loads((models.A / MANIFEST).read_text())
    base.pop("library", None)
    text = (models.A / "model.txt").read_bytes()
    ids = set()
    variants = [
        {},
        {"threshold": base["threshold"] * 1.01},
        {"calibration": {**base["calibration"], "a": base["calibration"]["a"] + 1e-9}},
        {"calibration": {**base["calibration"], "b": base["calibration"]["b"] - 1e-9}},
        {"costs": {"fn": 5.0, "fp": 1.0}},
        {"features": list(reversed(base["features"]))},
    ]
    for change in variants:
        manifest = {**base, **change}
        ids.add(identify(manifest, text))
    ids.add(identify(dict(base), text + b"\n"))
    assert len(ids) == len(variants) + 1  # every change that can decide differently gives another id
    # what is not part of the decision does not change it
    assert identify({**base, "trained_at": "another day", "metrics": {}}, text) == identify(dict(base), text)
    # the ids of the module's models: C has A's trees and another threshold, and another id
    assert len(set(models.ids.values())) == 3
    assert read_manifest(models.C)[0].model_text_sha256 == read_manifest(models.A)[0].model_text_sha256


def test_an_edited_manifest_is_refused_by_its_id(models, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(models.A, folder, symlinks=True)
    raw = json.loads((folder / MANIFEST).read_text())
    raw["costs"] = {"fn": 3.0, "fp": 1.0}  # not a decision input of the library, but part of the id
    (folder / MANIFEST).write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="edited after `credit train`"):
        ModelBundle.load(folder)
    assert decision_id(raw, raw["model_text_sha256"]) != raw["model_id"]


def test_a_legacy_manifest_still_loads(models, tmp_path):
    """A model trained before the id named the whole decision: its id is model.txt's sha256; it loads."""
    folder = tmp_path / "legacy"
    folder.mkdir()
    for name in ("model.txt", "reference.npy", "reference_scores.npy"):
        shutil.copy(models.A / name, folder / name)
    raw = json.loads((models.A / MANIFEST).read_text())
    raw.pop("library")
    raw.pop("model_text_sha256")
    raw["model_id"] = hashlib.sha256((folder / "model.txt").read_bytes()).hexdigest()
    (folder / MANIFEST).write_text(json.dumps(raw))
    quick_compile(folder)
    assert ModelBundle.load(folder).model_id == raw["model_id"]


def test_a_retrain_with_another_threshold_installs_as_a_challenger(models, tmp_path):
    folder, store = fresh(models, tmp_path)
    bundle = ServingFolder(folder, store).install_challenger(models.C, precompiled(models.C))
    assert bundle.model_id == models.ids["C"] != models.ids["A"]
    assert bundle.threshold != ModelBundle.load(folder).threshold


# ---------------------------------------------------------------- no silent split


def test_train_and_compile_refuse_a_serving_folder(models, tmp_path):
    folder, store = fresh(models, tmp_path)
    ServingFolder(folder, store).install_challenger(models.B, precompiled(models.B))
    before = snapshot(folder)
    runner = CliRunner()
    result = runner.invoke(cli, ["compile", "--model", str(folder), "--no-tl2cgen"])
    assert result.exit_code == 1
    assert "is a serving folder" in result.output and "--challenger --into" in result.output
    assert "credit promote" in result.output
    result = runner.invoke(cli, ["train", "--quick", "--model", str(folder), "--db", str(models.db)])
    assert result.exit_code == 1 and "is a serving folder" in result.output
    assert snapshot(folder) == before


def test_challenger_already_installed_or_champion_is_refused_before_compiling(models, tmp_path):
    folder, store = fresh(models, tmp_path)
    sf = ServingFolder(folder, store)
    compiled = []

    def compile_fn(tmp: Path) -> dict:
        compiled.append(tmp)
        return precompiled(models.B)(tmp)

    sf.install_challenger(models.B, compile_fn)
    before = snapshot(folder)
    with pytest.raises(ModelError, match="already the challenger"):
        sf.install_challenger(models.B, compile_fn)
    with pytest.raises(ModelError, match="already the champion"):
        sf.install_challenger(models.A, compile_fn)
    assert len(compiled) == 1 and snapshot(folder) == before


# ---------------------------------------------------------------- all or nothing


def _count_steps(models, tmp_path: Path, run) -> list[str]:
    steps: list[str] = []
    original = serving._step
    serving._step = steps.append
    try:
        run(*fresh(models, tmp_path, "count"))
    finally:
        serving._step = original
    return steps


def _install(folder: Path, store: Path, models) -> None:
    ServingFolder(folder, store).install_challenger(models.B, precompiled(models.B))


def _promote_then_rollback(folder: Path, store: Path, models) -> None:
    ServingFolder(folder, store).promote()
    ServingFolder(folder, store).rollback()


@pytest.mark.parametrize("command", ["install", "promote", "rollback"])
def test_a_failure_at_any_step_leaves_the_folder_as_it_was(models, tmp_path, monkeypatch, command):
    """Fail each step in turn (Ctrl-C on odd steps, a full disk on even ones): the folder, its tracked README
    included, is exactly as it was, and the history has no row for the failed command."""

    def prepare(folder: Path, store: Path) -> None:
        if command in ("promote", "rollback"):
            _install(folder, store, models)
        if command == "rollback":
            ServingFolder(folder, store).promote()

    def run(folder: Path, store: Path) -> None:
        prepare(folder, store)
        if command == "install":
            _install(folder, store, models)
        elif command == "promote":
            ServingFolder(folder, store).promote()
        else:
            ServingFolder(folder, store).rollback()

    counted: list[str] = []

    def count(folder: Path, store: Path) -> None:
        prepare(folder, store)
        original = serving._step
        serving._step = counted.append
        try:
            run_only(folder, store)
        finally:
            serving._step = original

    def run_only(folder: Path, store: Path) -> None:
        if command == "install":
            _install(folder, store, models)
        elif command == "promote":
            ServingFolder(folder, store).promote()
        else:
            ServingFolder(folder, store).rollback()

    count(*fresh(models, tmp_path, "count"))
    assert counted and "history" in counted
    for k, name in enumerate(counted):
        folder, store = fresh(models, tmp_path, f"fail-{k}")
        prepare(folder, store)
        before = snapshot(folder)
        history = ServingFolder(folder, store).history()
        calls = []

        def fail(step: str, k: int = k, calls: list = calls) -> None:
            calls.append(step)
            if len(calls) - 1 == k:
                raise KeyboardInterrupt() if k % 2 else OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(serving, "_step", fail)
        with pytest.raises((KeyboardInterrupt, OSError)):
            run_only(folder, store)
        monkeypatch.setattr(serving, "_step", lambda step: None)
        assert snapshot(folder) == before, f"step {k} ({name}) left changes"
        assert ServingFolder(folder, store).history() == history
        assert (folder / "README.md").read_text() == README_TEXT and not (folder / "README.md").is_symlink()
    run(*fresh(models, tmp_path, "ok"))  # and without a failure it goes through


def test_a_failing_gcc_or_parity_gate_leaves_the_folder_as_it_was(models, tmp_path, monkeypatch):
    folder, store = fresh(models, tmp_path)
    before = snapshot(folder)
    sf = ServingFolder(folder, store)
    with pytest.raises(CompileError):
        sf.install_challenger(
            models.B, lambda tmp: compile_model(tmp, progress=False, cc="false", tl2cgen_reference=False)
        )
    assert snapshot(folder) == before
    import app.model.compile as compile_module

    monkeypatch.setattr(compile_module, "check_parity", lambda *a, **k: 0.5)
    with pytest.raises(compile_module.ParityError):
        sf.install_challenger(models.B, quick_compile)
    assert snapshot(folder) == before
    assert not sf.history()


def test_a_failing_rename_on_the_switch_is_undone(models, tmp_path, monkeypatch):
    """A full disk at the n-th os.replace of a promote (each link change is one), for every n."""
    base, store = fresh(models, tmp_path, "base")
    _install(base, store, models)
    n_replace = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda *a: (n_replace.append(a), real_replace(*a))[1])
    ServingFolder(base, store).promote()
    monkeypatch.setattr(os, "replace", real_replace)
    assert len(n_replace) >= 3
    for n in range(len(n_replace)):
        folder, store_n = fresh(models, tmp_path, f"r{n}")
        _install(folder, store_n, models)
        before = snapshot(folder)
        calls = []

        def replace(src, dst, n=n, calls=calls):
            calls.append(dst)
            if len(calls) - 1 == n:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises(OSError):
            ServingFolder(folder, store_n).promote()
        monkeypatch.setattr(os, "replace", real_replace)
        assert snapshot(folder) == before, n


def test_a_killed_command_is_undone_by_the_next_one(models, tmp_path, monkeypatch):
    """kill -9 in the middle of a promote leaves .txn/; the next life-cycle command undoes it first."""
    folder, store = fresh(models, tmp_path)
    _install(folder, store, models)
    before = snapshot(folder)

    def die(step: str) -> None:
        if step == "switch.names":
            raise SystemExit("killed")

    monkeypatch.setattr(serving._Journal, "rollback", lambda self: None)  # a killed process undoes nothing
    monkeypatch.setattr(serving, "_step", die)
    with pytest.raises(SystemExit):
        ServingFolder(folder, store).promote()
    monkeypatch.undo()
    assert (folder / serving.JOURNAL_DIR).is_dir() and snapshot(folder) != before
    sf = ServingFolder(folder, store)
    old, new = sf.promote()  # recovers, then promotes for real
    assert "undid an interrupted" in sf.notes()[0]
    assert (old, new) == (models.ids["A"], models.ids["B"])
    assert not (folder / serving.JOURNAL_DIR).exists()


NAMES = ("manifest.json", "champion", "score.so", "README.md")
CHANGES = st.lists(
    st.tuples(st.sampled_from(NAMES), st.sampled_from(["link:bundles/x", "link:bundles/y", "remove", "rewrite"])),
    max_size=8,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=CHANGES, fail_at=st.integers(0, 8))
def test_the_journal_undoes_any_sequence_of_changes(tmp_path, changes, fail_at):
    """Law: whatever names a command changes (links set or removed, files replaced) and wherever it fails, the
    undo gives back the folder as it was."""
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    (folder / "manifest.json").write_text("{}")
    os.symlink("bundles/a", folder / "champion")
    (folder / "README.md").write_text(README_TEXT)  # score.so absent
    before = snapshot(folder)
    sf = ServingFolder(folder)
    with pytest.raises(RuntimeError), sf.lock(), sf._transaction():
        for i, (name, change) in enumerate(changes):
            if i == fail_at:
                raise RuntimeError("injected")
            if change.startswith("link:"):
                sf._set(name, change[5:])
            elif change == "remove":
                sf._set(name, None)
            else:
                sf._journal.before_change(name)
                (folder / ".new").write_text(f"version {i}")
                os.replace(folder / ".new", folder / name)
        raise RuntimeError("injected at the end")
    assert snapshot(folder) == before


# ---------------------------------------------------------------- history, rollback, lock


def test_rollback_walks_back_and_never_toggles(models, tmp_path):
    folder, store = fresh(models, tmp_path)
    A, B, C = models.ids["A"], models.ids["B"], models.ids["C"]
    runner = CliRunner()

    def credit(*args: str) -> str:
        result = runner.invoke(cli, [*args, "--model", str(folder), "--log-db", str(store)])
        assert result.exit_code == 0, result.output
        return result.output

    _install(folder, store, models)
    credit("promote")
    ServingFolder(folder, store).install_challenger(models.C, precompiled(models.C))
    credit("promote")
    assert ModelBundle.load(folder).model_id == C
    assert "would rollback: champion" in credit("promote", "--rollback", "--dry-run")
    assert ModelBundle.load(folder).model_id == C  # a dry run changes nothing
    credit("promote", "--rollback")
    assert ModelBundle.load(folder).model_id == B and ServingFolder(folder).status()["previous"] == A
    credit("promote", "--rollback")
    assert ModelBundle.load(folder).model_id == A and ServingFolder(folder).status()["previous"] is None
    result = runner.invoke(cli, ["promote", "--rollback", "--model", str(folder), "--log-db", str(store)])
    assert result.exit_code == 1 and "no earlier champion" in result.output
    assert ModelBundle.load(folder).model_id == A
    lines = credit("promote", "--history").strip().splitlines()
    actions = [line.split()[1] for line in lines]
    assert actions == ["rollback", "rollback", "promote", "install", "promote", "install", "adopt"]
    assert f"{C[:12]} -> {B[:12]}" in lines[1] and "promote --rollback" in lines[0]


def test_two_concurrent_promotes_never_lose_previous(models, tmp_path):
    trials = 8
    for t in range(trials):
        folder, store = fresh(models, tmp_path, f"t{t}")
        _install(folder, store, models)
        champion_bundle = layout.role_dir(folder, "champion").name
        results: list[object] = [None, None]
        start = threading.Barrier(2)

        def go(i: int, folder=folder, store=store, start=start, results=results) -> None:
            start.wait()
            try:
                results[i] = ServingFolder(folder, store).promote()
            except ModelError as exc:
                results[i] = exc

        threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        ok = [r for r in results if isinstance(r, tuple)]
        failed = [r for r in results if isinstance(r, ModelError)]
        assert len(ok) == 1 and len(failed) == 1, results
        assert "no challenger installed" in str(failed[0])
        assert layout.role_dir(folder, "previous").name == champion_bundle  # the old champion is reachable
        assert ModelBundle.load(folder).model_id == models.ids["B"]
        assert [r["action"] for r in ServingFolder(folder, store).history()] == ["promote", "install", "adopt"]


def test_two_concurrent_cli_promotes(models, tmp_path):
    folder, store = fresh(models, tmp_path)
    _install(folder, store, models)
    cmd = [str(Path(sys.executable).parent / "credit"), "promote", "--model", str(folder), "--log-db", str(store)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [(p.communicate(timeout=300)[0], p.returncode) for p in procs]
    outs = [(code, out) for out, code in outs]
    assert sorted(code for code, _ in outs) == [0, 1], outs
    assert any("no challenger installed" in out for _, out in outs)
    assert ServingFolder(folder).status()["previous"] == models.ids["A"]


def test_the_loser_of_the_lock_waits_then_fails_naming_the_holder(models, tmp_path):
    folder, store = fresh(models, tmp_path)
    _install(folder, store, models)
    before = snapshot(folder)
    holder = ServingFolder(folder, store, command="credit promote (holding)")
    with holder.lock():
        t0 = time.monotonic()
        with pytest.raises(LifecycleBusyError, match=r"holding.*waited 0.3 s"):
            ServingFolder(folder, store, lock_wait=0.3).promote()
        assert time.monotonic() - t0 >= 0.3
        result = CliRunner().invoke(cli, ["promote", "--model", str(folder), "--log-db", str(store), "--wait", "0.2"])
        assert result.exit_code == 1 and f"pid {os.getpid()}" in result.output
    assert snapshot(folder) == before


# ---------------------------------------------------------------- every entry point, after every command


def _entry_points(folder: Path, db: Path, api_url: str | None, ids: list[int]) -> dict[str, tuple]:
    """(model id, decisions of `ids`) as each entry point sees them now."""
    out: dict[str, tuple] = {}
    runner = CliRunner()
    # credit score and credit sql
    decisions = []
    model_id = None
    for cid in ids[:5]:
        result = runner.invoke(cli, ["score", str(cid), "--json", "--db", str(db), "--model", str(folder)])
        assert result.exit_code == 0, result.output
        obj = json.loads(result.output)
        decisions.append(obj["decision"])
        model_id = obj["model_id"]
    out["credit score"] = (model_id, tuple(decisions))
    in_list = ",".join(map(str, ids))
    query = f"SELECT model_id(), decision(client_id) FROM features WHERE client_id IN ({in_list}) ORDER BY client_id"
    result = runner.invoke(cli, ["sql", query, "--format", "csv", "--db", str(db), "--model", str(folder)])
    assert result.exit_code == 0, result.output
    rows = [line.split(",") for line in result.output.strip().splitlines()[1:]]
    out["credit sql"] = (rows[0][0], tuple(r[1] for r in rows))
    # the sqlite3 shell's `.load compiled/score` (and Datasette's --load-extension: the same file, the same load)
    script = f".load {folder}/score\n{query};\n"
    shell = subprocess.run(
        [shutil.which("sqlite3") or "sqlite3", "-readonly", str(db)], input=script, capture_output=True, text=True
    )
    assert shell.returncode == 0, shell.stderr
    rows = [line.split("|") for line in shell.stdout.strip().splitlines()]
    out["sqlite3 .load"] = (rows[0][0], tuple(r[1] for r in rows))
    # Dask batch scoring: the package shipped to the workers and the bundle a worker loads from it
    bundle = worker_model(ModelPackage.from_bundle(ModelBundle.load(folder)))
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    import numpy as np

    xs = dict(conn.execute(f"SELECT client_id, x FROM features WHERE client_id IN ({in_list})").fetchall())
    conn.close()
    out["dask worker"] = (
        bundle.model_id,
        tuple(bundle.decide(bundle.predict_row(np.frombuffer(xs[c], dtype="<f4"))) for c in ids),
    )
    if api_url is not None:
        with httpx.Client(base_url=api_url, headers=OFFICER, timeout=30) as http:
            answers = [http.get(f"/clients/{cid}/score").json() for cid in ids]
            ready = http.get("/readyz", headers=ADMIN).json()
        assert {a["model_id"] for a in answers} == {ready["model_id"]}
        out["API"] = (ready["model_id"], tuple(a["decision"] for a in answers))
    return out


def test_every_entry_point_decides_with_the_champion_after_every_command(models, tmp_path):
    data = copy_pipeline(models, tmp_path / "data")  # its own log
    folder, store = fresh(models, tmp_path)
    ids = client_ids(data.db, 40)
    runner = CliRunner()
    seen = []
    with ApiServer(data.db, folder, workers=2) as api:

        def check(after: str, expected: str) -> None:
            views = _entry_points(folder, data.db, api.url, ids)
            decisions = {name: d for name, (_m, d) in views.items()}
            for name, (model_id, d) in views.items():
                assert model_id == expected, (after, name, model_id[:12], expected[:12])
                assert d == decisions["credit sql"][: len(d)], (after, name)
            seen.append(decisions["credit sql"])

        check("start", models.ids["A"])
        result = runner.invoke(
            cli, ["compile", "--model", str(models.B), "--challenger", "--into", str(folder), "--log-db", str(store)]
        )
        # B is compiled already in its own folder: compiling it again into a bundle is the real command
        assert result.exit_code == 0, result.output
        assert "running API worker(s) switched" in result.output
        check("install", models.ids["A"])
        result = runner.invoke(cli, ["promote", "--model", str(folder), "--log-db", str(store)])
        assert result.exit_code == 0, result.output
        assert "2 running API worker(s) switched" in result.output
        check("promote", models.ids["B"])  # no sleep: the command returned only once every worker switched
        result = runner.invoke(cli, ["compile", "--model", str(folder)])
        assert result.exit_code == 1
        check("refused compile", models.ids["B"])
        result = runner.invoke(cli, ["promote", "--rollback", "--model", str(folder), "--log-db", str(store)])
        assert result.exit_code == 0, result.output
        check("rollback", models.ids["A"])
        status = runner.invoke(cli, ["promote", "--status", "--model", str(folder)]).output
        assert status.count("server      pid") == 2
    assert seen[0] == seen[-1] and seen[2] != seen[0]  # B decides differently from A on these clients


def test_a_server_that_does_not_switch_is_named_and_the_command_fails(models, tmp_path):
    folder, store = fresh(models, tmp_path)
    _install(folder, store, models)
    # a registered server that will never switch (a process that is alive: this test's)
    serving.register_server(folder, {"pointer": [None, None], "champion": models.ids["A"]})
    result = CliRunner().invoke(
        cli, ["promote", "--model", str(folder), "--log-db", str(store), "--server-wait", "0.3"]
    )
    serving.unregister_server(folder)
    assert result.exit_code == 2
    assert f"server pid {os.getpid()}" in result.output and "did not switch in time" in result.output
    assert ModelBundle.load(folder).model_id == models.ids["B"]  # the switch itself is made and recorded


def test_a_plain_folder_with_a_running_server_is_a_serving_folder(models, tmp_path):
    folder, _store = fresh(models, tmp_path)
    serving.register_server(folder, {"pointer": [None, None], "champion": models.ids["A"]})
    try:
        result = CliRunner().invoke(cli, ["compile", "--model", str(folder), "--no-tl2cgen"])
    finally:
        serving.unregister_server(folder)
    assert result.exit_code == 1 and "served by the running API" in result.output


# ---------------------------------------------------------------- no file on disk can crash a running server


def test_truncating_the_libraries_under_a_running_server(models, tmp_path):
    data = copy_pipeline(models, tmp_path / "data")
    folder, store = fresh(models, tmp_path)
    chal = ServingFolder(folder, store).install_challenger(models.B, precompiled(models.B))
    cid = client_ids(data.db, 1)[0]
    with ApiServer(data.db, folder) as api, api.client(headers=OFFICER) as http:
        assert http.get("/readyz", headers=ADMIN).json()["challenger_model_id"] == models.ids["B"]
        with open(chal.library_path, "r+b") as fh:  # `: > challenger/model-....so`: SIGBUS before issue 28
            saved = fh.read()
            fh.truncate(0)
        answer = http.get(f"/clients/{cid}/score")
        assert answer.status_code == 200 and answer.json()["model_id"] == models.ids["A"]
        ready = http.get("/readyz", headers=ADMIN).json()
        assert ready["challenger_model_id"] is None and "changed on disk" in ready["reason"]
        for _ in range(20):  # keep scoring: the process never maps the file on disk
            assert http.get(f"/clients/{cid}/score").status_code == 200
        champion = ModelBundle.load(folder)
        with open(champion.library_path, "r+b") as fh:  # the champion's: 503 naming it, never a signal
            saved_champion = fh.read()
            fh.truncate(0)
        answer = http.get(f"/clients/{cid}/score")
        assert answer.status_code == 503 and "changed on disk" in answer.text
        with open(champion.library_path, "wb") as fh:
            fh.write(saved_champion)
        with open(chal.library_path, "wb") as fh:
            fh.write(saved)
        assert http.get("/healthz").status_code == 200
        proc = api.proc
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, api.output()[-3000:]
