"""The sync daemon: schedule, full pulls, failures, graceful stop on SIGTERM, one instance per store,
health file, JSON logs; and the store lock it relies on."""

from __future__ import annotations

import configparser
import datetime as dt
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rorclient._lock import lock_file_path, writer_lock
from rorclient.daemon import Daemon, DaemonOptions, JsonLogFormatter, configure_logging, parse_duration
from rorclient.errors import ConfigError
from rorclient.health import read_health
from rorclient.sandbox import Sandbox
from rorclient.store.base import Store
from rorclient.store.memory import MemoryStore
from rorclient.store.sqlite import SqliteStore
from rorclient.sync import Sync, SyncOptions
from tests._sync_fakes import FakeRor, transport_error

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FAST = {"interval": dt.timedelta(seconds=0.01), "jitter": 0.0, "retry_after": dt.timedelta(seconds=0.01)}


def make_sync(ror: FakeRor, store: Store, tmp_path: Path) -> Sync:
    options = SyncOptions(data_dir=tmp_path / "data")
    return Sync(store=store, client=ror, source="test", options=options, clock=lambda: ror.now)


@pytest.fixture
def ror() -> FakeRor:
    return FakeRor(6)


# ---- durations ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15m", 900),
        ("7d", 604800),
        ("1h30m", 5400),
        ("90", 90),
        ("2w", 1209600),
        ("1.5h", 5400),
        ("500ms", 0.5),
    ],
)
def test_durations_read_like_the_command_line_writes_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "soon", "15 minutes", "-5m"])
def test_a_bad_duration_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text)


# ---- the loop -------------------------------------------------------------------------------------


def test_the_first_run_pulls_then_each_run_syncs_and_the_health_file_says_ok(
    ror: FakeRor, tmp_path: Path
) -> None:
    store = MemoryStore()
    health = tmp_path / "health.json"
    daemon = Daemon(make_sync(ror, store, tmp_path), DaemonOptions(max_runs=3, health_file=health, **FAST))
    assert daemon.run() == 0
    assert [run.operation for run in reversed(store.runs())] == ["pull", "sync", "sync"]
    state = read_health(health)
    assert state.status == "ok" and state.pid == os.getpid()
    assert state.last_run is not None and state.last_run.operation == "sync"
    assert state.watermark is not None and state.lag_seconds is not None and state.pending == 0
    assert state.store == "memory://"


def test_a_full_pull_replaces_the_sync_once_the_last_one_is_older_than_full_every(
    ror: FakeRor, tmp_path: Path
) -> None:
    store = MemoryStore()
    sync = make_sync(ror, store, tmp_path)
    sync.pull()
    state = store.sync_state("test")
    assert state is not None
    week_ago = state.model_copy(update={"last_full_pull": state.taken_at - dt.timedelta(days=8)})
    with store.transaction() as transaction:
        transaction.set_sync_state(week_ago)
    Daemon(sync, DaemonOptions(max_runs=1, **FAST)).run()
    assert store.runs()[0].operation == "pull"
    Daemon(sync, DaemonOptions(max_runs=1, **FAST)).run()
    assert store.runs()[0].operation == "sync"
    Daemon(sync, DaemonOptions(max_runs=1, full_every=None, **FAST)).run()
    assert store.runs()[0].operation == "sync"


def test_failures_are_reported_and_retried_sooner(ror: FakeRor, tmp_path: Path) -> None:
    store = MemoryStore()
    sync = make_sync(ror, store, tmp_path)
    sync.pull()

    def down(since: dt.datetime, **_: object) -> list[str]:
        raise transport_error("the ROR is down")

    ror.changed_establishments = down  # type: ignore[method-assign]
    health = tmp_path / "health.json"
    options = DaemonOptions(
        max_runs=2, health_file=health, interval=dt.timedelta(hours=1), retry_after=dt.timedelta(seconds=0.01)
    )
    started = time.monotonic()
    Daemon(sync, options).run()
    assert time.monotonic() - started < 30  # the retry did not wait for the hour
    state = read_health(health)
    assert state.status == "failing" and state.consecutive_failures == 2
    assert state.last_error is not None and "the ROR is down" in state.last_error
    assert store.runs()[0].status == "failed"


def test_a_tripped_safety_breaker_shows_as_blocked(ror: FakeRor, tmp_path: Path) -> None:
    store = MemoryStore()
    sync = make_sync(ror, store, tmp_path)
    sync.pull()
    for key in list(ror.offers)[:4]:
        ror.remove(key)
    health = tmp_path / "health.json"
    Daemon(sync, DaemonOptions(max_runs=1, health_file=health, full_every=None, **FAST)).run()
    state = read_health(health)
    assert state.status == "blocked" and state.last_error is not None and "safety breaker" in state.last_error


def test_pending_establishments_make_the_health_degraded(ror: FakeRor, tmp_path: Path) -> None:
    store = MemoryStore()
    sync = make_sync(ror, store, tmp_path)
    sync.pull()
    key = next(iter(ror.offers))
    ror.mutate(key, "rename")
    ror.failing[key] = transport_error()
    health = tmp_path / "health.json"
    Daemon(sync, DaemonOptions(max_runs=1, health_file=health, full_every=None, **FAST)).run()
    state = read_health(health)
    assert state.status == "degraded" and state.pending == 1


def test_stop_lets_the_establishment_in_flight_finish_and_leaves_the_watermark(
    ror: FakeRor, tmp_path: Path
) -> None:
    store = MemoryStore()
    sync = make_sync(ror, store, tmp_path)
    sync.pull()
    for key in ror.offers:
        ror.mutate(key, "rename")
    before = store.sync_state("test")
    health = tmp_path / "health.json"
    daemon = Daemon(sync, DaemonOptions(health_file=health, full_every=None, **FAST))
    reads = 0

    def stop_midway(key: str) -> None:
        nonlocal reads
        reads += 1
        if reads == 3:
            daemon.stop()

    ror.on_read = stop_midway
    assert daemon.run() == 0
    assert store.runs()[0].status == "interrupted"
    assert store.sync_state("test") == before
    assert read_health(health).status == "stopped"


def test_a_second_daemon_on_the_same_store_stands_by_and_takes_over(tmp_path: Path) -> None:
    database = tmp_path / "ror.db"
    first_health, second_health = tmp_path / "first.json", tmp_path / "second.json"
    with SqliteStore(database) as first_store, SqliteStore(database) as second_store:
        first = Daemon(
            make_sync(FakeRor(6), first_store, tmp_path),
            DaemonOptions(health_file=first_health, **{**FAST, "interval": dt.timedelta(seconds=0.05)}),
        )
        second = Daemon(
            make_sync(FakeRor(6), second_store, tmp_path),
            DaemonOptions(health_file=second_health, standby_step=0.05, **FAST),
        )
        threads = [threading.Thread(target=first.run)]
        threads[0].start()
        wait_for(lambda: first_health.exists() and read_health(first_health).status == "ok")
        threads.append(threading.Thread(target=second.run))
        threads[1].start()
        wait_for(lambda: second_health.exists() and read_health(second_health).status == "standby")
        first.stop()
        wait_for(lambda: read_health(second_health).status == "ok")
        second.stop()
        for thread in threads:
            thread.join(30)
    assert read_health(first_health).status == "stopped"


def wait_for(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


# ---- a real process: signals, lock, logs -----------------------------------------------------------

DAEMON = r"""
import datetime as dt, sys
from pathlib import Path
from rorclient.config import Settings
from rorclient.daemon import DaemonOptions, configure_logging, run_daemon
from rorclient.sync import SyncOptions

config, database, health, data = sys.argv[1:5]
configure_logging(json_lines=True)
settings = Settings.load(config, environ={}, store_url="sqlite:///" + database)
options = DaemonOptions(interval=dt.timedelta(seconds=0.2), health_file=Path(health))
sys.exit(run_daemon(settings, options, sync_options=SyncOptions(data_dir=Path(data))))
"""


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(establishments=8, seed=2) as sb:
        yield sb


def test_sigterm_stops_the_daemon_cleanly_and_logs_are_json_lines(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.write_client_config(tmp_path / "client.toml", source_name="sandbox")
    database, health = tmp_path / "ror.db", tmp_path / "health.json"
    process = subprocess.Popen(
        [sys.executable, "-c", DAEMON, str(config), str(database), str(health), str(tmp_path / "data")],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: health.exists() and read_health(health).status == "ok")
        with SqliteStore(database) as store:
            assert lock_file_path(store).read_text().strip() == str(process.pid)  # type: ignore[union-attr]
            with writer_lock(store, wait=False) as held:
                assert not held  # one instance per store
        sandbox.mutate(count=2, seed=1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert read_health(health).status == "stopped"
    assert process.stderr is not None
    with process.stderr:
        lines = [json.loads(line) for line in process.stderr.read().splitlines()]
    assert any(line["message"].startswith("pull sandbox: success") and "run_id" in line for line in lines)
    assert any("SIGTERM" in line["message"] for line in lines)
    assert lines[-1]["message"] == "daemon stopped"
    with SqliteStore(database) as store, writer_lock(store, wait=False) as held:
        assert held


def test_the_lock_dies_with_its_holder(tmp_path: Path) -> None:
    database = tmp_path / "ror.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from rorclient._lock import writer_lock\n"
            "from rorclient.store.sqlite import SqliteStore\n"
            "with SqliteStore(sys.argv[1]) as store, writer_lock(store) as held:\n"
            "    print(held, flush=True)\n"
            "    time.sleep(60)\n",
            str(database),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        with SqliteStore(database) as store:
            with writer_lock(store, wait=0.1) as held:
                assert not held
            holder.send_signal(signal.SIGKILL)
            holder.wait()
            with writer_lock(store, wait=5) as held:
                assert held
    finally:
        if holder.poll() is None:
            holder.kill()
        if holder.stdout is not None:
            holder.stdout.close()


def test_the_lock_of_a_memory_store_is_per_store_object() -> None:
    store, other = MemoryStore(), MemoryStore()
    with writer_lock(store, wait=False) as held, writer_lock(other, wait=False) as other_held:
        assert held and other_held
        with writer_lock(store, wait=0.01) as again:
            assert not again
    with pytest.raises(ConfigError):
        writer_lock(store, wait=-1)


def test_json_log_lines_carry_the_structured_fields() -> None:
    stream = io.StringIO()
    configure_logging(json_lines=True, stream=stream)
    try:
        logging.getLogger("rorclient.sync").info(
            "sync done", extra={"run_id": "abc", "counts": {"created": 2}}
        )
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("rorclient.daemon").exception("failed")
    finally:
        configure_logging(json_lines=False)
        logging.getLogger("rorclient").propagate = True
        logging.getLogger("rorclient").handlers.clear()
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "sync done" and first["run_id"] == "abc" and first["counts"] == {"created": 2}
    assert first["level"] == "info" and first["logger"] == "rorclient.sync" and first["ts"].endswith("+00:00")
    assert "ValueError: boom" in second["exception"]
    assert isinstance(JsonLogFormatter().format(logging.makeLogRecord({"msg": "x"})), str)


def test_the_systemd_unit_example_runs_the_daemon_and_stops_it_with_sigterm() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(EXAMPLES / "rorclient-sync.service")
    assert "rorclient daemon" in unit["Service"]["ExecStart"]
    assert unit["Service"]["KillSignal"] == "SIGTERM"
    assert unit["Service"]["Restart"] == "on-failure"
