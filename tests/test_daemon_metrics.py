"""The daemon's Prometheus metrics (``rorclient daemon --metrics-port``): a running daemon against the
sandbox answers ``GET /metrics``; runs, changes, breaker and failures are counted as they happen."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rorclient.cli import main
from rorclient.daemon import Daemon, DaemonOptions
from rorclient.errors import ConfigError
from rorclient.metrics import DaemonMetrics
from rorclient.sandbox import Sandbox
from rorclient.store.base import ChangeKind
from rorclient.store.memory import MemoryStore
from rorclient.sync import Sync, SyncOptions
from tests._sync_fakes import FakeRor, transport_error

FAST = {"interval": dt.timedelta(seconds=0.01), "jitter": 0.0, "retry_after": dt.timedelta(seconds=0.01)}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """``{(name, labels): value}`` for every sample of a Prometheus text exposition."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def scrape(metrics: DaemonMetrics) -> Samples:
    return samples(generate_latest(metrics.registry).decode())


def make_sync(ror: FakeRor, tmp_path: Path) -> Sync:
    options = SyncOptions(data_dir=tmp_path / "data")
    return Sync(store=MemoryStore(), client=ror, source="test", options=options, clock=lambda: ror.now)


# ---- in process ------------------------------------------------------------------------------------


def test_runs_and_applied_changes_are_counted_by_operation_outcome_and_kind(tmp_path: Path) -> None:
    ror = FakeRor(6)
    sync = make_sync(ror, tmp_path)
    metrics = DaemonMetrics("test")
    Daemon(sync, DaemonOptions(max_runs=1, **FAST), metrics=metrics).run()
    found = scrape(metrics)
    assert value(found, "rorclient_runs_total", source="test", operation="pull", outcome="success") == 1
    assert value(found, "rorclient_run_duration_seconds_count", source="test", operation="pull") == 1
    created = value(found, "rorclient_changes_applied_total", source="test", kind="created")
    assert created == sync.status().entities > 0
    assert value(found, "rorclient_changes_applied_total", source="test", kind="deleted") == 0
    assert value(found, "rorclient_pending_establishments", source="test") == 0
    assert value(found, "rorclient_safety_breaker_tripped", source="test") == 0
    assert value(found, "rorclient_daemon_state", source="test", state="ok") == 1
    last_success = value(found, "rorclient_last_success_timestamp_seconds", source="test")
    assert last_success is not None and abs(last_success - time.time()) < 60
    lag = value(found, "rorclient_lag_seconds", source="test")
    assert lag is not None and 0 <= lag < 60

    ror.mutate(next(iter(ror.offers)), "new_unit")
    Daemon(sync, DaemonOptions(max_runs=1, full_every=None, **FAST), metrics=metrics).run()
    found = scrape(metrics)
    assert value(found, "rorclient_runs_total", source="test", operation="sync", outcome="success") == 1
    assert value(found, "rorclient_changes_applied_total", source="test", kind="created") > created


def test_a_tripped_breaker_counts_a_blocked_run_and_applies_nothing(tmp_path: Path) -> None:
    ror = FakeRor(6)
    sync = make_sync(ror, tmp_path)
    sync.pull()
    for key in list(ror.offers)[:4]:
        ror.remove(key)
    metrics = DaemonMetrics("test")
    Daemon(sync, DaemonOptions(max_runs=1, full_every=None, **FAST), metrics=metrics).run()
    found = scrape(metrics)
    assert value(found, "rorclient_runs_total", source="test", operation="sync", outcome="blocked") == 1
    assert value(found, "rorclient_safety_breaker_tripped", source="test") == 1
    assert value(found, "rorclient_changes_applied_total", source="test", kind="deleted") == 0


def test_failed_runs_are_counted_with_the_consecutive_failures(tmp_path: Path) -> None:
    ror = FakeRor(6)
    sync = make_sync(ror, tmp_path)
    sync.pull()

    def down(since: dt.datetime, **_: object) -> list[str]:
        raise transport_error("the ROR is down")

    ror.changed_establishments = down  # type: ignore[method-assign]
    metrics = DaemonMetrics("test")
    Daemon(sync, DaemonOptions(max_runs=2, full_every=None, **FAST), metrics=metrics).run()
    found = scrape(metrics)
    assert value(found, "rorclient_runs_total", source="test", operation="sync", outcome="failed") == 2
    assert value(found, "rorclient_consecutive_failures", source="test") == 2
    assert value(found, "rorclient_daemon_state", source="test", state="failing") == 1


def test_without_prometheus_client_the_option_is_a_clear_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # what a missing package looks like
    with pytest.raises(ConfigError, match=r"pip install 'rorclient\[metrics\]'"):
        DaemonMetrics("test")
    code = main(["--store", f"sqlite:///{tmp_path / 'ror.db'}", "daemon", "--metrics-port", "9464"])
    assert code == ConfigError.exit_code
    assert "prometheus-client" in capsys.readouterr().err


# ---- a running daemon against the sandbox ------------------------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(establishments=8, seed=3) as sb:
        yield sb


def runs(found: Samples, operation: str, outcome: str) -> float:
    return value(found, "rorclient_runs_total", source="sandbox", operation=operation, outcome=outcome) or 0


def applied(found: Samples) -> float:
    return sum(
        value(found, "rorclient_changes_applied_total", source="sandbox", kind=kind.value) or 0
        for kind in ChangeKind
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def poll(url: str, condition: Callable[[Samples], bool], timeout: float = 30.0) -> Samples:
    deadline = time.monotonic() + timeout
    found: Samples = {}
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        assert response.status_code == 200
        found = samples(response.text)
        if condition(found):
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out; last scrape: {found}")


def test_a_running_daemon_serves_its_metrics_over_http(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.write_client_config(tmp_path / "client.toml", source_name="sandbox")
    port = free_port()
    command = [
        sys.executable,
        "-c",
        "import sys; from rorclient.cli import main; sys.exit(main())",
        "--config",
        str(config),
        "--store",
        f"sqlite:///{tmp_path / 'ror.db'}",
        "daemon",
        "--interval",
        "300ms",
        "--metrics-port",
        str(port),
    ]
    environment = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    log = (tmp_path / "daemon.log").open("w", encoding="utf-8")  # read on failure; never fills a pipe
    process = subprocess.Popen(command, stderr=log, text=True, env=environment)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        found = poll(url, lambda s: runs(s, "sync", "success") >= 1)
        assert runs(found, "pull", "success") == 1
        created = value(found, "rorclient_changes_applied_total", source="sandbox", kind="created")
        assert created is not None and created > 0
        assert value(found, "rorclient_pending_establishments", source="sandbox") == 0
        assert value(found, "rorclient_safety_breaker_tripped", source="sandbox") == 0
        assert value(found, "rorclient_daemon_state", source="sandbox", state="ok") == 1
        days = value(found, "rorclient_certificate_days_left", source="sandbox")
        assert days is not None and days > 0
        last_success = value(found, "rorclient_last_success_timestamp_seconds", source="sandbox")
        assert last_success is not None and abs(last_success - time.time()) < 120
        lag = value(found, "rorclient_lag_seconds", source="sandbox")
        assert lag is not None and 0 <= lag < 120

        sandbox.mutate(count=3, seed=1)
        changed = poll(url, lambda s: applied(s) > applied(found))
        assert runs(changed, "sync", "success") >= 2
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        log.close()
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=2)  # the endpoint stops with the daemon


def test_a_metrics_port_already_taken_is_a_config_error_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            DaemonMetrics("test").serve(port)
