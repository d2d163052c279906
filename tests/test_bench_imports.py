"""Every name the benchmark suite imports from the product exists.

The benchmarks import the product inside their functions (a part runs in its own process), so a name renamed or
removed in app/ breaks only the benchmark run that reaches it, minutes into the quick pass. This reads every
`from app... import ...` in benchmarks/ and checks the name is there, in a second."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def product_imports() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(BENCHMARKS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("app", "ui"):
                found += [(f"{path.name}:{node.lineno}", node.module, alias.name) for alias in node.names]
    return found


def test_the_scan_finds_the_suites_imports():
    assert len(product_imports()) > 50
    assert ("app.model.compile", "reference_probabilities") in {(m, n) for _, m, n in product_imports()}


@pytest.mark.parametrize(("where", "module", "name"), product_imports(), ids=lambda v: str(v))
def test_every_imported_name_exists(where, module, name):
    mod = importlib.import_module(module)
    assert hasattr(mod, name) or importlib.util.find_spec(f"{module}.{name}") is not None, f"{where}: {module}.{name}"
