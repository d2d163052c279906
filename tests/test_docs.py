"""The docs (README.md and the manual's pages, docs/*.md) document every command and every setting
(datasette-style), and the manual builds as a site with no broken link or anchor."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner

from app.cli.main import COMMANDS, cli
from app.config import SETTINGS_DOC, Settings, load_settings

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCS = "\n".join(p.read_text() for p in PAGES)
MKDOCS = [sys.executable, "-m", "mkdocs", "build", "--strict"]
QUIET = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}


def test_every_command_is_documented():
    missing = [name for name in COMMANDS if f"credit {name}" not in DOCS]
    assert not missing, f"commands in neither README.md nor docs/*.md: {missing}"


def test_the_manual_builds_as_a_site_with_every_page_and_no_broken_link(tmp_path):
    out = subprocess.run([*MKDOCS, "-d", str(tmp_path / "site")], cwd=ROOT, env=QUIET, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    for page in (ROOT / "docs").glob("*.md"):  # no nav list: every page is in the site
        html = tmp_path / "site" / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")
        assert html.is_file(), f"{page.name} is not in the site"


def test_the_site_build_fails_on_a_broken_link_or_anchor(tmp_path):
    """The project's own mkdocs.yml settings, on two tiny pages: a link to a missing page, then to a missing anchor."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config.update(docs_dir=str(tmp_path / "docs"), site_dir=str(tmp_path / "site"))
    (tmp_path / "docs").mkdir()
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## A part\n")
    for link, complaint in [("missing.md", "missing.md"), ("other.md#no-such-part", "no-such-part")]:
        (tmp_path / "docs" / "index.md").write_text(f"# Home\n\n[there]({link})\n")
        out = subprocess.run(MKDOCS, cwd=tmp_path, env=QUIET, capture_output=True, text=True, timeout=300)
        assert out.returncode != 0 and complaint in out.stdout + out.stderr, out.stdout + out.stderr
    (tmp_path / "docs" / "index.md").write_text("# Home\n\n[there](other.md#a-part)\n")
    out = subprocess.run(MKDOCS, cwd=tmp_path, env=QUIET, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_command_has_help():
    runner = CliRunner()
    for name in COMMANDS:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output


def test_every_setting_is_documented():
    for _name, var, default, _help in SETTINGS_DOC:
        row = re.search(rf"^\| `{var}` \|.*$", DOCS, re.MULTILINE)
        assert row, f"{var} missing from the configuration table (docs/configuration.md)"
        assert f"`{default}`" in row.group(0), f"{var}: documented default differs from {default!r}"


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
