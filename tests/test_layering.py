"""Settings at the edge only: the engine, the clients, the sources and the stores take plain arguments
and never import ``rorclient.config``; no module outside ``rorclient.store`` imports its private
modules. Imports are read with ``ast`` (``TYPE_CHECKING`` blocks and imports inside functions count)."""

from __future__ import annotations

import ast
import importlib
import typing
from pathlib import Path

import pytest

import rorclient

PACKAGE = Path(rorclient.__file__).resolve().parent

#: The modules that turn settings into objects (the edges) and the settings package itself.
CONFIG_IMPORTERS = frozenset(
    {
        "rorclient",  # re-exports Settings for embedding applications
        "rorclient.cli",
        "rorclient.daemon",
        "rorclient.demo",
    }
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute or relative, anywhere in the file."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return _imports_in(path.read_text(encoding="utf-8"), package)


def _imports_in(text: str, package: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


MODULES = {_module_name(path): _imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_only_the_edges_import_the_settings() -> None:
    offenders = sorted(
        module
        for module, imports in MODULES.items()
        if not _within(module, "rorclient.config")
        and module not in CONFIG_IMPORTERS
        and any(_within(name, "rorclient.config") for name in imports)
    )
    assert offenders == [], f"modules below the edges that import rorclient.config: {offenders}"


def test_the_check_sees_every_form_of_import() -> None:
    """The walk above would catch a lazy, typing-only or relative import (not just a top-level one)."""
    sample = PACKAGE / "sync" / "engine.py"
    imports = _imports(sample)
    assert "rorclient.sources" in imports and "rorclient.store.registry.open_store" in imports
    text = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from rorclient.config import Settings\n"
        "def f():\n    import rorclient.config\n"
        "from .. import config\n"
    )
    found = _imports_in(text, "rorclient.sync")
    assert {"rorclient.config", "rorclient.config.Settings"} <= found


def test_no_module_outside_the_stores_imports_their_private_modules() -> None:
    offenders = sorted(
        module
        for module, imports in MODULES.items()
        if not _within(module, "rorclient.store")
        and any(_within(name, "rorclient.store._sql") for name in imports)
    )
    assert offenders == [], f"modules outside rorclient.store that import rorclient.store._sql: {offenders}"


@pytest.mark.parametrize(
    "target",
    [
        "rorclient.ror.RorClient.__init__",
        "rorclient.sources.CsdWebServiceSource.__init__",
        "rorclient.sources.FhirSource.__init__",
        "rorclient.sources.FileSource.__init__",
        "rorclient.sync.Sync.__init__",
        "rorclient.sync.Sync.from_settings",
    ],
)
def test_constructors_have_resolvable_type_hints(target: str) -> None:
    """Their annotations name no typing-only import (``typing.get_type_hints`` resolves them)."""
    owner, _, function_name = target.rpartition(".")
    module_path, _, class_name = owner.rpartition(".")
    function = getattr(getattr(importlib.import_module(module_path), class_name), function_name)
    hints = typing.get_type_hints(function)
    assert "return" in hints
