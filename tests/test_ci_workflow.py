"""The hosted CI workflow runs the README's test command and builds and health-checks the container image."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def _runs(job: dict) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def test_the_test_job_runs_the_readme_test_command_on_debian():
    wf = yaml.safe_load(WORKFLOW.read_text())
    readme = (ROOT / "README.md").read_text()
    command = "./dev test"
    assert f"`{command}`" in readme
    job = wf["jobs"]["test"]
    assert command in [r.strip() for r in _runs(job)]
    assert "bookworm" in job["container"]  # Debian: apt brings the chromium the browser tests use
    assert job["env"]["CI"] == "true"
    assert (ROOT / ".ci" / "run").read_text().strip().endswith(command)


def test_the_image_job_builds_runs_health_checks_and_stops_the_image():
    wf = yaml.safe_load(WORKFLOW.read_text())
    runs = "\n".join(_runs(wf["jobs"]["image"]))
    assert re.search(r"docker build .* -t pret-a-depenser \.", runs)
    assert "docker run -d" in runs and "docker/healthcheck.py" in runs and "/readyz" in runs
    assert "docker stop" in runs and "ExitCode" in runs


def test_the_readme_shows_the_badge_of_this_workflow():
    readme = (ROOT / "README.md").read_text()
    assert "actions/workflows/ci.yml/badge.svg" in readme
    assert "(.github/workflows/ci.yml)" in readme


def _check_workflow(path: Path) -> subprocess.CompletedProcess:
    tool = Path(sys.executable).parent / "check-jsonschema"
    if not tool.exists():
        pytest.fail("check-jsonschema not installed in the venv (dev extra)")
    return subprocess.run(
        [str(tool), "--builtin-schema", "vendor.github-workflows", str(path)], capture_output=True, text=True
    )


def test_the_workflow_is_valid_against_the_github_workflow_schema():
    res = _check_workflow(WORKFLOW)
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_schema_check_refuses_a_broken_workflow(tmp_path):
    wf = yaml.safe_load(WORKFLOW.read_text())
    del wf["jobs"]["test"]["runs-on"]
    wf["jobs"]["test"]["timeout-minutes"] = "soon"
    broken = tmp_path / "ci.yml"
    broken.write_text(yaml.safe_dump(wf))
    res = _check_workflow(broken)
    assert res.returncode != 0 and "runs-on" in res.stdout + res.stderr
