"""The public surface of rorclient.ror: explicit exports, rorclient exceptions only, third-party
libraries confined to their adapter modules."""

from __future__ import annotations

import inspect
import re
import typing
from pathlib import Path

import rorclient.ror
import rorclient.ror.errors
from rorclient.errors import RemoteError, RorError, TlsError, TransportError

PACKAGE = Path(rorclient.ror.__file__).parent


def test_every_exported_name_exists_once() -> None:
    for module in (rorclient.ror, rorclient.ror.errors, rorclient.ror.models):
        exported = module.__all__
        assert len(exported) == len(set(exported))
        assert all(hasattr(module, name) for name in exported)


def test_errors_belong_to_the_rorclient_families() -> None:
    families = {TransportError: True, RemoteError: None, TlsError: False}
    for name in rorclient.ror.errors.__all__:
        error = getattr(rorclient.ror.errors, name)
        if not inspect.isclass(error):
            continue
        family = next(f for f in families if issubclass(error, f))
        assert issubclass(error, RorError)
        if families[family] is not None:
            assert error.retryable is families[family], name
    assert rorclient.ror.ServerFaultError.retryable and not rorclient.ror.SoapFaultError.retryable


def test_httpx_and_zeep_are_imported_by_the_adapter_modules_only() -> None:
    allowed = {"_http.py": {"httpx"}, "_soap.py": {"zeep"}}
    for path in PACKAGE.glob("*.py"):
        imported = set(re.findall(r"^\s*(?:import|from)\s+(httpx|zeep)\b", path.read_text(), re.M))
        assert imported <= allowed.get(path.name, set()), f"{path.name} imports {imported}"


def _modules_of(hint: object) -> set[str]:
    """The modules of every type a resolved annotation mentions (``X | None``, ``Callable[[A], B]``...)."""
    found = {getattr(hint, "__module__", "")}
    for argument in typing.get_args(hint):
        if isinstance(argument, list):
            for item in argument:
                found |= _modules_of(item)
        else:
            found |= _modules_of(argument)
    return found


def test_public_signatures_mention_no_third_party_type() -> None:
    """Resolved, not read as text: an alias of an httpx type (``HttpTransport = httpx.BaseTransport``)
    counts as httpx."""
    for name, member in inspect.getmembers(rorclient.ror.RorClient, inspect.isfunction):
        if name.startswith("_") and name != "__init__":
            continue
        for parameter, hint in typing.get_type_hints(member).items():
            third_party = {m for m in _modules_of(hint) if m.split(".")[0] in {"httpx", "zeep", "lxml"}}
            assert not third_party, (name, parameter, third_party)
