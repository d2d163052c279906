"""Tests that need a program: skipped, saying which, where it is missing; under CI (which installs everything
through `just system-deps`) they run anyway, so a missing program fails instead of hiding the tests."""

from __future__ import annotations

import os
import shutil

import pytest


def needs(program: str, install: str) -> pytest.MarkDecorator:
    missing = shutil.which(program) is None and not os.environ.get("CI")
    return pytest.mark.skipif(missing, reason=f"needs {program} ({install})")
