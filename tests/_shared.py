"""Where the reference material lives (``shared/``: official XSD and WSDL, PLATINES projects, samples,
nomenclatures) and how tests that need it skip when it is absent.

The material is found through ``RORCLIENT_SHARED_DIR`` or, by default, ``../shared`` beside the checkout.
Without it, the tests that read it skip, all with one reason naming the variable, and every other test
runs; CI sets ``RORCLIENT_REQUIRE_SHARED=1`` so that a missing copy fails the run instead.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest

SHARED_ENV = "RORCLIENT_SHARED_DIR"
REQUIRE_ENV = "RORCLIENT_REQUIRE_SHARED"
SHARED_MODULE = Path(__file__).resolve()
REPO = SHARED_MODULE.parent.parent
SHARED = Path(os.environ.get(SHARED_ENV) or REPO.parent / "shared")
SPEC = SHARED / "ror-spec"
SAMPLES = SPEC / "samples"
FHIR_SAMPLES = SPEC / "fhir-samples"
SCHEMAS = SPEC / "schemas"
OFFLINE_SCHEMAS = SCHEMAS / "offline"
NOMENCLATURES = SPEC / "nomenclatures"
PLATINES = SPEC / "platines"

MISSING_REASON = (
    f"reference material not found at {SPEC}: set {SHARED_ENV} to the folder holding ror-spec/ "
    "(see README.md, 'Reference material')"
)


def shared_available() -> bool:
    return SPEC.is_dir()


def require_shared() -> None:
    """Skip the calling test (or, at import time, its whole module) when the material is absent."""
    if not shared_available():
        pytest.skip(MISSING_REASON, allow_module_level=True)


def _skip_line() -> int:
    lines, first = inspect.getsourcelines(require_shared)
    return first + next(n for n, line in enumerate(lines) if "pytest.skip(" in line)


SKIP_LOCATION = (str(SHARED_MODULE), _skip_line())
"""Where ``require_shared`` skips: every such skip is reported there, so ``pytest -ra`` prints one line."""
