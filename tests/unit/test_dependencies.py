"""The runtime dependencies pyproject declares are exactly what the shipped package imports.

A declared package nothing imports still lands in every image (the `kubernetes` client once
added ~170 MB); an imported package nobody declared works on a developer's machine and fails
in the image. Optional extras (embedded PostgreSQL, TLS for the simulator) are not runtime
dependencies: code that uses them imports them lazily and says what to install.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "operator" / "inventory_sync"


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_runtime() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {
        _normalised(re.split(r"[\[<>=!~ ;]", spec, maxsplit=1)[0])
        for spec in project["dependencies"]
    }


def imported_top_levels(*, module_level_only: bool) -> set[str]:
    """Top-level names the package imports; `module_level_only` leaves out lazy imports."""
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        nodes = tree.body if module_level_only else list(ast.walk(tree))
        for node in nodes:
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"inventory_sync", "__future__"}


def distributions_of(top_levels: set[str]) -> dict[str, set[str]]:
    owners = packages_distributions()
    return {name: {_normalised(d) for d in owners.get(name, [])} for name in top_levels}


def test_every_declared_runtime_dependency_is_imported_by_the_package() -> None:
    imported = set().union(*distributions_of(imported_top_levels(module_level_only=False)).values())
    unused = declared_runtime() - imported
    assert not unused, f"declared in [project] dependencies but never imported: {sorted(unused)}"


def test_every_module_level_import_is_a_declared_dependency() -> None:
    declared = declared_runtime()
    undeclared = {
        name: owners
        for name, owners in distributions_of(imported_top_levels(module_level_only=True)).items()
        if not owners & declared
    }
    assert not undeclared, f"imported at module level but not declared: {undeclared}"
