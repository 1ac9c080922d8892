"""The Dagster boundary: only the wiring imports dagster. Everything else (run pipeline,
ledger, collector, target, chaos faults, Prometheus, review, store, CLI) is plain Python
that the wiring and the CLI both call, and importing it loads no Dagster.

A static walk of every module's imports (at any depth, so a lazy import counts too,
except the CLI's lazy call into the wiring for `deliverydags demo`)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "deliverydags"
# The wiring: the one package that imports dagster, and the root module that merges it.
WIRING = ("defs/", "definitions.py")
LAZY_CALLERS = {"cli/main.py": {"deliverydags.defs.demo"}}


def _module(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _is_wiring(rel: str) -> bool:
    return any(rel == w or rel.startswith(w) for w in WIRING)


def _imports(path: Path) -> set[str]:
    """Every module name an import in ``path`` names, relative imports resolved."""
    tree = ast.parse(path.read_text())
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}
    return names


def _wiring_modules() -> set[str]:
    return {_module(p) for p in PACKAGE.rglob("*.py") if _is_wiring(str(p.relative_to(PACKAGE)))}


def test_only_the_wiring_imports_dagster() -> None:
    wiring = _wiring_modules()
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(PACKAGE))
        if _is_wiring(rel):
            continue
        allowed = LAZY_CALLERS.get(rel, set())
        for name in _imports(path):
            if name == "dagster" or name.startswith(("dagster.", "dagster_")):
                offenders.append(f"{rel} imports {name}")
            elif name in wiring and name not in allowed:
                offenders.append(f"{rel} imports the wiring module {name}")
    assert not offenders, "\n".join(offenders)


def test_the_walk_sees_imports() -> None:
    # The test above must be able to fail: the wiring itself imports dagster.
    assert "dagster" in _imports(PACKAGE / "definitions.py")
    assert "deliverydags.scenarios.catalog" in _imports(PACKAGE / "defs" / "assets" / "catalog.py")
