"""The retry policy set from the ``[sync.retry]`` TOML table reaches the client that pulls and syncs."""

from __future__ import annotations

from pathlib import Path

import pytest

from rorclient.config import Settings
from rorclient.errors import RorError
from rorclient.sandbox import Sandbox
from rorclient.sync import Sync


def settings_with_retry(sandbox: Sandbox, tmp_path: Path, table: str) -> Settings:
    config = sandbox.write_client_config(tmp_path / "client.toml", source_name="sandbox")
    with config.open("a", encoding="utf-8") as out:
        out.write(f'\n[sync]\ndata_dir = "{tmp_path / "data"}"\n\n[sync.retry]\n{table}\n')
    return Settings.load(config, environ={}, store_url="memory://")


def test_the_retry_table_is_read_with_durations_in_the_daemon_syntax(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[sync.retry]\nmax_attempts = 6\nmax_total = "5m"\ninitial_wait = 0.25\nmax_wait = "30s"\n'
    )
    retry = Settings.load(path, environ={}).sync.retry
    assert (retry.max_attempts, retry.max_total, retry.initial_wait, retry.max_wait) == (6, 300, 0.25, 30)
    assert retry.max_retry_after == 60  # a key left out keeps its default


def test_max_attempts_from_the_toml_decides_whether_a_transient_failure_is_retried(tmp_path: Path) -> None:
    fast = "initial_wait = 0\njitter = 0\nmax_retry_after = 0\n"
    with Sandbox(establishments=3, seed=5) as sandbox:
        sandbox.faults.add("extraction", "503", count=1, retry_after=0)
        once = settings_with_retry(sandbox, tmp_path / "once", "max_attempts = 1\n" + fast)
        with Sync.from_settings(once) as sync, pytest.raises(RorError) as failure:
            sync.pull()
        assert failure.value.retryable  # a 503: the default policy would have tried again
        assert sandbox.faults.fired() == {"503": 1}

        sandbox.faults.add("extraction", "503", count=2, retry_after=0)
        thrice = settings_with_retry(sandbox, tmp_path / "thrice", "max_attempts = 3\n" + fast)
        with Sync.from_settings(thrice) as sync:
            report = sync.pull()
        assert report.ok and report.entities > 0
        assert sandbox.faults.fired() == {"503": 3}
