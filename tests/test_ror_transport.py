"""Network and TLS failures become typed rorclient errors; secrets never leak into messages or logs."""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rorclient.errors import ConfigError, TlsError, TransportError
from rorclient.ror import (
    CertificateRevokedError,
    ClientCertificateRejectedError,
    ClientOptions,
    ConnectError,
    HttpHandler,
    HttpRequest,
    HttpResponse,
    IncompleteResponseError,
    RequestTimeoutError,
    RetryPolicy,
    RorClient,
    ServerCertificateError,
    Timeouts,
    UnknownClientCaError,
)
from rorclient.ror.errors import safe_url
from rorclient.sandbox.pki import TestPki, build_test_pki
from rorclient.tls import CertificatePasswordError, Credentials

URL = "https://ror.test/ROR/0.1/CSD_ROR_Binding"
ONE_TRY = RetryPolicy(max_attempts=1)


def failing(error: Exception) -> HttpHandler:
    """A handler raising ``error``: httpx errors raised in a handler reach the translation as the
    network's would."""

    def handler(request: HttpRequest) -> HttpResponse:
        raise error

    return handler


def ssl_wrapped(kind: type[httpx.TransportError], reason: str) -> httpx.TransportError:
    """An httpx error caused by an OpenSSL error, as httpx raises them."""
    cause = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower().replace('_', ' ')} (_ssl.c:2580)")
    error = kind(str(cause))
    error.__cause__ = cause
    return error


def call_with(handler: HttpHandler, credentials: Credentials | None = None, **options: object) -> Exception:
    ror = RorClient(
        URL,
        name="idf",
        credentials=credentials,
        options=ClientOptions(handler=handler, retry=ONE_TRY, **options),  # type: ignore[arg-type]
    )
    with ror, pytest.raises(Exception) as caught:
        ror.read_establishment("1830000002")
    return caught.value


@pytest.mark.parametrize(
    ("raised", "expected", "phase"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), ConnectError, None),
        (httpx.ReadError("[Errno 104] Connection reset by peer"), ConnectError, None),
        (httpx.WriteError("broken pipe"), ConnectError, None),
        (
            httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
            IncompleteResponseError,
            None,
        ),
        (httpx.ConnectTimeout("timed out"), RequestTimeoutError, "connect"),
        (httpx.ReadTimeout("timed out"), RequestTimeoutError, "read"),
        (httpx.WriteTimeout("timed out"), RequestTimeoutError, "write"),
        (httpx.PoolTimeout("timed out"), RequestTimeoutError, "pool"),
    ],
)
def test_network_failures_are_retryable_transport_errors(
    raised: Exception, expected: type[TransportError], phase: str | None
) -> None:
    error = call_with(failing(raised))
    assert type(error) is expected
    assert error.retryable and error.exit_code == 6
    assert "lecture: https://ror.test/ROR/0.1/CSD_ROR_Binding" in str(error)
    if phase is not None:
        assert isinstance(error, RequestTimeoutError) and error.phase == phase


def test_a_handler_simulates_network_failures_with_os_errors() -> None:
    """The in-process handler's contract: ``OSError`` is a connection failure, ``TimeoutError`` a
    timeout, and an ``OSError`` while the body is read a body cut short; all typed and retryable."""

    def cut() -> Iterator[bytes]:
        yield b"<s:Envelope"
        raise ConnectionResetError("reset by peer")

    refused = call_with(failing(ConnectionRefusedError("[Errno 111] Connection refused")))
    timed_out = call_with(failing(TimeoutError()))
    cut_short = call_with(lambda request: HttpResponse(chunks=cut()))
    assert type(refused) is ConnectError and "Connection refused" in str(refused)
    assert type(timed_out) is RequestTimeoutError
    assert type(cut_short) is IncompleteResponseError
    assert all(isinstance(e, TransportError) and e.retryable for e in (refused, timed_out, cut_short))


def test_transient_network_failures_are_retried_until_success(samples_dir: Path) -> None:
    body = (samples_dir / "lecture_response_body.xml").read_bytes()
    answers: list[Exception | HttpResponse] = [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("cut"),
        HttpResponse(content=body),
    ]

    def handler(request: HttpRequest) -> HttpResponse:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    with RorClient(URL, options=ClientOptions(handler=handler, retry=RetryPolicy(wait_scale=0))) as ror:
        assert ror.read_establishment("1830000002").establishments
    assert not answers


@pytest.mark.parametrize(
    ("raised", "expected", "exit_code"),
    [
        (ssl_wrapped(httpx.ReadError, "TLSV1_ALERT_UNKNOWN_CA"), UnknownClientCaError, 59),
        (ssl_wrapped(httpx.ConnectError, "TLSV1_ALERT_UNKNOWN_CA"), UnknownClientCaError, 59),
        (ssl_wrapped(httpx.ReadError, "SSLV3_ALERT_CERTIFICATE_REVOKED"), CertificateRevokedError, 60),
        (ssl_wrapped(httpx.ReadError, "SSLV3_ALERT_CERTIFICATE_EXPIRED"), ClientCertificateRejectedError, 58),
        (
            ssl_wrapped(httpx.ReadError, "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE"),
            ClientCertificateRejectedError,
            58,
        ),
        (
            ssl_wrapped(httpx.ReadError, "TLSV13_ALERT_CERTIFICATE_REQUIRED"),
            ClientCertificateRejectedError,
            58,
        ),
        (
            ssl_wrapped(httpx.ConnectError, "SSLV3_ALERT_HANDSHAKE_FAILURE"),
            ClientCertificateRejectedError,
            58,
        ),
        (ssl_wrapped(httpx.ConnectError, "CERTIFICATE_VERIFY_FAILED"), ServerCertificateError, 57),
        (ssl_wrapped(httpx.ConnectError, "WRONG_VERSION_NUMBER"), TlsError, 5),
    ],
)
def test_tls_failures_are_specific_and_never_retried(
    raised: Exception, expected: type[TlsError], exit_code: int
) -> None:
    calls = 0
    original = raised

    def handler(request: HttpRequest) -> HttpResponse:
        nonlocal calls
        calls += 1
        raise original

    with (
        RorClient(URL, options=ClientOptions(handler=handler, retry=RetryPolicy(wait_scale=0))) as ror,
        pytest.raises(TlsError) as caught,
    ):
        ror.read_establishment("1830000002")
    assert type(caught.value) is expected
    assert caught.value.exit_code == exit_code and not caught.value.retryable
    assert calls == 1


def test_certificate_verification_error_says_why() -> None:
    cause = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    cause.verify_message = "Hostname mismatch, certificate is not valid for 'ror.test'."
    error = httpx.ConnectError(str(cause))
    error.__context__ = cause
    raised = call_with(failing(error))
    assert isinstance(raised, ServerCertificateError)
    assert "Hostname mismatch" in str(raised) and "ca_bundle" in str(raised)


def test_a_body_trickling_past_the_total_deadline_is_a_timeout() -> None:
    def trickle() -> Iterator[bytes]:
        for _ in range(50):
            time.sleep(0.01)
            yield b" "

    error = call_with(lambda request: HttpResponse(chunks=trickle()), timeouts=Timeouts(total=0.05))
    assert isinstance(error, RequestTimeoutError) and error.phase == "deadline"
    assert "within 0.05 s" in str(error)


def test_an_invalid_url_is_a_configuration_error() -> None:
    with (
        RorClient("ftp://ror.test/x", options=ClientOptions(retry=ONE_TRY)) as ror,
        pytest.raises(ConfigError),
    ):
        ror.read_unit("x")


def test_urls_in_messages_lose_credentials_and_query() -> None:
    assert safe_url("https://user:secret@ror.test:8443/a/b?token=abc#x") == "https://ror.test:8443/a/b?…"
    assert safe_url("https://[::1]:443/x") == "https://[::1]:443/x"
    with (
        RorClient(
            "https://me:hunter2@ror.test/x?key=s3cr3t",
            options=ClientOptions(handler=failing(httpx.ConnectError("refused")), retry=ONE_TRY),
        ) as ror,
        pytest.raises(ConnectError) as caught,
    ):
        ror.read_unit("x")
    assert "hunter2" not in str(caught.value) and "s3cr3t" not in str(caught.value)


# ---------------------------------------------------------------------------------------------------------
# Secrets


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return build_test_pki(tmp_path_factory.mktemp("pki"), password="Tr0ub4dor&3-unique-password")


def test_passwords_and_keys_never_reach_logs_or_error_messages(
    pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    password = pki.password.get_secret_value()
    key_pem = pki.client_key_unencrypted.read_text()
    key_body = key_pem.splitlines()[1]
    messages: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for error in (httpx.ConnectError("refused"), ssl_wrapped(httpx.ReadError, "TLSV1_ALERT_UNKNOWN_CA")):
            with RorClient(
                URL,
                credentials=Credentials.load(pki.client.pkcs12, password=password),
                options=ClientOptions(
                    ca_bundle=pki.ca_bundle,
                    handler=failing(error),
                    retry=RetryPolicy(max_attempts=2, wait_scale=0),
                ),
            ) as ror:
                messages.append(repr(ror))
                with pytest.raises(Exception) as caught:
                    ror.read_establishment("1830000002")
                messages.append(str(caught.value))
        with pytest.raises(CertificatePasswordError) as wrong:
            Credentials.load(pki.client.pkcs12, password=password + "-wrong")
        messages.append(str(wrong.value))
    text = caplog.text + "\n".join(messages)
    assert "retrying" in caplog.text and "does not trust" in text
    assert password not in text and key_body not in text and "PRIVATE KEY" not in text


def test_client_certificate_subject_is_named_in_rejections(pki: TestPki) -> None:
    error = call_with(
        failing(ssl_wrapped(httpx.ReadError, "SSLV3_ALERT_CERTIFICATE_REVOKED")),
        credentials=Credentials.load(pki.client.pkcs12, password=pki.password),
        ca_bundle=pki.ca_bundle,
    )
    assert isinstance(error, CertificateRevokedError)
    assert pki.client.subject in str(error) and "revoked" in str(error)


def test_a_saved_chunked_response_can_answer_twice(samples_dir: Path) -> None:
    """A handler may return one constant response: its chunks are read afresh for every request."""
    body = (samples_dir / "lecture_response_body.xml").read_bytes()
    saved = HttpResponse(chunks=[body[:100], body[100:]])
    with RorClient(URL, options=ClientOptions(handler=lambda request: saved, retry=ONE_TRY)) as ror:
        first = ror.read_establishment("1830000002")
        assert ror.read_establishment("1830000002") == first
