"""The sandbox server's lifecycle, mutual TLS, client configuration, clock and control API."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import socket
import ssl
import stat
import threading
from zoneinfo import ZoneInfo

import httpx
import pytest

from rorclient.config import Settings
from rorclient.errors import ConfigError
from rorclient.sandbox import (
    PLATINES_ESTABLISHMENT_ID,
    Sandbox,
    SandboxClock,
    SandboxOptions,
    pytest_fixture,
    serve_forever,
)
from rorclient.sandbox._platines import PLATINES_LEGAL_ENTITY_ID
from rorclient.sandbox.dataset import (
    dataset_plan,
    generate_dataset,
    generate_group,
    locate_establishment,
    locate_unit,
    write_extraction,
)
from rorclient.sandbox.pki import IssuedCertificate, TestPki
from rorclient.sandbox.server import _ssl_context
from tests._sandbox_support import client_context, envelope, http_client, lecture_body, post

sandbox = pytest_fixture(establishments=5, seed=2)

BAD_CERTIFICATES = ["expired", "not_yet_valid", "wrong_ca", "seal", "revoked"]


def _status(
    port: int, pki: TestPki, cert: IssuedCertificate | None, max_version: ssl.TLSVersion | None
) -> bytes:
    """Send one HTTP request over a raw TLS socket and return the first bytes of the answer."""
    context = client_context(pki, cert, max_version=max_version)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"GET /_sandbox/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        return tls.recv(64)


# -- lifecycle ------------------------------------------------------------------------------------------


def test_starts_on_a_free_port_and_stops_without_leaving_threads_or_sockets() -> None:
    before = set(threading.enumerate())
    with Sandbox(establishments=3, seed=1) as sb:
        port = sb.port
        assert port > 0
        assert sb.soap_url == f"https://127.0.0.1:{port}/ROR/0.1/CSD_ROR_Binding"
        assert sb.extraction_url == f"https://127.0.0.1:{port}/ROR/extraction"
        with http_client(sb.pki) as client:  # a kept-alive connection must not block the stop
            assert client.get(sb.base_url + "/_sandbox/status").status_code == 200
            work = sb.pki.directory
        assert work.exists()
    assert set(threading.enumerate()) <= before
    assert not work.exists()  # the temporary PKI went with the sandbox
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_a_stopped_or_unstarted_sandbox_refuses_control_calls() -> None:
    sb = Sandbox(establishments=1)
    with pytest.raises(ConfigError):
        sb.snapshot()
    sb.stop()  # stopping a sandbox that never ran is harmless


def test_bad_settings_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="establishments"):
        Sandbox(establishments=-1)
    with pytest.raises(ConfigError, match="no_such_option: Extra inputs"):
        Sandbox(no_such_option=True)


def test_a_taken_port_raises_config_error(sandbox: Sandbox) -> None:
    with pytest.raises(ConfigError, match="cannot start"):
        Sandbox(establishments=1, port=sandbox.port).start()


# -- mutual TLS -----------------------------------------------------------------------------------------


def test_the_good_client_certificate_is_accepted(sandbox: Sandbox) -> None:
    for version in (ssl.TLSVersion.TLSv1_2, None):
        assert _status(sandbox.port, sandbox.pki, sandbox.pki.client, version).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("name", [None, *BAD_CERTIFICATES])
def test_the_handshake_fails_without_a_valid_client_certificate(sandbox: Sandbox, name: str | None) -> None:
    cert = getattr(sandbox.pki, name) if name else None
    # TLS 1.2: the server checks the client certificate inside the handshake, which fails.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _status(sandbox.port, sandbox.pki, cert, ssl.TLSVersion.TLSv1_2)
    # TLS 1.3 finishes the client's side of the handshake first; no HTTP answer ever comes.
    try:
        answer = _status(sandbox.port, sandbox.pki, cert, None)
    except (ssl.SSLError, ConnectionError):
        answer = b""
    assert answer == b""


def test_refused_handshakes_are_counted() -> None:
    with Sandbox(establishments=1) as sb:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            _status(sb.port, sb.pki, sb.pki.expired, ssl.TLSVersion.TLSv1_2)
        for _ in range(200):  # the server thread records the failure after the client saw it
            if sb.stats().get("tls_failures"):
                break
            threading.Event().wait(0.05)
        assert sb.stats()["tls_failures"] == 1


def test_httpx_without_a_client_certificate_gets_a_transport_error(sandbox: Sandbox) -> None:
    with httpx.Client(verify=client_context(sandbox.pki)) as client, pytest.raises(httpx.TransportError):
        client.get(sandbox.base_url + "/_sandbox/status")


def test_client_certificates_can_be_made_optional() -> None:
    with Sandbox(establishments=1, client_cert="optional") as sb:
        with httpx.Client(verify=client_context(sb.pki)) as client:
            assert client.get(sb.base_url + "/_sandbox/status").status_code == 200
        with pytest.raises((ssl.SSLError, ConnectionError)):  # a bad certificate is still refused
            _status(sb.port, sb.pki, sb.pki.revoked, ssl.TLSVersion.TLSv1_2)


def test_the_server_context_refuses_tls_below_1_2_and_checks_the_crl(sandbox: Sandbox) -> None:
    context = _ssl_context(sandbox.pki, sandbox.options)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.verify_flags & ssl.VERIFY_CRL_CHECK_LEAF


# -- client configuration -------------------------------------------------------------------------------


def test_written_client_config_loads_and_points_at_working_credentials(sandbox: Sandbox, tmp_path) -> None:
    path = sandbox.write_client_config(tmp_path / "conf" / "rorclient.toml", store_url="sqlite:///x.db")
    settings = Settings.load(path, environ={})
    source = settings.source("sandbox")
    assert settings.store.url == "sqlite:///x.db"
    assert (source.kind, source.soap_url, source.extraction_url) == (
        "csd",
        sandbox.soap_url,
        sandbox.extraction_url,
    )
    assert source.client_cert == sandbox.pki.client.pkcs12
    assert source.password_file is not None and source.ca_bundle == sandbox.pki.ca_bundle
    assert stat.S_IMODE(source.password_file.stat().st_mode) == 0o600
    password = source.password_file.read_text().strip()
    assert password == sandbox.pki.password.get_secret_value()
    context = ssl.create_default_context(cafile=str(source.ca_bundle))
    context.load_cert_chain(sandbox.pki.client.chain, sandbox.pki.client.key, password=password)
    with httpx.Client(verify=context) as client:
        answer = post(client, source.soap_url or "", envelope(lecture_body("0000000000")))
    assert answer.status_code == 200


def test_a_given_tls_dir_is_kept_and_reused(tmp_path) -> None:
    with Sandbox(establishments=1, tls_dir=tmp_path / "pki") as first:
        serial = first.pki.client.serial_number
    with Sandbox(establishments=1, tls_dir=tmp_path / "pki") as second:
        assert second.pki.client.serial_number == serial
    assert second.pki.directory == tmp_path / "pki"


# -- clock ----------------------------------------------------------------------------------------------


def test_the_clock_moves_only_forward_in_whole_seconds() -> None:
    clock = SandboxClock(dt.datetime(2025, 3, 1, 8, 0, 0, 700), ticking=False)
    assert clock.now() == dt.datetime(2025, 3, 1, 8, 0, 0)
    assert clock.advance(seconds=90) == dt.datetime(2025, 3, 1, 8, 1, 30)
    assert clock.advance(hours=1, days=1) == dt.datetime(2025, 3, 2, 9, 1, 30)
    assert clock.set(dt.datetime(2025, 4, 1)) == dt.datetime(2025, 4, 1)
    with pytest.raises(ValueError):
        clock.advance(seconds=-1)
    with pytest.raises(ValueError):
        clock.set(dt.datetime(2025, 1, 1))
    aware = dt.datetime(2025, 5, 1, 12, tzinfo=dt.UTC)
    assert clock.set(aware) == dt.datetime(2025, 5, 1, 14)  # Paris, summer time


def test_the_default_clock_follows_paris_time_as_the_ror_does(sandbox: Sandbox) -> None:
    now = dt.datetime.now(ZoneInfo("Europe/Paris")).replace(microsecond=0, tzinfo=None)
    assert abs(sandbox.clock.now() - now) < dt.timedelta(minutes=5)


# -- control API ----------------------------------------------------------------------------------------


def test_control_api_mirrors_the_python_calls() -> None:
    start = dt.datetime(2025, 1, 1, 9, 0, 0)
    with (
        Sandbox(establishments=6, seed=4, clock_start=start, clock_ticking=False) as sb,
        http_client(sb.pki) as client,
    ):
        base = sb.base_url + "/_sandbox"
        assert client.get(base + "/status").json()["establishments"] == 6
        assert client.post(base + "/clock", json={"advance": 3600}).json() == {"now": "2025-01-01T10:00:00"}
        assert (
            client.post(base + "/clock", json={"set": "2025-02-01T00:00:00"}).json()["now"]
            == "2025-02-01T00:00:00"
        )
        assert sb.clock.now() == dt.datetime(2025, 2, 1)
        mutations = client.post(base + "/mutate", json={"count": 2, "kinds": ["rename"], "seed": 1}).json()
        assert [m["kind"] for m in mutations] == ["rename", "rename"]
        assert all(m["at"] == "2025-02-01T00:00:00" for m in mutations)
        snapshot = client.get(base + "/snapshot").json()
        assert snapshot == json.loads(json.dumps(sb.snapshot()))
        rule = client.post(base + "/faults", json={"operation": "lecture", "kind": "503", "count": 1}).json()
        assert client.get(base + "/faults").json()[0]["id"] == rule["id"]
        assert client.delete(base + f"/faults/{rule['id']}").json() == {"removed": True}
        client.post(base + "/faults", json={"kind": "500"})
        assert client.delete(base + "/faults").json() == {"cleared": True}
        assert sb.faults.rules() == []
        establishment = sb.establishment_ids()[0]
        assert client.post(base + "/remove", json={"establishment": establishment}).json() == {
            "removed": True
        }
        assert sb.offer(establishment) is None
        assert client.get(base + "/stats").json()["control"] >= 10
        assert client.post(base + "/mutate", json={"kinds": ["nope"]}).status_code == 400
        assert client.post(base + "/faults", json={"kind": "meteor"}).status_code == 400
        assert client.post(base + "/clock", content=b"[1]").status_code == 400
        assert client.get(base + "/nothing").status_code == 404


def test_control_api_is_off_outside_test_mode() -> None:
    with Sandbox(establishments=1, test_mode=False) as sb, http_client(sb.pki) as client:
        assert client.get(sb.base_url + "/_sandbox/status").status_code == 404
        assert sb.snapshot()  # the Python calls keep working


def test_unknown_paths_and_methods(sandbox: Sandbox) -> None:
    with http_client(sandbox.pki) as client:
        assert client.get(sandbox.base_url + "/elsewhere").status_code == 404
        answer = client.get(sandbox.soap_url)
        assert answer.status_code == 405 and answer.headers["allow"] == "POST"
        assert client.post(sandbox.extraction_url, content=b"").status_code == 405
        assert client.put(sandbox.soap_url, content=b"").status_code == 501


# -- other data sources and entry points ------------------------------------------------------------------


def test_serves_a_directory_of_csd_files(tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_extraction(data / "part.xml.gz", seed=6, establishments=8, compress="gzip")
    with Sandbox(establishments=8, seed=6) as generated:
        expected = generated.snapshot()
    with Sandbox(data_dir=data, platines_fixture=True) as sb, http_client(sb.pki) as client:
        snapshot = sb.snapshot()
        assert [
            row
            for row in snapshot
            if row["establishment"] != PLATINES_ESTABLISHMENT_ID and row["id"] != PLATINES_LEGAL_ENTITY_ID
        ] == expected
        some = expected[-1]["establishment"]
        answer = post(client, sb.soap_url, envelope(lecture_body(some)))
        assert answer.status_code == 200 and b"facilityNumber" in answer.content
        served = {row["id"] for row in snapshot}
        created = sb.mutate(count=3, kinds=["new_establishment"], seed=1)
        new_ids = {mutation.establishment for mutation in created}
        assert len(new_ids) == 3 and not new_ids & served  # identifiers of their own, never the files'
        assert all(sb.offer(establishment) is not None for establishment in new_ids)
    with pytest.raises(ConfigError, match="no CSD file"):
        Sandbox(data_dir=tmp_path).start()


def test_serve_forever_announces_writes_the_config_and_stops(tmp_path) -> None:
    lines: list[str] = []
    stop = threading.Event()
    config = tmp_path / "client.toml"

    def run() -> None:
        serve_forever(
            port=0, establishments=3, tls_dir=tmp_path / "pki", write_config=config, test_mode=True,
            announce=lines.append, stop=stop,
        )  # fmt: skip

    thread = threading.Thread(target=run)
    thread.start()
    try:
        for _ in range(200):
            if lines and lines[-1].startswith("Press Ctrl-C"):
                break
            stop.wait(0.05)
        text = "\n".join(lines)
        assert "SOAP (Notif, Lecture): https://127.0.0.1:" in text and "/_sandbox/" in text
        assert PLATINES_ESTABLISHMENT_ID in text and str(config) in text
        assert (
            Settings.load(config, environ={}).source("sandbox").client_cert == tmp_path / "pki" / "client.p12"
        )
    finally:
        stop.set()
        thread.join()
    assert lines[-1] == "Stopping the sandbox."


def test_options_objects_and_lazy_exports() -> None:
    import rorclient.sandbox as package

    options = SandboxOptions(establishments=2, seed=8)
    with Sandbox(options=options, platines_fixture=True) as sb:
        assert sb.options.establishments == 2 and sb.options.platines_fixture
        assert len(sb.establishment_ids()) == 3
    assert set(package.__all__) <= set(dir(package))
    for name in package.__all__:  # each lazy export resolves to the object of its module
        module = importlib.import_module(f"rorclient.sandbox.{package._WHERE[name]}")
        assert getattr(package, name) is getattr(module, name)
    with pytest.raises(AttributeError):
        package.nothing_here  # noqa: B018


def test_the_dataset_can_be_generated_one_group_at_a_time() -> None:
    """What lets the sandbox serve a national-size dataset without generating it at start."""
    offers = list(generate_dataset(3, 60))
    plan = dataset_plan(3, 60)
    assert sum(plan) == 60
    assert [o for group, sites in enumerate(plan) for o in generate_group(3, group, limit=sites)] == offers
    for offer in offers:
        group, site = locate_establishment(offer.establishments[0].id) or (-1, -1)
        assert generate_group(3, group)[site - 1] == offer
        assert {locate_unit(unit.id) for unit in offer.units} == {(group, site)}
    assert locate_establishment(offers[0].legal_entities[0].id) is None
    assert locate_unit("93/900001") is None
