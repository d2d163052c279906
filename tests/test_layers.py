"""Layers that only point down: each part of the code imports only the parts listed for it in ALLOWED, and no two
modules import each other (directly or round a longer loop). Every import counts, at the top of a module or inside
a function: a lazy import is still a dependency.

    base      app/__init__, errors, files, progress, ids, vectors, cluster (Dask clients), features_parquet
              (the export format): plain helpers and the facts every layer shares
    store     the operational store (prediction log, migrations)
    data      generate, ingest, features, what-if
    scoring   the compiled model, its bundle, the database functions, decisions and their fairness metrics
    config    the settings (reads the store's default path)
    model     train, compile, explain, report, card
    monitoring  drift, outcomes, performance, traffic, live fairness
    rights    decision letters, counterfactuals, reviews, overrides (above model and monitoring)
    service   the API
    accounts  the people who may act (scrypt account store, password throttle): the dashboard's login and the
              command line's --as (above service: an account's role is one of the API's roles)
    cli, ui   the commands and the dashboard, at the top
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BASE = {"base"}
ALLOWED: dict[str, set[str]] = {
    "base": BASE,
    "store": BASE,
    "data": BASE | {"store"},
    "scoring": BASE | {"store"},
    "config": BASE | {"store"},
    "model": BASE | {"config", "data", "scoring", "store"},
    "monitoring": BASE | {"config", "data", "scoring", "store"},
    "rights": BASE | {"config", "data", "scoring", "store", "model", "monitoring"},
    "service": BASE | {"config", "data", "scoring", "store", "model", "monitoring", "rights"},
    "accounts": BASE | {"service"},
    "cli": BASE | {"config", "data", "scoring", "store", "model", "monitoring", "rights", "service", "accounts", "ui"},
    "ui": BASE | {"config", "data", "scoring", "store", "model", "monitoring", "rights", "service", "accounts", "cli"},
}
BASE_MODULES = {
    "app",
    "app.errors",
    "app.files",
    "app.progress",
    "app.ids",
    "app.vectors",
    "app.cluster",
    "app.features_parquet",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "ui":
        return "ui"
    if module in BASE_MODULES:
        return "base"
    if parts[1] in ("config", "accounts"):
        return parts[1]
    if (ROOT / "app" / parts[1]).is_dir():
        return parts[1]
    raise AssertionError(f"{module}: no layer (add it to BASE_MODULES or to a package)")


def project_modules() -> dict[str, Path]:
    files = [*ROOT.glob("app/**/*.py"), *ROOT.glob("ui/**/*.py")]
    return {module_name(f): f for f in files}


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `module` imports, anywhere in its file (`from app import store` -> app.store)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in known:  # app.scoring.db.connect -> app.scoring.db
                name = name.rpartition(".")[0]
            if name and name != module:
                out.add(name)
    return out


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {m: imports(m, p, known) for m, p in modules.items()}


def test_every_import_points_down_the_table():
    climbs = sorted(
        f"{m} ({layer(m)}) imports {n} ({layer(n)})"
        for m, deps in graph().items()
        for n in deps
        if layer(n) != layer(m) and layer(n) not in ALLOWED[layer(m)]
    )
    assert climbs == []


def test_no_two_modules_import_each_other_even_round_a_loop():
    edges = graph()
    for deps in edges.values():  # a package's __init__ is not a step of a loop through its own modules
        deps.discard("app")
    cycles, state = [], {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = "open"
        for n in sorted(edges.get(m, ())):
            if state.get(n) == "open":
                cycles.append(" -> ".join([*stack[stack.index(n) :], n]))
            elif n not in state:
                visit(n, [*stack, n])
        state[m] = "done"

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_the_checker_sees_a_climb_and_a_loop(tmp_path):
    """The two checks above can fail: a data module importing the service is a climb, a mutual import a loop."""
    known = {"app.data.x", "app.service.schemas", "app.scoring.a", "app.scoring.b"}
    (tmp_path / "x.py").write_text("def f():\n    from app.service.schemas import MAX_ID\n")
    deps = imports("app.data.x", tmp_path / "x.py", known)
    assert deps == {"app.service.schemas"} and "service" not in ALLOWED[layer("app.data.x")]
    (tmp_path / "a.py").write_text("from app.scoring import b\n")
    assert imports("app.scoring.a", tmp_path / "a.py", known) == {"app.scoring.b"}
