"""Shared fixtures: an environment isolated from the user's, where the reference material lives, and the
official schemas, loaded once."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._shared import (  # the paths are also importable from here, as they used to be
    FHIR_SAMPLES,
    MISSING_REASON,
    NOMENCLATURES,
    OFFLINE_SCHEMAS,
    REPO,
    REQUIRE_ENV,
    SAMPLES,
    SHARED,
    SHARED_ENV,
    SKIP_LOCATION,
    SPEC,
    require_shared,
    shared_available,
)

__all__ = ["FHIR_SAMPLES", "NOMENCLATURES", "OFFLINE_SCHEMAS", "REPO", "SAMPLES", "SHARED", "SPEC"]

# Before any test module imports it (whichever is collected first): readable assertion failures.
pytest.register_assert_rewrite("rorclient.testing.store_conformance")


def pytest_report_header() -> str:
    found = "found" if shared_available() else f"MISSING, the tests that need it skip (set {SHARED_ENV})"
    return f"reference material: {SPEC} ({found})"


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get(REQUIRE_ENV) == "1" and not shared_available():
        raise pytest.UsageError(f"{REQUIRE_ENV}=1 but {MISSING_REASON}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Every skip for want of the reference material is reported at one place, so ``-ra`` folds them
    into one line (pytest would otherwise print one line per test that asked for a fixture)."""
    report: pytest.TestReport = yield
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple) and longrepr[2].endswith(MISSING_REASON):
        report.longrepr = (*SKIP_LOCATION, longrepr[2])
    return report


#: ``RORCLIENT_*`` variables a test run may take from its environment; every other one is removed.
KEPT_VARIABLES = frozenset(
    {"RORCLIENT_SHARED_DIR", "RORCLIENT_REQUIRE_SHARED", "RORCLIENT_TEST_POSTGRES_URL"}
)
_HOME_VARIABLES = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")


def _isolate(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Point HOME and the XDG directories under ``home``; drop the user's ``RORCLIENT_*`` settings (a
    config file, a store URL, a password) so that no test reads or writes the real ones."""
    monkeypatch.setenv("HOME", str(home))
    for name in _HOME_VARIABLES:
        monkeypatch.setenv(name, str(home / name.removeprefix("XDG_").removesuffix("_HOME").lower()))
    for name in list(os.environ):
        if name.startswith("RORCLIENT_") and name not in KEPT_VARIABLES:
            monkeypatch.delenv(name)


@pytest.fixture(scope="session", autouse=True)
def _isolated_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """For session- and module-scoped fixtures, built before any test's own isolation."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        _isolate(monkeypatch, tmp_path_factory.mktemp("home"))
        yield


@pytest.fixture(autouse=True)
def _isolated_test(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own empty HOME and XDG directories (nothing left by another test)."""
    _isolate(monkeypatch, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    require_shared()
    return SAMPLES


@pytest.fixture(scope="session")
def fhir_samples_dir() -> Path:
    """The official ROR FHIR example resources (shared/ror-spec/fhir-samples)."""
    require_shared()
    return FHIR_SAMPLES


@pytest.fixture(scope="session")
def csd_schema() -> Any:
    """The official CSD + ROR extension XSD (XSD 1.1), for validating what we write."""
    import xmlschema

    require_shared()
    return xmlschema.XMLSchema11(str(OFFLINE_SCHEMAS / "IHE_ProfilCSD-ExtensionROR_fr-v2.4.xsd"))


@pytest.fixture(scope="session")
def ror_wsdl_schema() -> Any:
    """The schema embedded in the official WSDL (Notif wrappers, ``erreur``)."""
    import xmlschema

    require_shared()
    return xmlschema.XMLSchema11(str(OFFLINE_SCHEMAS / "ror-wsdl-types.xsd"))
