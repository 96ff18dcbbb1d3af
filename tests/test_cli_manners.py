"""The command line talks like its peers: every option explained with its default, one line per error,
times with their zone, a progress display that is throttled and silent off a terminal, and a demo that
never touches the user's own store."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import logging
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rorclient.cli import _build_parser, main
from rorclient.daemon import Daemon, DaemonOptions
from rorclient.demo import demo_store_url
from rorclient.loader import LoadProgress
from rorclient.progress import ProgressLine, describe_progress
from rorclient.sandbox import Sandbox
from rorclient.sandbox.dataset import write_extraction
from rorclient.store import open_store
from rorclient.store.memory import MemoryStore
from rorclient.store.registry import default_store_url
from rorclient.store.sqlite import SqliteStore
from rorclient.sync import Sync, SyncOptions
from rorclient.sync.events import ProgressEvent
from tests._sync_fakes import FakeRor, transport_error


def _parsers(
    parser: argparse.ArgumentParser, name: str = "rorclient"
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(name, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                found += _parsers(sub, f"{name} {sub_name}")
    return found


def _required_group_members(parser: argparse.ArgumentParser) -> set[argparse.Action]:
    return {a for group in parser._mutually_exclusive_groups if group.required for a in group._group_actions}


def test_every_option_has_help_text_that_gives_its_default() -> None:
    missing = []
    for name, parser in _parsers(_build_parser()):
        required = _required_group_members(parser)
        for action in parser._actions:
            if isinstance(
                action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)
            ):
                continue
            text = action.help or ""
            label = f"{name} {'/'.join(action.option_strings) or action.dest}"
            if not text:
                missing.append(f"{label}: no help")
            elif (
                action.option_strings
                and not action.required
                and action not in required
                and "default" not in text
            ):
                missing.append(f"{label}: no default in {text!r}")
    assert missing == []


def test_help_shows_the_daemon_interval_and_sandbox_port_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, expected in (
        (["daemon", "--help"], "(default: 15m)"),
        (["sandbox", "--help"], "(default: 8443)"),
    ):
        with pytest.raises(SystemExit):
            main(argv)
        assert expected in " ".join(capsys.readouterr().out.split())


# ---- progress ------------------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_shows_phase_percent_rate_and_eta() -> None:
    line = describe_progress("pull", "load", 12_500_000, 50_000_000, "bytes", rate=2_500_000.0, elapsed=5)
    assert line == "pull: load   25.0%  12.5/50.0 MB  2.5 MB/s  ETA 0:15"
    line = describe_progress("sync", "read", 140, 400, "establishments", rate=52.0, elapsed=3)
    assert line == "sync: read   35.0%  140/400 establishments  52/s  ETA 0:05"


def test_a_phase_with_nothing_counted_shows_its_elapsed_time_not_zero_items() -> None:
    assert (
        describe_progress("pull", "commit", 0, None, "establishments", elapsed=12.4) == "pull: commit  12 s"
    )


def test_progress_is_redrawn_a_few_times_a_second_at_most() -> None:
    stream = _Terminal()
    with ProgressLine(stream=stream, interval=0.25) as line:
        for done in range(5_000):  # as fast as a 5,000-establishment sync sends them
            line.update(ProgressEvent(operation="sync", phase="read", done=done, total=5_000))
    assert 1 <= line.draws <= 3
    assert "sync: read" in stream.getvalue()


def test_progress_draws_nothing_when_not_on_a_terminal() -> None:
    stream = io.StringIO()
    with ProgressLine(stream=stream) as line:
        line.update(ProgressEvent(operation="pull", phase="download", done=1, total=2, unit="bytes"))
        line.update_load(LoadProgress(file="x.xml", bytes_read=1, bytes_total=2, entities=1))
        line.update_download(1, 2)
        line.show("anything")
    assert stream.getvalue() == "" and line.draws == 0


# ---- errors, logs and times ----------------------------------------------------------------------------

TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(establishments=6, seed=5) as sb:
        yield sb


@pytest.fixture(scope="module")
def config(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sandbox.write_client_config(tmp_path_factory.mktemp("cfg") / "rorclient.toml")


def test_a_failed_run_prints_one_error_line(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 'ror.db'}"
    assert main(["--config", str(config), "--store", store, "pull"]) == 0
    unreachable = tmp_path / "down.toml"
    unreachable.write_text(re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:1", config.read_text()))
    capsys.readouterr()
    code = main(["--config", str(unreachable), "--store", store, "sync"])
    err = capsys.readouterr().err
    assert code != 0
    errors = [line for line in err.splitlines() if " ERROR " in line or "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("rorclient: error: notif: "), err
    for line in err.splitlines():  # the retries in between, each stamped with its zone
        assert line.startswith("rorclient: error:") or re.match(TIMESTAMP + " WARNING rorclient", line), line


def test_status_shows_every_time_with_its_zone(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 'ror.db'}"
    assert main(["--config", str(config), "--store", store, "pull"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "--store", store, "status"]) == 0
    out = capsys.readouterr().out
    (source,) = [line for line in out.splitlines() if line.startswith("source 'sandbox'")]
    assert re.search(r"watermark \d{4}-\d\d-\d\d \d\d:\d\d:\d\d Europe/Paris,", source), source
    assert re.search(r"last full pull \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z+-]\w+$", source), source
    (run,) = [line for line in out.splitlines() if line.startswith("run ")]
    assert re.search(r" \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z+-]\w+ ", run), run


def _daemon(config: Path, tmp_path: Path, *options: str) -> tuple[str, int]:
    """Run ``rorclient daemon`` until its health file shows two runs, stop it; its stderr and runs."""
    health, database = tmp_path / "health.json", tmp_path / "daemon.db"
    command = [
        sys.executable,
        "-m",
        "rorclient.cli",
        "--config",
        str(config),
        "--store",
        f"sqlite:///{database}",
    ]
    process = subprocess.Popen(
        [*command[:3], *options[:1], *command[3:], "daemon", "--interval", "1s", "--health-file", str(health)]
        if options == ("-q",)
        else [*command, "daemon", "--interval", "1s", "--health-file", str(health), *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if health.exists() and json.loads(health.read_text()).get("last_success"):
                with SqliteStore(database) as store:
                    if len(store.runs(limit=10)) >= 2:
                        break
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    with SqliteStore(database) as store:
        return err, len(store.runs(limit=100))


def test_the_daemon_logs_a_start_line_and_one_line_per_run_as_text_by_default(
    config: Path, tmp_path: Path
) -> None:
    err, runs = _daemon(config, tmp_path)
    lines = err.splitlines()
    assert all(re.match(TIMESTAMP + r" (INFO|WARNING) rorclient", line) for line in lines), err
    assert lines[0].endswith(
        "INFO rorclient.daemon: daemon started for source 'sandbox' (interval 1s, full pull every 7d)"
    )
    run_lines = [line for line in lines if " INFO rorclient.sync: " in line]
    assert len(run_lines) == runs >= 2
    assert "pull sandbox: success" in run_lines[0] and "sync sandbox: success" in run_lines[1]
    assert lines[-1].endswith("INFO rorclient.daemon: daemon stopped")


def test_the_daemon_is_silent_with_q_and_writes_json_lines_with_log_json(
    config: Path, tmp_path: Path
) -> None:
    err, _ = _daemon(config, tmp_path / "quiet", "-q")
    assert err == ""
    err, runs = _daemon(config, tmp_path / "json", "--log-json")
    entries = [json.loads(line) for line in err.splitlines()]
    assert entries[0]["message"].startswith("daemon started")
    assert len([entry for entry in entries if "run_id" in entry]) == runs


# ---- the demo ------------------------------------------------------------------------------------------


def test_the_demo_leaves_the_default_store_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("RORCLIENT_STORE_URL", raising=False)
    monkeypatch.delenv("RORCLIENT_CONFIG", raising=False)
    extraction = tmp_path / "mine.xml"
    write_extraction(extraction, seed=3, establishments=2)
    assert main(["load", str(extraction), "--source", "mine"]) == 0  # the user's own data, default store
    default = Path(default_store_url().removeprefix("sqlite:///"))
    before = default.read_bytes()
    capsys.readouterr()

    assert main(["demo", "--establishments", "6"]) == 0
    out = capsys.readouterr().out
    assert default.read_bytes() == before
    demo_store = demo_store_url()
    assert demo_store != default_store_url()
    assert f"rorclient --store {demo_store} status" in out
    with open_store(demo_store) as store:
        # the demo pulls its region as "demo", then moves it to its FHIR source, which takes every row over
        assert set(store.stats().by_source) == {"demo-fhir"}

    # A newcomer runs it again: its own store starts over, so the second run tells the same story
    # (the rows the first run left under "demo-fhir" must not stop the CSD steps as a takeover).
    assert main(["demo", "--establishments", "6"]) == 0
    again = capsys.readouterr().out
    (pull,) = [line for line in again.splitlines() if line.startswith("2. ")]
    assert " created" in pull and "updated" not in pull and "taking over" not in pull
    assert default.read_bytes() == before


def test_a_failed_daemon_run_logs_one_error_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ror = FakeRor(4)
    sync = Sync(store=MemoryStore(), client=ror, source="test", options=SyncOptions(data_dir=tmp_path))
    sync.pull()

    def down(since: dt.datetime, **_: object) -> list[str]:
        raise transport_error("the ROR is down")

    ror.changed_establishments = down  # type: ignore[method-assign]
    options = DaemonOptions(max_runs=2, full_every=None, retry_after=dt.timedelta(seconds=0.01))
    with caplog.at_level(logging.INFO, logger="rorclient"):
        Daemon(sync, options).run()
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 2, [record.getMessage() for record in errors]  # two runs, one line each
    assert all(
        "the ROR is down" in record.getMessage() and record.name == "rorclient.sync" for record in errors
    )
