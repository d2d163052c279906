"""The command line is at the edge: click only in app/cli/ (and the dashboard's own ui/main.py), domain errors
become `Error: ...` in one place, Settings built once per command, and the domain modules work as a library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from app.cli.main import COMMANDS
from app.cli.options import CreditCommand, CreditGroup, command, with_settings
from app.config import Settings, SettingsError, load_settings
from app.errors import CreditError

ROOT = Path(__file__).resolve().parents[1]
EDGE = {"app/cli", "ui/main.py"}  # where click may be imported
SETTINGS_READERS = {"app/config.py", "app/cli/options.py", "app/service/api.py"}  # api.py: app_from_env (child)


def _python_files():
    for top in ("app", "ui"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            yield rel, ast.parse(path.read_text(encoding="utf-8"), filename=rel)


def _at_edge(rel: str) -> bool:
    return any(rel == e or rel.startswith(e + "/") for e in EDGE)


def _imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_click_is_imported_only_by_the_command_modules():
    offenders = [
        rel
        for rel, tree in _python_files()
        if not _at_edge(rel) and any(m == "click" or m.startswith("click.") for m in _imported_modules(tree))
    ]
    assert offenders == [], f"click imported outside app/cli/ and ui/main.py: {offenders}"


def test_domain_modules_do_not_import_the_command_modules():
    offenders = [
        rel
        for rel, tree in _python_files()
        if not _at_edge(rel) and any(m == "app.cli" or m.startswith("app.cli.") for m in _imported_modules(tree))
    ]
    assert offenders == [], offenders


def test_load_settings_is_called_only_where_settings_are_built():
    callers = set()
    for rel, tree in _python_files():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
                if name == "load_settings":
                    callers.add(rel)
    assert callers <= SETTINGS_READERS, sorted(callers - SETTINGS_READERS)


def test_every_command_lives_in_app_cli_or_ui_main_and_is_a_credit_command():
    import importlib

    for name, (target, _help) in COMMANDS.items():
        module, attr = target.split(":")
        assert module.startswith("app.cli.") or module == "ui.main", (name, module)
        if module == "ui.main":
            continue  # the dashboard's own edge (needs nicegui)
        cmd = getattr(importlib.import_module(module), attr)
        assert isinstance(cmd, CreditCommand | CreditGroup), (name, type(cmd))


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_domain_modules_import_without_click():
    _run(
        "import sys\n"
        "sys.modules['click'] = None  # any `import click` now fails (uvicorn and distributed import it: not here)\n"
        "import app.data.ingest, app.data.ingest_csv, app.data.synthetic, app.model.compile, app.model.explain\n"
        "import app.model.train, app.monitoring.drift, app.monitoring.traffic, app.scoring.batch, app.model.card\n"
    )


def test_the_scoring_and_explain_commands_import_no_heavy_library():
    code = (
        "import sys\n"
        "import app.cli.main, app.cli.model, app.cli.sql\n"
        "print(sorted(k for k in ('pandas', 'lightgbm', 'sklearn', 'shap') if k in sys.modules))\n"
    )
    assert _run(code) == "[]"


# ------------------------------------------------------------------ errors at the edge


class _PartError(CreditError, ValueError):
    pass


def test_a_domain_error_becomes_error_message_and_exit_1():
    @command("boom")
    def boom() -> None:
        raise _PartError("data/x.csv line 3 column AGE: cannot parse 'abc' as a number")

    res = CliRunner().invoke(boom, [])
    assert res.exit_code == 1
    assert res.output == "Error: data/x.csv line 3 column AGE: cannot parse 'abc' as a number\n"


def test_other_exceptions_and_exit_codes_pass_through():
    @command("exits")
    @click.option("--code", type=int)
    def exits(code: int) -> None:
        if code:
            sys.exit(code)
        raise KeyError("a bug, not a user error")

    assert CliRunner().invoke(exits, ["--code", "3"]).exit_code == 3
    res = CliRunner().invoke(exits, ["--code", "0"])
    assert res.exit_code == 1 and isinstance(res.exception, KeyError)


def test_a_group_converts_the_errors_of_its_subcommands():
    @click.group("g", cls=CreditGroup)
    def g() -> None:
        pass

    @g.command("sub")
    def sub() -> None:
        raise _PartError("nothing imported")

    assert isinstance(sub, CreditCommand)
    res = CliRunner().invoke(g, ["sub"])
    assert res.exit_code == 1 and "Error: nothing imported" in res.output


# ------------------------------------------------------------------ settings once


@command("show")
@click.option("--db", default=None)
@click.option("--api", default=None)
@click.option("--allow-other-data", is_flag=True)
@click.option("--n", type=int, default=1)
@with_settings("db", "allow_other_data", api="api_url")
def _show(settings: Settings, n: int) -> None:
    click.echo(f"{settings.db}|{settings.api_url}|{settings.allow_other_data}|{n}")


def test_with_settings_builds_settings_from_the_options_over_the_environment():
    runner = CliRunner()
    env = {"CREDIT_DB": "env.db", "CREDIT_API_URL": "http://127.0.0.1:9", "CREDIT_ALLOW_OTHER_DATA": "1"}
    assert runner.invoke(_show, [], env=env).output == "env.db|http://127.0.0.1:9|True|1\n"
    res = runner.invoke(_show, ["--db", "opt.db", "--api", "http://127.0.0.1:7", "--n", "4"], env=env)
    assert res.output == "opt.db|http://127.0.0.1:7|True|4\n"
    res = runner.invoke(_show, ["--allow-other-data"], env={"CREDIT_ALLOW_OTHER_DATA": "0"})
    assert res.output.endswith("|True|1\n")
    defaults = Settings()
    res = runner.invoke(_show, [], env={k: "" for k in env})
    assert res.output == f"{defaults.db}|{defaults.api_url}|{defaults.allow_other_data}|1\n"


def test_with_settings_names_a_bad_environment_variable():
    res = CliRunner().invoke(_show, [], env={"CREDIT_ALLOW_OTHER_DATA": "maybe"})
    assert res.exit_code == 1
    assert "Error: environment variable CREDIT_ALLOW_OTHER_DATA='maybe' is not a boolean" in res.output
    with pytest.raises(SettingsError):
        load_settings({"CREDIT_ALLOW_OTHER_DATA": "maybe"})


# ------------------------------------------------------------------ library use, no click


LIBRARY_USE = """
import json, sys
sys.modules["click"] = None  # the library must work where click cannot be imported
from pathlib import Path
from app.errors import CreditError
from app.model.explain import ExplainError, Explainer, explain_client
from app.scoring.batch import BatchError, export_features, read_export_manifest
from app.scoring.db import connect

db, model_dir, out = (Path(a) for a in sys.argv[1:4])
explainer = Explainer.load(model_dir)
conn = connect(db, readonly=True)
client_id = conn.execute("SELECT client_id FROM features ORDER BY client_id LIMIT 1").fetchone()[0]
explained = explain_client(conn, explainer, client_id, top=3, lang="en")
unknown = explain_client(conn, explainer, 10**15, top=3)
conn.close()
manifest = export_features(db, out, rows_per_partition=1000, progress=False)
try:
    read_export_manifest(out.parent / "nothing")
    error = None
except BatchError as exc:
    error = [isinstance(exc, CreditError), str(exc)]
print(json.dumps({"client_id": client_id, "explained": explained, "unknown": unknown, "rows": manifest["rows"],
                  "reread": read_export_manifest(out)["rows"], "error": error,
                  "explain_error_is_credit_error": issubclass(ExplainError, CreditError)}))
"""


def test_explain_and_batch_as_a_library_without_click(pipeline, tmp_path):
    """explain and batch called as plain functions with click unimportable; their errors are CreditErrors."""
    import json

    out = json.loads(_run_args(LIBRARY_USE, pipeline.db, pipeline.model_dir, tmp_path / "export"))
    explained = out["explained"]
    assert explained["client_id"] == out["client_id"] and explained["decision"] in ("accept", "refuse")
    assert len(explained["reasons"]) <= 3 and out["unknown"] is None
    assert out["rows"] > 0 and out["reread"] == out["rows"]
    assert out["error"][0] is True and "a `credit export` folder" in out["error"][1]
    assert out["explain_error_is_credit_error"] is True


def _run_args(code: str, *args: object) -> str:
    res = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_train_reports_progress_through_a_callback(pipeline, tmp_path, capsys):
    from app.model.train import train

    lines: list[str] = []
    train(pipeline.db, tmp_path / "m", seed=7, quick=True, trials=1, progress=lines.append)
    assert any(line.startswith("loaded ") and str(pipeline.db) in line for line in lines), lines
    assert "loaded " not in capsys.readouterr().err  # the callback got the lines, nothing printed them
