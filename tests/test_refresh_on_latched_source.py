"""A refresh runs on a source whose safety breaker is latched — the operator's own check of one
establishment or unit — but says so, and leaves the latch for the operator to decide."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rorclient.store.memory import MemoryStore
from rorclient.sync import RunStatus, SafetyBreakerError, Sync, SyncOptions
from tests._sync_fakes import FakeRor


def test_a_refresh_on_a_latched_source_runs_says_so_and_leaves_the_latch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ror, store = FakeRor(8), MemoryStore()
    sync = Sync(
        store=store,
        client=ror,
        source="test",
        options=SyncOptions(data_dir=tmp_path / "data"),
        clock=lambda: ror.now,
    )
    sync.pull()
    keys = list(ror.offers)
    for key in keys[:4]:
        ror.remove(key)
    with pytest.raises(SafetyBreakerError):
        sync.sync()
    latch = sync.breaker_latch()
    assert latch is not None

    ror.mutate(keys[-1], "rename")
    with caplog.at_level(logging.WARNING, logger="rorclient.sync"):
        report = sync.refresh(establishment=keys[-1])
    assert report.status is RunStatus.SUCCESS and report.counts["updated"] == 1, "it ran"
    assert report.breaker is not None and report.breaker.latched
    assert "safety breaker stays latched" in report.summary()
    assert any(
        "latched" in record.getMessage() and "runs anyway" in record.getMessage() for record in caplog.records
    )
    assert sync.breaker_latch() == latch, "the latch is the operator's to release"
    sync.close()
