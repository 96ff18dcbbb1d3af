"""The ROR sandbox: a local ROR v2.4 simulator, its test PKI and its synthetic data.

``from rorclient.sandbox import Sandbox`` — see :mod:`rorclient.sandbox.server`. Names are imported on
first use, so ``rorclient.sandbox.pki`` or ``rorclient.sandbox.dataset`` stay cheap to import alone.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rorclient.sandbox._clock import SandboxClock
    from rorclient.sandbox._faults import FaultInjector, FaultRule
    from rorclient.sandbox._options import ErrorCodes, SandboxOptions
    from rorclient.sandbox._platines import PLATINES_ESTABLISHMENT_ID, platines_offer
    from rorclient.sandbox._settings import SandboxSettings
    from rorclient.sandbox.mutations import MUTATION_KINDS, Mutation
    from rorclient.sandbox.pki import TestPki, build_test_pki
    from rorclient.sandbox.server import Sandbox, default_tls_dir, pytest_fixture, serve_forever

__all__ = [
    "MUTATION_KINDS",
    "PLATINES_ESTABLISHMENT_ID",
    "ErrorCodes",
    "FaultInjector",
    "FaultRule",
    "Mutation",
    "Sandbox",
    "SandboxClock",
    "SandboxOptions",
    "SandboxSettings",
    "TestPki",
    "build_test_pki",
    "default_tls_dir",
    "platines_offer",
    "pytest_fixture",
    "serve_forever",
]

_WHERE = {
    "SandboxClock": "_clock",
    "FaultInjector": "_faults",
    "FaultRule": "_faults",
    "ErrorCodes": "_options",
    "SandboxOptions": "_options",
    "SandboxSettings": "_settings",
    "PLATINES_ESTABLISHMENT_ID": "_platines",
    "platines_offer": "_platines",
    "MUTATION_KINDS": "mutations",
    "Mutation": "mutations",
    "TestPki": "pki",
    "build_test_pki": "pki",
    "Sandbox": "server",
    "default_tls_dir": "server",
    "pytest_fixture": "server",
    "serve_forever": "server",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'rorclient.sandbox' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"rorclient.sandbox.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
