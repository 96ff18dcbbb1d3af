"""The extraction endpoint (formats, ETag, Range, resumption), fault injection and a curl smoke test."""

from __future__ import annotations

import gzip
import io
import shutil
import socket
import ssl
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rorclient.csd import read_csd
from rorclient.sandbox import PLATINES_ESTABLISHMENT_ID, Sandbox, pytest_fixture
from tests._sandbox_support import (
    body_child,
    client_context,
    envelope,
    fault_detail,
    http_client,
    lecture_body,
    notif_body,
    notif_ids,
    platines_steps,
    post,
    unit_ids,
)

sandbox = pytest_fixture(establishments=6, seed=9, platines_fixture=True)


@pytest.fixture(scope="module")
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with http_client(sandbox.pki) as c:
        yield c


@pytest.fixture(autouse=True)
def no_faults(sandbox: Sandbox) -> Iterator[None]:
    sandbox.faults.clear()
    yield
    sandbox.faults.clear()


# -- extraction -----------------------------------------------------------------------------------------


def test_the_extraction_is_the_whole_ground_truth(
    sandbox: Sandbox, client: httpx.Client, csd_schema: Any
) -> None:
    answer = client.get(sandbox.extraction_url)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/xml"
    assert int(answer.headers["content-length"]) == len(answer.content)
    assert answer.headers["accept-ranges"] == "bytes"
    etag = answer.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    csd_schema.validate(answer.text)
    read = {(entity.kind.value, entity.id) for entity in read_csd(answer.content)}
    assert read == {(row["kind"], row["id"]) for row in sandbox.snapshot()}
    assert client.get(sandbox.extraction_url).headers["etag"] == etag  # same data, same tag


def test_gzip_and_zip_on_request(sandbox: Sandbox, client: httpx.Client) -> None:
    plain = client.get(sandbox.extraction_url, params={"format": "xml"})
    packed = client.get(sandbox.extraction_url, params={"format": "gzip"})
    assert packed.headers["content-type"] == "application/gzip"
    assert "content-encoding" not in packed.headers  # a file, not a transfer coding: Range stays simple
    assert gzip.decompress(packed.content) == plain.content
    archive = client.get(sandbox.extraction_url, params={"format": "zip"})
    assert archive.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as z:
        (member,) = z.namelist()
        assert z.read(member) == plain.content
    assert len({plain.headers["etag"], packed.headers["etag"], archive.headers["etag"]}) == 3
    assert client.get(sandbox.extraction_url, params={"format": "rar"}).status_code == 400


def test_ranges(sandbox: Sandbox, client: httpx.Client) -> None:
    whole = client.get(sandbox.extraction_url).content
    size = len(whole)
    cases = {
        "bytes=10-19": (10, 19),
        "bytes=-7": (size - 7, size - 1),
        f"bytes={size - 3}-": (size - 3, size - 1),
        f"bytes=5-{size + 100}": (5, size - 1),
    }
    for header, (first, last) in cases.items():
        answer = client.get(sandbox.extraction_url, headers={"Range": header})
        assert answer.status_code == 206, header
        assert answer.headers["content-range"] == f"bytes {first}-{last}/{size}"
        assert answer.content == whole[first : last + 1]
    for ignored in ("bytes=0-1,5-6", "bytes=x-y", "lines=1-2", "bytes=9-3"):
        answer = client.get(sandbox.extraction_url, headers={"Range": ignored})
        assert (answer.status_code, answer.content) == (200, whole), ignored
    for unsatisfiable in (f"bytes={size}-", "bytes=-0"):
        answer = client.get(sandbox.extraction_url, headers={"Range": unsatisfiable})
        assert answer.status_code == 416
        assert answer.headers["content-range"] == f"bytes */{size}"


def test_if_range_if_none_match_and_head(sandbox: Sandbox, client: httpx.Client) -> None:
    first = client.get(sandbox.extraction_url)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert (
        client.get(sandbox.extraction_url, headers={"Range": "bytes=0-9", "If-Range": etag}).status_code
        == 206
    )
    assert (
        client.get(sandbox.extraction_url, headers={"Range": "bytes=0-9", "If-Range": modified}).status_code
        == 206
    )
    stale = client.get(sandbox.extraction_url, headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert (stale.status_code, stale.content) == (200, first.content)
    assert (
        client.get(
            sandbox.extraction_url, headers={"Range": "bytes=0-9", "If-Range": "W/" + etag}
        ).status_code
        == 200
    )
    assert client.get(sandbox.extraction_url, headers={"If-None-Match": etag}).status_code == 304
    head = client.head(sandbox.extraction_url, headers={"Range": "bytes=0-99"})
    assert (head.status_code, head.headers["content-length"], head.content) == (206, "100", b"")


def test_a_download_cut_half_way_resumes_with_a_range(sandbox: Sandbox, client: httpx.Client) -> None:
    whole = client.get(sandbox.extraction_url, params={"format": "gzip"}).content
    sandbox.faults.add("extraction", "truncate", count=1)
    received = bytearray()
    etag = ""
    with (  # noqa: PT012 - the error comes while reading the body
        pytest.raises(httpx.TransportError),
        client.stream("GET", sandbox.extraction_url, params={"format": "gzip"}) as answer,
    ):
        etag = answer.headers["etag"]
        for chunk in answer.iter_raw():
            received += chunk
    assert 0 < len(received) < len(whole)
    rest = client.get(
        sandbox.extraction_url,
        params={"format": "gzip"},
        headers={"Range": f"bytes={len(received)}-", "If-Range": etag},
    )
    assert rest.status_code == 206
    assert bytes(received) + rest.content == whole


def test_the_extraction_is_rebuilt_after_a_change(sandbox: Sandbox, client: httpx.Client) -> None:
    before = client.get(sandbox.extraction_url)
    sandbox.mutate(count=1, kinds=["new_establishment"])
    after = client.get(
        sandbox.extraction_url, headers={"Range": "bytes=0-9", "If-Range": before.headers["etag"]}
    )
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    assert len(after.content) > len(before.content)


def test_a_slow_build_answers_503_with_retry_after_until_ready() -> None:
    with Sandbox(establishments=30, seed=2, extraction_wait=0) as sb, http_client(sb.pki) as client:
        first = client.get(sb.extraction_url)
        assert (first.status_code, first.headers["retry-after"]) == (503, "1")
        for _ in range(600):
            answer = client.get(sb.extraction_url)
            if answer.status_code == 200:
                break
            assert answer.status_code == 503
            threading.Event().wait(0.05)
        assert answer.status_code == 200 and answer.content.startswith(b"<?xml")


def test_the_extraction_follows_the_extraction_profile() -> None:
    with (
        Sandbox(establishments=1, platines_fixture=True, extraction_profile=0) as sb,
        http_client(sb.pki) as c,
    ):
        assert b"dropZone" not in c.get(sb.extraction_url).content  # public data only
        assert b"dropZone" in post(c, sb.soap_url, envelope(lecture_body(PLATINES_ESTABLISHMENT_ID))).content


# -- fault injection ------------------------------------------------------------------------------------


def _raw_get(sandbox: Sandbox) -> tuple[bytes, BaseException | None]:
    """GET the extraction over a raw TLS socket: the bytes received and how the stream ended."""
    context = client_context(sandbox.pki, sandbox.pki.client)
    received = b""
    with (
        socket.create_connection(("127.0.0.1", sandbox.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False) as tls,
    ):
        tls.sendall(f"GET {sandbox.options.extraction_path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        try:
            while chunk := tls.recv(65536):
                received += chunk
        except (OSError, ssl.SSLError) as exc:
            return received, exc
    return received, None


def _announced_and_sent(received: bytes) -> tuple[int, int]:
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    return length, len(body)


@pytest.mark.parametrize("kind", ["reset", "truncate"])
def test_reset_and_truncate_cut_the_body_without_a_tls_close(sandbox: Sandbox, kind: str) -> None:
    # Seen from a client, both end the stream before Content-Length without a TLS close_notify (truncate
    # closes with a FIN after exactly half the body, reset with a TCP RST that may also drop data in flight).
    fired = sandbox.stats().get(f"fault.{kind}", 0)
    sandbox.faults.add("extraction", kind, count=1)
    received, ended = _raw_get(sandbox)
    announced, sent = _announced_and_sent(received)
    assert 0 < sent < announced
    if kind == "truncate":
        assert sent == announced // 2
    assert isinstance(ended, ssl.SSLEOFError | ConnectionResetError)
    assert sandbox.stats()[f"fault.{kind}"] == fired + 1


def test_a_cut_soap_answer_is_a_protocol_error_for_httpx(sandbox: Sandbox, client: httpx.Client) -> None:
    for kind in ("truncate", "reset"):
        sandbox.faults.add("lecture", kind, count=1)
        with pytest.raises(httpx.TransportError):
            post(client, sandbox.soap_url, envelope(lecture_body(PLATINES_ESTABLISHMENT_ID)))
    assert (
        post(client, sandbox.soap_url, envelope(lecture_body(PLATINES_ESTABLISHMENT_ID))).status_code == 200
    )


def test_503_500_soap_fault_and_content_type(sandbox: Sandbox, client: httpx.Client) -> None:
    lecture = envelope(lecture_body(PLATINES_ESTABLISHMENT_ID))
    sandbox.faults.add("lecture", "503", count=1, retry_after=7)
    answer = post(client, sandbox.soap_url, lecture)
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "7")
    sandbox.faults.add("*", "500", count=1)
    answer = client.get(sandbox.extraction_url)
    assert answer.status_code == 500 and answer.headers["content-type"].startswith("text/html")
    sandbox.faults.add("lecture", "soap_fault", count=1)
    answer = post(client, sandbox.soap_url, lecture)
    assert answer.status_code == 500 and fault_detail(answer)[:2] == ("soap:Receiver", 500)
    sandbox.faults.add("lecture", "content_type", count=1)
    answer = post(client, sandbox.soap_url, lecture)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert len(unit_ids(body_child(answer))) == 5  # the right body under the wrong type
    assert post(client, sandbox.soap_url, lecture).headers["content-type"].startswith("application/soap+xml")
    stats = sandbox.stats()
    assert all(stats[f"fault.{kind}"] >= 1 for kind in ("503", "500", "soap_fault", "content_type"))


def test_latency_and_trickle_still_deliver_the_whole_answer(sandbox: Sandbox, client: httpx.Client) -> None:
    expected = client.get(sandbox.extraction_url).content
    sandbox.faults.add("extraction", "latency", count=1, delay=0.05)
    assert client.get(sandbox.extraction_url).content == expected
    sandbox.faults.add("extraction", "trickle", count=1, delay=0.01)
    assert client.get(sandbox.extraction_url).content == expected
    stats = sandbox.stats()
    assert stats["fault.latency"] >= 1 and stats["fault.trickle"] >= 1


def test_rules_target_operations_and_count_down(sandbox: Sandbox, client: httpx.Client) -> None:
    notif = envelope(notif_body("2001-01-01T00:00:00"))
    lecture = envelope(lecture_body(PLATINES_ESTABLISHMENT_ID))
    rule = sandbox.faults.add("notif", "503", count=2)
    assert post(client, sandbox.soap_url, lecture).status_code == 200  # another operation
    assert [post(client, sandbox.soap_url, notif).status_code for _ in range(3)] == [503, 503, 200]
    assert sandbox.faults.rules() == [] and not sandbox.faults.remove(rule)
    assert notif_ids(body_child(post(client, sandbox.soap_url, notif)))


def test_rates_are_seeded() -> None:
    outcomes = []
    for _ in range(2):
        with Sandbox(establishments=1, seed=4, fault_seed=99) as sb, http_client(sb.pki) as c:
            sb.faults.add("extraction", "503", rate=0.5)
            outcomes.append([c.get(sb.extraction_url).status_code for _ in range(12)])
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {200, 503}


def test_bad_fault_rules_are_refused(sandbox: Sandbox) -> None:
    from rorclient.errors import ConfigError

    for kwargs in ({"operation": "search"}, {"kind": "gremlins"}, {"rate": 1.5}, {"count": 0}):
        with pytest.raises(ConfigError):
            sandbox.faults.add(**kwargs)  # type: ignore[arg-type]


# -- curl -----------------------------------------------------------------------------------------------

CURL = shutil.which("curl")
ACTION = "urn:asip:ror:2015:stored-function:ror-search"


def _curl(sandbox: Sandbox, cert_name: str, request: Path) -> subprocess.CompletedProcess[bytes]:
    cert = getattr(sandbox.pki, cert_name)
    command = [
        str(CURL), "--silent", "--show-error", "--max-time", "20",
        "--cert", str(cert.certificate), "--key", str(cert.key),
        "--pass", sandbox.pki.password.get_secret_value(), "--cacert", str(sandbox.pki.ca_bundle),
        "-H", f'Content-Type: application/soap+xml; charset=UTF-8; action="{ACTION}"',
        "--data-binary", f"@{request}", sandbox.soap_url,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, timeout=60, check=False)


if CURL is not None:  # the curl smoke test only exists where curl does

    def test_curl_with_a_platines_template(sandbox: Sandbox, tmp_path: Path, csd_schema: Any) -> None:
        (step, *_) = platines_steps(
            "C_Lecture_EG_Offre_complete_EJ_sans_date_sans_restrictionOI_profil1.xml",
            {"idNat_Struct": PLATINES_ESTABLISHMENT_ID},
        )
        request = tmp_path / "request.xml"
        request.write_text(step.request, encoding="utf-8")
        done = _curl(sandbox, "client", request)
        assert done.returncode == 0, done.stderr
        answer = body_child(done.stdout)
        from lxml import etree

        csd_schema.validate(etree.tostring(answer, encoding="unicode"))
        assert len(unit_ids(answer, elementary_only=True)) == 4
        refused = _curl(sandbox, "expired", request)
        assert refused.returncode != 0 and b"careServicesResponse" not in refused.stdout

    @pytest.mark.parametrize("cert_name", ["not_yet_valid", "wrong_ca", "seal", "revoked"])
    def test_curl_with_a_bad_client_certificate_fails_the_handshake(
        sandbox: Sandbox, tmp_path: Path, cert_name: str
    ) -> None:
        (step, *_) = platines_steps(
            "C_Lecture_EG_Offre_complete_EJ_sans_date_sans_restrictionOI_profil1.xml",
            {"idNat_Struct": PLATINES_ESTABLISHMENT_ID},
        )
        request = tmp_path / "request.xml"
        request.write_text(step.request, encoding="utf-8")
        refused = _curl(sandbox, cert_name, request)
        assert refused.returncode != 0
        assert b"careServicesResponse" not in refused.stdout
