"""The README documents every command and every setting (datasette-style)."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from app.cli.main import COMMANDS, cli
from app.config import SETTINGS_DOC, Settings, load_settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_command_is_documented():
    missing = [name for name in COMMANDS if f"credit {name}" not in README]
    assert not missing, f"commands not in README.md: {missing}"


def test_every_command_has_help():
    runner = CliRunner()
    for name in COMMANDS:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output


def test_every_setting_is_documented():
    for _name, var, default, _help in SETTINGS_DOC:
        row = re.search(rf"^\| `{var}` \|.*$", README, re.MULTILINE)
        assert row, f"{var} missing from the README configuration table"
        assert f"`{default}`" in row.group(0), f"{var}: README default differs from {default!r}"


def test_settings_doc_matches_struct():
    assert [n for n, *_ in SETTINGS_DOC] == list(Settings.__struct_fields__)
    defaults = Settings()
    for name, _var, default, _help in SETTINGS_DOC:
        assert getattr(defaults, name) == default


def test_environment_overrides_and_bad_values():
    s = load_settings({"CREDIT_DB": "/tmp/x.db", "CREDIT_PORT": "9000"}, model_dir="m")
    assert (s.db, s.port, s.model_dir) == ("/tmp/x.db", 9000, "m")
    try:
        load_settings({"CREDIT_PORT": "eighty"})
    except ValueError as exc:
        assert "CREDIT_PORT" in str(exc)
    else:
        raise AssertionError("a bad CREDIT_PORT must be refused")


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and "0.1.0" in result.output
