"""Shared fixtures: where the reference material lives and the official schemas, loaded once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

# Before any test module imports it (whichever is collected first): readable assertion failures.
pytest.register_assert_rewrite("rorclient.testing.store_conformance")

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("RORCLIENT_SHARED_DIR", REPO.parent / "shared"))
SPEC = SHARED / "ror-spec"
SAMPLES = SPEC / "samples"
FHIR_SAMPLES = SPEC / "fhir-samples"
OFFLINE_SCHEMAS = SPEC / "schemas" / "offline"
NOMENCLATURES = SPEC / "nomenclatures"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    assert SAMPLES.is_dir(), f"reference samples not found at {SAMPLES} (set RORCLIENT_SHARED_DIR)"
    return SAMPLES


@pytest.fixture(scope="session")
def fhir_samples_dir() -> Path:
    """The official ROR FHIR example resources (shared/ror-spec/fhir-samples)."""
    if not FHIR_SAMPLES.is_dir():
        pytest.skip(f"official FHIR samples not found at {FHIR_SAMPLES} (set RORCLIENT_SHARED_DIR)")
    return FHIR_SAMPLES


@pytest.fixture(scope="session")
def csd_schema() -> Any:
    """The official CSD + ROR extension XSD (XSD 1.1), for validating what we write."""
    import xmlschema

    return xmlschema.XMLSchema11(str(OFFLINE_SCHEMAS / "IHE_ProfilCSD-ExtensionROR_fr-v2.4.xsd"))


@pytest.fixture(scope="session")
def ror_wsdl_schema() -> Any:
    """The schema embedded in the official WSDL (Notif wrappers, ``erreur``)."""
    import xmlschema

    return xmlschema.XMLSchema11(str(OFFLINE_SCHEMAS / "ror-wsdl-types.xsd"))
