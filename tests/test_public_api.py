"""The public surface: explicit exports, our models and exceptions only."""

from __future__ import annotations

import importlib

import pytest

import rorclient
from rorclient.errors import ConfigError, RorError
from rorclient.store import open_store

PUBLIC_MODULES = [
    "rorclient",
    "rorclient.errors",
    "rorclient.models",
    "rorclient.store",
    "rorclient.config",
    "rorclient.export",
    "rorclient.loader",
    "rorclient.nomenclature",
    "rorclient.csd",
    "rorclient.ror",
    "rorclient.tls",
    "rorclient.fhir",
]


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
