"""Two daemons on one PostgreSQL store: exactly one syncs; kill it and the other takes over in time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rorclient.sandbox import Sandbox

pytest_plugins = ("tests.pg",)

INTERVAL_SECONDS = 2.0


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(establishments=6, seed=9) as sb:
        yield sb


def start_daemon(config: Path, store_url: str, health: Path, tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rorclient.cli", "--config", str(config), "--store", store_url, "daemon",
         "--interval", f"{INTERVAL_SECONDS:g}s", "--health-file", str(health), "--log-json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
    )  # fmt: skip


def health_of(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def wait_until(condition: Any, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s")


def test_one_daemon_syncs_the_other_waits_and_takes_over_after_a_kill(
    sandbox: Sandbox,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    config = sandbox.write_client_config(tmp_path / "client.toml")
    health = [tmp_path / "a.json", tmp_path / "b.json"]
    daemons = [start_daemon(config, postgres_url, health[0], tmp_path)]
    try:
        wait_until(lambda: health_of(health[0]).get("status") == "ok", 60)
        daemons.append(start_daemon(config, postgres_url, health[1], tmp_path))
        wait_until(lambda: health_of(health[1]).get("status") == "standby", 60)
        # The standby daemon never syncs while the first holds the store's lock.
        time.sleep(2 * INTERVAL_SECONDS)
        assert health_of(health[1]).get("status") == "standby"
        assert health_of(health[1]).get("last_success") is None

        daemons[0].send_signal(signal.SIGKILL)
        daemons[0].wait(10)
        takeover = wait_until(lambda: health_of(health[1]).get("last_success") is not None, 60)
        print(f"standby took over {takeover:.1f} s after the kill")
        assert takeover <= INTERVAL_SECONDS + 5.0, f"took {takeover:.1f} s to take over"
        assert health_of(health[1]).get("status") == "ok"
    finally:
        for daemon in daemons:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(20)
                except subprocess.TimeoutExpired:
                    daemon.kill()
