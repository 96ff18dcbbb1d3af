"""The public surface: explicit exports listed in docs/api.md, our models and exceptions only, a package
that tells a newcomer where to start."""

from __future__ import annotations

import importlib
import os
import pkgutil
import pydoc
import re
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import pytest

import rorclient
from rorclient.errors import ConfigError, RorError
from rorclient.store import open_store

API_DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def public_modules() -> list[str]:
    """``rorclient`` and every module under it whose dotted name has no part starting with ``_``."""
    found = ["rorclient"]
    for module in pkgutil.walk_packages(rorclient.__path__, "rorclient."):
        if not any(part.startswith("_") for part in module.name.split(".")[1:]):
            found.append(module.name)
    return found


def documented_exports() -> dict[str, list[str]]:
    """``{module: [names]}`` as docs/api.md lists them (``## `module` `` headings, ``- `name` `` items)."""
    exports: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in API_DOC.read_text(encoding="utf-8").splitlines():
        if heading := re.fullmatch(r"## `([\w.]+)`", line):
            current = exports.setdefault(heading.group(1), [])
        elif (item := re.match(r"- `(\w+)`", line)) and current is not None:
            current.append(item.group(1))
    return exports


PUBLIC_MODULES = public_modules()


def bullet(module: object, symbol: str) -> str:
    """A docs/api.md line for ``symbol``: its name and the first sentence of its docstring."""
    value = getattr(module, symbol)
    own = value.__dict__.get("__doc__") if isinstance(value, type) else getattr(value, "__doc__", None)
    first = textwrap.dedent(own or "").strip().split("\n\n")[0].replace("\n", " ").split(". ")[0]
    return f"- `{symbol}` — {first.rstrip('.') or 'TODO: say what it is'}"


def test_docs_api_lists_exactly_the_exports_of_every_public_module() -> None:
    documented = documented_exports()
    problems = []
    for name in PUBLIC_MODULES:
        exported = getattr(importlib.import_module(name), "__all__", None)
        if exported is None:
            problems.append(f"{name} has no __all__")
        elif name not in documented:
            module = importlib.import_module(name)
            lines = "\n".join(bullet(module, symbol) for symbol in exported)
            problems.append(f"{name} is missing from docs/api.md; add:\n## `{name}`\n\n{lines}\n")
        else:
            added = sorted(set(exported) - set(documented[name]))
            gone = sorted(set(documented[name]) - set(exported))
            if added:
                module = importlib.import_module(name)
                lines = "\n".join(bullet(module, symbol) for symbol in added)
                problems.append(f"{name} exports names docs/api.md does not list; add:\n{lines}")
            if gone:
                problems.append(f"docs/api.md lists {', '.join(gone)} under {name}, which does not export it")
    for name in sorted(set(documented) - set(PUBLIC_MODULES)):
        problems.append(f"docs/api.md documents {name}, which is not a public module")
    assert not problems, "\n".join(problems)


def test_an_embedding_application_finds_what_it_needs_in_the_package() -> None:
    from rorclient.sync import NotInitializedError, SafetyBreakerError, SyncLockedError

    for name in ("Sync", "Settings", "open_store", "EntityQuery", "Page", "Change", "ChangeKind", "Sandbox"):
        assert name in rorclient.__all__
    assert rorclient.SafetyBreakerError is SafetyBreakerError
    assert rorclient.SyncLockedError is SyncLockedError
    assert rorclient.NotInitializedError is NotInitializedError
    from rorclient import Sandbox  # imported on first use
    from rorclient.sandbox import Sandbox as SandboxClass

    assert Sandbox is SandboxClass
    assert "Sandbox" in dir(rorclient)
    with pytest.raises(AttributeError, match="no attribute 'Sandboxx'"):
        rorclient.Sandboxx  # noqa: B018


def quick_start() -> str:
    """The code block of the package docstring (the lines after ``::``, up to the next paragraph)."""
    after = (rorclient.__doc__ or "").split("::\n\n", 1)[1].splitlines()
    block = []
    for line in after:
        if line and not line.startswith(" "):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block)).strip()


def test_the_quick_start_of_the_package_docstring_runs_as_written(tmp_path: Path) -> None:
    code = quick_start()
    assert 8 <= len([line for line in code.splitlines() if line.strip()]) <= 12  # about ten lines
    environment = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    environment.pop("RORCLIENT_STORE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("pull sandbox: success")
    assert any(line.startswith("sync sandbox: success") for line in lines)
    kinds = {kind.value for kind in rorclient.ChangeKind}
    assert any(line.split()[0] in kinds for line in lines[1:])  # the change feed printed the changes
    assert (tmp_path / "ror.sqlite3").exists()


def test_help_opens_on_the_quick_start_and_the_index() -> None:
    text = pydoc.render_doc(rorclient, renderer=pydoc.plaintext)
    description = text.split("DESCRIPTION", 1)[1]
    assert description.lstrip().startswith("Quick start")
    assert quick_start().splitlines()[0] in description[:600]
    for name in ("SafetyBreakerError", "open_store", "Sandbox", "docs/api.md"):
        assert name in description.split("PACKAGE CONTENTS", 1)[0]


def test_sandbox_keyword_arguments_are_typed_and_match_its_options() -> None:
    from rorclient.sandbox import Sandbox, SandboxOptions, SandboxSettings

    hints = typing.get_type_hints(SandboxSettings)
    assert set(hints) == set(SandboxOptions.model_fields)
    for name, field in SandboxOptions.model_fields.items():
        assert hints[name] == field.annotation, name
    assert typing.get_type_hints(Sandbox.__init__)["settings"] == typing.Unpack[SandboxSettings]
    with pytest.raises(ConfigError, match="establishmentz"):
        Sandbox(establishmentz=3)  # type: ignore[call-arg]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_module_declares_what_it_exports(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported)), f"{name}.__all__ repeats a name"
    for symbol in exported:
        assert hasattr(module, symbol), f"{name}.__all__ names {symbol!r}, which does not exist"


def test_importing_the_package_does_not_import_network_or_soap_libraries() -> None:
    import subprocess
    import sys

    code = (
        "import sys, rorclient, rorclient.store, rorclient.csd;"
        "print('httpx' in sys.modules, 'zeep' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_every_exception_is_a_ror_error_with_a_retry_verdict() -> None:
    for name in rorclient.errors.__all__:
        cls = getattr(rorclient.errors, name)
        assert issubclass(cls, RorError)
        assert isinstance(cls.retryable, bool)
    assert rorclient.TransportError.retryable
    assert not rorclient.DataError.retryable


def test_unknown_store_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no store is registered for the URL scheme 'nosuch'"):
        open_store("nosuch://x")
    with pytest.raises(ConfigError, match="has no scheme"):
        open_store("just-a-path.db")


def test_the_query_example_of_docs_stores_runs_and_pages_through_every_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (API_DOC.parent / "stores.md").read_text(encoding="utf-8")
    code = text.split("## Queries", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/stores.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    total = int(lines[0].split()[0])
    listed = [
        line for line in lines[1:] if line.split()[-1] in {level.value for level in rorclient.UnitLevel}
    ]
    assert total > 5 and len(listed) == total  # every page was read, none twice
    assert any(line.startswith("unit ") for line in lines) and any(
        "médecine" in line.lower() for line in lines
    )
