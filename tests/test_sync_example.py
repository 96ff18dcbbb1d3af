"""The embedded-sync example users copy from must keep working (it runs against a sandbox)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "embedded_sync.py"


def test_the_embedded_sync_example_pulls_syncs_and_shows_the_change_feed() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, check=True, timeout=120
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith("pull sandbox: success")
    assert any(line.startswith("sync sandbox: success") and "moved" in line for line in lines)
    assert any(line.split()[1:3] == ["moved", "unit"] for line in lines if line.startswith("  #"))
    assert any(line.startswith("refresh sandbox: success") for line in lines)
    assert "0 pending" in result.stdout
