"""`rorclient ror ...` and `rorclient sandbox`, driven as a user would, against a live sandbox over mTLS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rorclient.cli import main
from rorclient.sandbox import Sandbox
from rorclient.store import open_store


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(establishments=12, seed=11) as sb:
        yield sb


@pytest.fixture(scope="module")
def config(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sandbox.write_client_config(tmp_path_factory.mktemp("cfg") / "rorclient.toml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_notif_lists_every_establishment_changed_since_a_date(
    sandbox: Sandbox, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--config", str(config), "ror", "notif", "--since", "2000-01-01T00:00:00")
    assert code == 0
    assert set(out.split()) == set(sandbox.establishment_ids())


def test_read_prints_the_offer_of_an_establishment_and_of_a_unit(
    sandbox: Sandbox, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    establishment = sandbox.establishment_ids()[0]
    code, out, _ = run(capsys, "--config", str(config), "ror", "read", "--establishment", establishment)
    offer = json.loads(out)
    assert code == 0
    assert [eg["id"] for eg in offer["establishments"]] == [establishment]
    unit = offer["units"][-1]["id"]
    code, out, _ = run(capsys, "--config", str(config), "ror", "read", "--unit", unit)
    assert code == 0
    assert unit in [u["id"] for u in json.loads(out)["units"]]


def test_an_unknown_establishment_exits_7(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--config", str(config), "ror", "read", "--establishment", "1999999999")
    assert code == 7
    assert "1999999999" in err or "404" in err


def test_download_then_load_the_extraction(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "extraction.xml"
    code, out, _ = run(capsys, "--config", str(config), "ror", "download", str(dest))
    assert code == 0
    assert json.loads(out)["bytes"] == dest.stat().st_size
    store = f"sqlite:///{tmp_path / 'x.db'}"
    assert run(capsys, "--store", store, "load", str(dest), "--source", "sandbox")[0] == 0


def test_check_proves_the_circle_of_trust_setup(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--config", str(config), "ror", "check")
    assert code == 0 and "mutual TLS" in out


@pytest.mark.parametrize(
    ("certificate", "code"), [("expired", 54), ("not_yet_valid", 55), ("seal", 56), ("wrong_ca", 59)]
)
def test_each_bad_certificate_has_its_own_exit_code(
    sandbox: Sandbox,
    config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    certificate: str,
    code: int,
) -> None:
    bad = getattr(sandbox.pki, certificate).pkcs12
    text = config.read_text().replace(str(sandbox.pki.client.pkcs12), str(bad))
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text(text)
    exit_code, _, err = run(capsys, "--config", str(bad_config), "ror", "check")
    assert exit_code == code, err
    assert sandbox.pki.password.get_secret_value() not in err


def test_missing_source_name_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    code, _, err = run(capsys, "--config", str(empty), "ror", "check")
    assert code == 2 and "--source" in err


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_the_sandbox_command_serves_until_interrupted(tmp_path: Path) -> None:
    """Even started as a shell script's background job (SIGINT inherited ignored), Ctrl-C stops it."""
    config = tmp_path / "client.toml"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rorclient.cli",
            "sandbox",
            "--port",
            "0",
            "--establishments",
            "3",
            "--tls-dir",
            str(tmp_path / "tls"),
            "--write-config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=_ignore_sigint,
    )
    try:
        assert process.stdout is not None
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "Press Ctrl-C" in line or not line:
                break
        assert any("CSD_ROR_Binding" in line for line in lines), lines
        assert config.is_file() and "soap_url" in config.read_text()
        code = main(["--config", str(config), "ror", "check"])
        assert code == 0
    finally:
        process.send_signal(signal.SIGINT)
        try:  # communicate() drains the pipe: a sandbox blocked writing to it would never stop
            output, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            raise AssertionError(f"the sandbox did not stop on Ctrl-C within 60 s:\n{output}") from None
    assert "Stopping the sandbox." in output
    assert process.returncode == 0


def test_pull_sync_refresh_status_from_the_command_line(
    sandbox: Sandbox, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 'sync.db'}"
    base = ["--config", str(config), "--store", store]
    code, out, _ = run(capsys, *base, "pull", "--json")
    assert code == 0
    pulled = json.loads(out)
    assert pulled["status"] == "success" and pulled["counts"]["created"] > 0

    sandbox.clock.advance(minutes=1)
    (mutation,) = sandbox.mutate(count=1, kinds=["rename"], seed=5)
    sandbox.clock.advance(minutes=1)
    code, out, _ = run(capsys, *base, "sync", "--json")
    synced = json.loads(out)
    assert code == 0 and synced["status"] == "success"
    assert synced["counts"]["updated"] >= 1

    unit = mutation.unit or next(r["id"] for r in sandbox.snapshot() if r["kind"] == "unit")
    code, out, _ = run(capsys, *base, "refresh", "--unit", unit)
    assert code == 0 and "refresh" in out

    code, out, _ = run(capsys, *base, "status", "--json")
    status = json.loads(out)
    (sync_status,) = status["sync"]
    assert sync_status["source"] == "sandbox" and sync_status["initialized"]
    assert sync_status["certificate"]["days_until_expiry"] > 0


def test_plain_status_names_the_certificate_and_warns_before_it_expires(
    sandbox: Sandbox, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 4: the 30-day expiry warning shows in ``status``, not only in ``status --json``."""
    text = config.read_text()
    expiring = tmp_path / "expiring.toml"
    expiring.write_text(text.replace(str(sandbox.pki.client.pkcs12), str(sandbox.pki.expiring_soon.pkcs12)))
    assert expiring.read_text() != text
    store = f"sqlite:///{tmp_path / 'status.db'}"
    open_store(store).close()  # status only reads: it refuses a store that does not exist

    code, out, _ = run(capsys, "--config", str(expiring), "--store", store, "status")
    (line,) = [line for line in out.splitlines() if line.startswith("certificate of source 'sandbox'")]
    assert code == 0
    assert sandbox.pki.expiring_soon.subject in line and "WARNING: expires in" in line

    code, out, _ = run(capsys, "--config", str(config), "--store", store, "status")
    (line,) = [line for line in out.splitlines() if line.startswith("certificate of source 'sandbox'")]
    assert "days left" in line and "WARNING" not in line

    early = tmp_path / "early.toml"
    early.write_text(text.replace(str(sandbox.pki.client.pkcs12), str(sandbox.pki.not_yet_valid.pkcs12)))
    code, out, _ = run(capsys, "--config", str(early), "--store", store, "status")
    (line,) = [line for line in out.splitlines() if line.startswith("certificate of source 'sandbox'")]
    assert "WARNING: not valid yet" in line


def test_the_daemon_syncs_writes_its_health_file_and_stops_on_sigterm(
    sandbox: Sandbox, config: Path, tmp_path: Path
) -> None:
    health = tmp_path / "health.json"
    store = f"sqlite:///{tmp_path / 'daemon.db'}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rorclient.cli",
            "--config",
            str(config),
            "--store",
            store,
            "daemon",
            "--interval",
            "1s",
            "--health-file",
            str(health),
            "--log-json",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        report: dict[str, object] = {}
        while time.monotonic() < deadline and not report.get("last_success"):
            time.sleep(0.2)
            if health.exists():
                report = json.loads(health.read_text())
        assert report.get("last_success"), f"no successful run in the health file: {report}"
        assert report["source"] == "sandbox" and report["pending"] == 0
        assert report["certificate"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-2000:]
    assert all(json.loads(line) for line in err.splitlines() if line.startswith("{"))
