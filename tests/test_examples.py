"""The examples users copy from must keep working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_query_store_example_runs_on_a_sample(samples_dir: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "query_store.py"),
            str(samples_dir / "lecture_response_full_body.xml"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "6 entities loaded" in result.stdout
    assert "CONSULTATIONS DERMATOLOGIE" in result.stdout
