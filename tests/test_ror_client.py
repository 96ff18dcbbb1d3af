"""RorClient over a fake transport: answers, errors, retries and concurrency as a caller sees them."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rorclient.errors import ConfigError, DataError, RemoteError, RorError
from rorclient.models import Offer
from rorclient.ror import (
    ClientOptions,
    HttpRequest,
    HttpResponse,
    HttpStatusError,
    NotifEntry,
    RetryPolicy,
    RorClient,
    ServerBusyError,
    ServerFaultError,
    SoapFaultError,
    UnexpectedResponseError,
    _retry,
)

SOAP = "http://www.w3.org/2003/05/soap-envelope"
CSD = "urn:ihe:iti:csd:2013"
ROR = "urn:asip:ror:2015"
URL = "https://ror.test/ROR/0.1/CSD_ROR_Binding"
Handler = Callable[[HttpRequest], HttpResponse]


def envelope(body: bytes) -> bytes:
    return f'<s:Envelope xmlns:s="{SOAP}"><s:Header/><s:Body>'.encode() + body + b"</s:Body></s:Envelope>"


def fault(code: str, erreur: str = '<r:erreur code="405" message="bad count"/>') -> bytes:
    return envelope(
        f"<s:Fault><s:Code><s:Value>s:{code}</s:Value></s:Code>"
        '<s:Reason><s:Text xml:lang="fr">Erreur</s:Text>'
        f'</s:Reason><s:Detail xmlns:r="{ROR}">{erreur}</s:Detail></s:Fault>'.encode()
    )


def soap(status: int, body: bytes, **headers: str) -> HttpResponse:
    return HttpResponse(
        status=status, content=body, headers={"Content-Type": "application/soap+xml", **headers}
    )


class Script:
    """Answers requests from a list of responses (the last one repeats), counting them."""

    def __init__(self, *answers: HttpResponse | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[HttpRequest] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def lecture_body(samples_dir: Path) -> bytes:
    return envelope((samples_dir / "lecture_response_body.xml").read_bytes())


@pytest.fixture
def notif_body(samples_dir: Path) -> bytes:
    return envelope((samples_dir / "notif_response_body.xml").read_bytes())


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry waits, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(_retry, "_sleep", recorded.append)
    return recorded


def client(handler: Handler, **options: object) -> RorClient:
    return RorClient(URL, name="idf", options=ClientOptions(handler=handler, **options))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------
# Success


def test_read_establishment_returns_the_parsed_offer(lecture_body: bytes) -> None:
    with client(Script(soap(200, lecture_body))) as ror:
        offer = ror.read_establishment("1830000002")
    assert isinstance(offer, Offer)
    assert [e.id for e in offer.establishments] == ["1830000002"]
    assert [e.id for e in offer.legal_entities] == ["1830000001"]
    assert len(offer.units) == 1


def test_read_unit_returns_the_parsed_offer(lecture_body: bytes) -> None:
    script = Script(soap(200, lecture_body))
    with client(script) as ror:
        offer = ror.read_unit("93/12345")
    assert [u.id for u in offer.units] == ["93/12345"]
    assert b"organisationID" in script.requests[0].content


def test_changed_establishments_lists_ids_without_repeats(samples_dir: Path) -> None:
    entry = (
        "<csd:etablissementReponseNotif>"
        '<csd:id_etablissement code="{}" assigningAuthorityName="1.2.250.1.71.4.2.2"/>'
        '<csd:typeActivity code="01" codingScheme="1.2.250.1.213.3.3.17"/></csd:etablissementReponseNotif>'
    )
    body = (
        f'<r:TR-Notif-ListeEtablissementMajApresDate_Reponse xmlns:r="{ROR}" xmlns:csd="{CSD}">'
        + "".join(entry.format(i) for i in ["A", "B", "A", "C"])
        + "<csd:result>4</csd:result></r:TR-Notif-ListeEtablissementMajApresDate_Reponse>"
    )
    with client(Script(soap(200, envelope(body.encode())))) as ror:
        assert ror.changed_establishments(dt.datetime(2024, 1, 1)) == ["A", "B", "C"]


def test_changed_establishment_entries_carry_activity_and_flag(notif_body: bytes) -> None:
    with client(Script(soap(200, notif_body))) as ror:
        entries = ror.changed_establishment_entries("2018-05-30T07:00:00")
    assert entries == [
        NotifEntry(
            establishment_id="1830000002",
            id_authority="1.2.250.1.71.4.2.2",
            activity_fields=("01",),
            restricted=False,
        )
    ]


def test_requests_name_rorclient_and_its_version(lecture_body: bytes) -> None:
    import rorclient

    script = Script(soap(200, lecture_body))
    with client(script) as ror:
        ror.read_establishment("1830000002")
    assert script.requests[0].headers["user-agent"] == f"rorclient/{rorclient.__version__}"


def test_a_text_html_content_type_on_a_soap_body_is_tolerated(lecture_body: bytes) -> None:
    with client(Script(HttpResponse(content=lecture_body, headers={"Content-Type": "text/html"}))) as ror:
        assert ror.read_establishment("1830000002").establishments


# ---------------------------------------------------------------------------------------------------------
# Errors the ROR returns


def test_inline_error_is_a_remote_error_with_code_and_message() -> None:
    body = envelope(
        f'<careServicesResponse xmlns="{CSD}"><error code="404" message="unknown establishment"/>'.encode()
        + b"</careServicesResponse>"
    )
    script = Script(soap(200, body))
    with client(script) as ror, pytest.raises(RemoteError) as caught:
        ror.read_establishment("0000000000")
    assert (caught.value.code, caught.value.message) == (404, "unknown establishment")
    assert not caught.value.retryable and len(script.requests) == 1


def test_sender_fault_is_not_retried(sleeps: list[float]) -> None:
    script = Script(soap(400, fault("Sender", '<r:erreur code="400" message="dateRef invalide"/>')))
    with client(script) as ror, pytest.raises(SoapFaultError) as caught:
        ror.changed_establishments("2024-01-01")
    error = caught.value
    assert type(error) is SoapFaultError
    assert (error.code, error.message, error.soap_code) == (400, "dateRef invalide", "Sender")
    assert error.exit_code == 7 and not error.retryable
    assert len(script.requests) == 1


def test_receiver_fault_is_retried_then_succeeds(lecture_body: bytes, sleeps: list[float]) -> None:
    script = Script(soap(500, fault("Receiver")), soap(200, lecture_body))
    with client(script) as ror:
        assert ror.read_establishment("1830000002").establishments
    assert len(script.requests) == 2 and len(sleeps) == 1


def test_receiver_fault_that_persists_is_raised_after_the_last_attempt(sleeps: list[float]) -> None:
    script = Script(soap(500, fault("Receiver")))
    with client(script, retry=RetryPolicy(max_attempts=3)) as ror, pytest.raises(ServerFaultError) as caught:
        ror.read_establishment("1830000002")
    assert caught.value.retryable and caught.value.code == 405
    assert len(script.requests) == 3


def test_fault_inside_a_200_answer_is_still_a_fault() -> None:
    with client(Script(soap(200, fault("Sender")))) as ror, pytest.raises(SoapFaultError, match="bad count"):
        ror.read_establishment("1830000002")


def test_fault_without_detail_uses_the_reason() -> None:
    with client(Script(soap(500, fault("Sender", "")))) as ror, pytest.raises(SoapFaultError) as caught:
        ror.read_unit("x")
    assert caught.value.code is None and caught.value.message == "Erreur"


# ---------------------------------------------------------------------------------------------------------
# HTTP statuses


def test_503_with_retry_after_is_retried_after_the_requested_delay(
    lecture_body: bytes, sleeps: list[float]
) -> None:
    script = Script(soap(503, b"", **{"Retry-After": "7"}), soap(200, lecture_body))
    with client(script) as ror:
        assert ror.read_establishment("1830000002").establishments
    assert len(script.requests) == 2
    assert 7 <= sleeps[0] < 8


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_busy_statuses_are_retried_and_then_reported(status: int, sleeps: list[float]) -> None:
    script = Script(HttpResponse(status=status, headers={"Retry-After": "2"}))
    with client(script, retry=RetryPolicy(max_attempts=3)) as ror, pytest.raises(ServerBusyError) as caught:
        ror.changed_establishments("2024-01-01")
    assert (caught.value.status, caught.value.retry_after) == (status, 2)
    assert caught.value.retryable and caught.value.exit_code == 6
    assert len(script.requests) == 3 and len(sleeps) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 500])
def test_other_statuses_fail_at_once(status: int, sleeps: list[float]) -> None:
    script = Script(
        HttpResponse(status=status, content=b"<html>error</html>", headers={"Content-Type": "text/html"})
    )
    with client(script) as ror, pytest.raises(HttpStatusError) as caught:
        ror.read_establishment("1830000002")
    assert caught.value.status == status and not caught.value.retryable
    assert f"answered HTTP {status}" in str(caught.value)
    assert len(script.requests) == 1 and not sleeps


def test_an_html_page_with_status_200_is_an_unexpected_response() -> None:
    page = HttpResponse(
        content=b"<!DOCTYPE html><html><body>Portail</body></html>", headers={"Content-Type": "text/html"}
    )
    with client(Script(page)) as ror, pytest.raises(UnexpectedResponseError, match="text/html"):
        ror.read_establishment("1830000002")


def test_a_malformed_answer_is_a_data_error() -> None:
    with client(Script(soap(200, b"<s:Envelope xmlns:s='x'><unclosed>"))) as ror, pytest.raises(DataError):
        ror.changed_establishments("2024-01-01")


# ---------------------------------------------------------------------------------------------------------
# Many reads at once


def test_read_establishments_yields_each_result_and_keeps_going_after_errors(lecture_body: bytes) -> None:
    inline_error = envelope(
        f'<careServicesResponse xmlns="{CSD}"><error code="404" message="unknown"/>'
        "</careServicesResponse>".encode()
    )

    def handler(request: HttpRequest) -> HttpResponse:
        return soap(200, inline_error if b'code="bad' in request.content else lecture_body)

    with client(handler) as ror:
        results = dict(ror.read_establishments(["ok1", "bad1", "ok2", "bad2", "ok3"], concurrency=3))
    assert sorted(results) == ["bad1", "bad2", "ok1", "ok2", "ok3"]
    assert all(isinstance(results[i], Offer) for i in ("ok1", "ok2", "ok3"))
    assert all(isinstance(results[i], RemoteError) for i in ("bad1", "bad2"))


def test_a_large_server_fault_among_many_reads_is_retried(lecture_body: bytes, sleeps: list[float]) -> None:
    """A soap:Receiver fault too large to be sniffed before parsing is found by the parser (in the
    iterating thread): the read is retried as a single read's would be."""
    padding = b"<!--" + b" " * 70_000 + b"-->"
    large_fault = fault("Receiver").replace(b"<s:Body>", b"<s:Body>" + padding)
    script = Script(soap(200, large_fault), soap(200, lecture_body))
    with client(script) as ror:
        results = dict(ror.read_establishments(["1830000002"], concurrency=2))
    assert isinstance(results["1830000002"], Offer)
    assert len(script.requests) == 2 and len(sleeps) == 1


def test_concurrency_is_bounded_by_max_concurrency(lecture_body: bytes) -> None:
    lock = threading.Lock()
    active = peak = 0

    def handler(request: HttpRequest) -> HttpResponse:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.01)
        with lock:
            active -= 1
        return soap(200, lecture_body)

    with client(handler, max_concurrency=2) as ror:
        results = list(ror.read_establishments((str(n) for n in range(12)), concurrency=8))
    assert len(results) == 12
    assert peak <= 2


def test_reads_run_in_parallel_up_to_the_requested_concurrency(lecture_body: bytes) -> None:
    barrier = threading.Barrier(4, timeout=5)

    def handler(request: HttpRequest) -> HttpResponse:
        barrier.wait()  # only returns once 4 requests are in flight together
        return soap(200, lecture_body)

    with client(handler) as ror:
        results = list(ror.read_establishments([str(n) for n in range(8)], concurrency=4))
    assert all(isinstance(result, Offer) for _, result in results)


def test_stopping_the_iteration_early_leaves_no_reads_running(lecture_body: bytes) -> None:
    script = Script(soap(200, lecture_body))
    with client(script) as ror:
        reads = ror.read_establishments((str(n) for n in range(1000)), concurrency=2)
        next(reads)
        reads.close()
        count = len(script.requests)
        time.sleep(0.05)
        assert len(script.requests) == count <= 5


# ---------------------------------------------------------------------------------------------------------
# Arguments and lifecycle


def test_since_is_sent_as_naive_paris_time(notif_body: bytes) -> None:
    script = Script(soap(200, notif_body))
    with client(script) as ror:
        ror.changed_establishments(dt.datetime(2024, 7, 1, 10, 0, 0, 123456, tzinfo=dt.UTC))
        ror.changed_establishments(dt.date(2024, 1, 15))
        ror.changed_establishments("2024-02-01T08:30:00")
    sent = [r.content.split(b"dateRef>")[1].split(b"<")[0] for r in script.requests]
    assert sent == [b"2024-07-01T12:00:00", b"2024-01-15T00:00:00", b"2024-02-01T08:30:00"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ror: ror.changed_establishments("yesterday"), "ISO 8601"),
        (lambda ror: ror.read_establishment("  "), "establishment_id"),
        (lambda ror: ror.read_establishment("1", activity=[""]), "activity: empty code"),
        (lambda ror: ror.read_establishment("1", patients=[1]), "patients"),
        (lambda ror: list(ror.read_establishments(["1"], concurrency=0)), "concurrency"),
    ],
)
def test_bad_arguments_are_configuration_errors(call: Callable[[RorClient], object], message: str) -> None:
    script = Script(soap(200, b""))
    with client(script) as ror, pytest.raises(ConfigError, match=message):
        call(ror)
    assert not script.requests


def test_a_source_without_soap_url_cannot_call_soap_operations() -> None:
    with RorClient(name="files") as ror, pytest.raises(ConfigError, match="source 'files' has no soap_url"):
        ror.read_unit("x")


def test_a_closed_client_refuses_calls(lecture_body: bytes) -> None:
    ror = client(Script(soap(200, lecture_body)))
    ror.close()
    with pytest.raises(ConfigError, match="closed"):
        ror.read_establishment("1830000002")


def test_every_error_is_a_ror_error(sleeps: list[float]) -> None:
    answers: tuple[Exception | HttpResponse, ...] = (
        ConnectionRefusedError("refused"),
        TimeoutError("slow"),
        HttpResponse(status=418),
    )
    for answer in answers:
        with client(Script(answer), retry=RetryPolicy(max_attempts=1)) as ror, pytest.raises(RorError):
            ror.read_unit("x")
