"""FhirClient against small FHIR + OAuth2 servers on 127.0.0.1: auth, headers, search paging and
truncation, $export kick-off / polling / downloads / DELETE, errors."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rorclient.errors import RorError
from rorclient.fhir import (
    FhirAuthError,
    FhirClient,
    FhirError,
    FhirOptions,
    FhirTransientError,
    FhirTruncatedError,
    region_type_filter,
)
from rorclient.fhir import client as client_module
from rorclient.ror import RetryPolicy
from rorclient.ror.errors import ServerBusyError
from rorclient.sandbox.pki import TestPki, build_test_pki, server_ssl_context
from rorclient.sync._plan import Interrupted
from rorclient.tls import Credentials, TlsError
from tests._fhir_server import (
    ROR_HEADERS,
    SECRET,
    FhirTestServer,
    Request,
    Response,
    json_response,
    outcome,
)

FAST = RetryPolicy(max_attempts=4, wait_scale=0)


@pytest.fixture
def server() -> Iterator[FhirTestServer]:
    with FhirTestServer() as running:
        yield running


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Seconds the client chose to wait between polls and downloads (nothing really waits)."""
    recorded: list[float] = []
    monkeypatch.setattr(client_module, "_sleep", recorded.append)
    return recorded


def options(server: FhirTestServer, **changes: Any) -> FhirOptions:
    values: dict[str, Any] = {
        "base_url": server.base_url,
        "token_url": server.token_url,
        "client_id": "my-app",
        "client_secret": SECRET,
        "profile_code": ROR_HEADERS["ror-profil-utilisateur-code"],
        "profile_system": ROR_HEADERS["ror-profil-utilisateur-system"],
        "role_code": ROR_HEADERS["ror-role-metier-code"],
        "role_system": ROR_HEADERS["ror-role-metier-system"],
        "retry": FAST,
        "poll_interval": 0.0,
    }
    values.update(changes)
    return FhirOptions(**values)


def org(number: int) -> dict[str, Any]:
    return {"resourceType": "Organization", "id": f"org-{number}", "name": f"Organisation {number}"}


def bundle(
    resources: list[dict[str, Any]], *, total: int | None = None, next_url: str | None = None, **extra: Any
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"fullUrl": f"x/{r['id']}", "resource": r, **extra} for r in resources],
    }
    if total is not None:
        value["total"] = total
    if next_url is not None:
        value["link"] = [{"relation": "self", "url": "x"}, {"relation": "next", "url": next_url}]
    return value


# --------------------------------------------------------------------------------------------------------
# auth


def serve_empty_search(server: FhirTestServer) -> None:
    @server.route("GET", "/fhir/Organization")
    def _(request: Request) -> Response:
        return json_response(bundle([], total=0))


def test_token_cached_then_renewed_before_expiry(server: FhirTestServer) -> None:
    server.token_lifetime = 1.0  # renewed halfway through such a short lifetime
    serve_empty_search(server)
    with FhirClient(options(server)) as fhir:
        list(fhir.search("Organization", []))
        list(fhir.search("Organization", []))
        assert fhir.tokens_fetched == 1
        time.sleep(0.6)
        list(fhir.search("Organization", []))
        assert fhir.tokens_fetched == 2
    form = dict(__import__("urllib.parse").parse.parse_qsl(server.token_requests()[0].body.decode()))
    assert form == {"grant_type": "client_credentials", "client_id": "my-app", "client_secret": SECRET}


def test_token_lifetime_read_from_the_jwt_when_expires_in_is_absent(server: FhirTestServer) -> None:
    def jwt(token: str) -> dict[str, Any]:
        claims = base64.urlsafe_b64encode(json.dumps({"exp": time.time() + 1.0}).encode()).rstrip(b"=")
        return {"access_token": f"e30.{claims.decode()}.{token}", "token_type": "bearer"}

    server.token_body = jwt
    serve_empty_search(server)
    with FhirClient(options(server)) as fhir:
        list(fhir.search("Organization", []))
        list(fhir.search("Organization", []))
        assert fhir.tokens_fetched == 1
        time.sleep(0.7)
        list(fhir.search("Organization", []))
        assert fhir.tokens_fetched == 2


def test_a_refused_token_is_renewed_once(server: FhirTestServer) -> None:
    serve_empty_search(server)
    with FhirClient(options(server)) as fhir:
        list(fhir.search("Organization", []))
        server.valid_tokens.clear()  # the server revoked it before its announced expiry
        list(fhir.search("Organization", []))
        assert fhir.tokens_fetched == 2
    statuses = [request.headers["authorization"] for request in server.api_requests()]
    assert statuses == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


def test_a_server_refusing_every_token_raises_auth_error_after_one_renewal(server: FhirTestServer) -> None:
    server.routes[("GET", "/fhir/Organization")] = lambda request: outcome("login", "no", 401)
    with FhirClient(options(server)) as fhir, pytest.raises(FhirAuthError) as caught:
        list(fhir.search("Organization", []))
    assert caught.value.status == 401
    assert not caught.value.retryable
    assert len(server.token_requests()) == 2
    assert len(server.api_requests()) == 2


def test_forbidden_access_profile_is_an_auth_error_with_the_outcome(server: FhirTestServer) -> None:
    server.routes[("GET", "/fhir/Organization")] = lambda request: outcome(
        "forbidden", "profile CU22 denied", 403
    )
    with FhirClient(options(server)) as fhir, pytest.raises(FhirAuthError) as caught:
        list(fhir.search("Organization", []))
    assert caught.value.issues[0].code == "forbidden"
    assert "profile CU22 denied" in str(caught.value)


def test_the_secret_never_appears_in_reprs_errors_or_logs(
    server: FhirTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.secret = "the-server-expects-another"  # the server refuses and echoes what it got
    opts = options(server)
    assert SECRET not in repr(opts) and SECRET not in str(opts)
    with FhirClient(opts) as fhir:
        assert SECRET not in repr(fhir)
        with pytest.raises(FhirAuthError) as caught:
            list(fhir.search("Organization", []))
    error = caught.value
    assert error.error == "invalid_client"
    assert "bad secret" in str(error)
    for text in (str(error), repr(error), repr(error.args), caplog.text):
        assert SECRET not in text
    assert SECRET not in repr(error.__dict__)


def test_tokens_never_appear_in_logs(server: FhirTestServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    serve_empty_search(server)
    with FhirClient(options(server)) as fhir:
        list(fhir.search("Organization", []))
    assert "tok-1" not in caplog.text
    assert SECRET not in caplog.text


def test_token_endpoint_busy_is_retried(server: FhirTestServer) -> None:
    serve_empty_search(server)
    calls = iter([outcome("transient", "busy", 503, **{"Retry-After": "0"})])
    original = server._token

    def flaky(request: Request) -> Response:
        return next(calls, None) or original(request)

    server._token = flaky  # type: ignore[method-assign]
    with FhirClient(options(server)) as fhir:
        list(fhir.search("Organization", []))
    assert len(server.token_requests()) == 2


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return build_test_pki(tmp_path_factory.mktemp("pki"), hosts=("127.0.0.1", "localhost"))


def test_mtls_token_without_secret(pki: TestPki) -> None:
    credentials = Credentials.load(pki.client.pkcs12, password=pki.password, ca_bundle=pki.ca_bundle)
    with FhirTestServer(ssl_context=server_ssl_context(pki, check_revocation=False), secret=None) as server:
        serve_empty_search(server)
        with FhirClient(options(server, client_secret=None, credentials=credentials)) as fhir:
            assert list(fhir.search("Organization", [])) == []
        token_request = server.token_requests()[0]
        assert token_request.peer_certificate is not None
        form = dict(__import__("urllib.parse").parse.parse_qsl(token_request.body.decode()))
        assert form == {"grant_type": "client_credentials", "client_id": "my-app"}
        assert all(request.peer_certificate is not None for request in server.requests)


def test_tls_server_not_trusted_is_a_tls_error(pki: TestPki, tmp_path: Path) -> None:
    other = build_test_pki(tmp_path / "other", hosts=("127.0.0.1",))
    with (
        FhirTestServer(ssl_context=server_ssl_context(pki, check_revocation=False)) as server,
        FhirClient(options(server, ca_bundle=other.ca_bundle)) as fhir,
        pytest.raises(TlsError),
    ):
        list(fhir.search("Organization", []))


# --------------------------------------------------------------------------------------------------------
# search


def test_search_follows_next_links_and_yields_includes(server: FhirTestServer) -> None:
    pages = {
        "1": bundle([org(1), org(2)], total=3, next_url=f"{server.base_url}/Organization?page=2"),
        "2": {
            **bundle([org(3)], search={"mode": "match"}),
            "entry": [
                {"resource": org(3), "search": {"mode": "match"}},
                {"resource": {"resourceType": "Organization", "id": "parent"}, "search": {"mode": "include"}},
            ],
        },
    }

    @server.route("GET", "/fhir/Organization")
    def _(request: Request) -> Response:
        return json_response(pages[request.param("page") or "1"])

    with FhirClient(options(server, page_size=2)) as fhir:
        found = list(fhir.search("Organization", [("_lastUpdated", "ge2026-01-01T00:00:00Z")]))
    assert [r["id"] for r in found] == ["org-1", "org-2", "org-3", "parent"]
    first = server.api_requests()[0]
    assert first.query == [("_lastUpdated", "ge2026-01-01T00:00:00Z"), ("_count", "2")]
    assert server.api_requests()[1].query == [("page", "2")]  # the next link, verbatim


def test_search_keeps_an_explicit_count_and_repeated_params(server: FhirTestServer) -> None:
    serve_empty_search(server)
    params = [
        ("_count", "50"),
        ("_include", "A:b"),
        ("_include", "C:d"),
        ("organization.identifier:above", "1"),
    ]
    with FhirClient(options(server)) as fhir:
        list(fhir.search("Organization", params))
    assert server.api_requests()[0].query == params


def test_every_call_carries_bearer_and_the_four_ror_headers(server: FhirTestServer) -> None:
    serve_empty_search(server)
    serve_export(server, [[org(1)]])
    with FhirClient(options(server)) as fhir:
        list(fhir.search("Organization", []))
        with fhir.export() as export:
            list(export.resources())
    methods = {(request.method, request.path.split("/")[-1]) for request in server.api_requests()}
    assert {
        ("GET", "Organization"),
        ("GET", "$export"),
        ("GET", "$export-poll-status"),
        ("DELETE", "$export-poll-status"),
        ("GET", "file-0.json"),
    } <= methods
    for request in server.api_requests():
        assert request.headers["authorization"].startswith("Bearer tok-")
        for name, value in ROR_HEADERS.items():
            assert request.headers[name] == value, (request.path, name)


def test_total_at_the_limit_is_truncation_before_anything_is_yielded(server: FhirTestServer) -> None:
    @server.route("GET", "/fhir/HealthcareService")
    def _(request: Request) -> Response:
        return json_response(bundle([org(1)], total=5, next_url=f"{server.base_url}/HealthcareService?p=2"))

    with FhirClient(options(server, truncation_limit=5)) as fhir:
        results = fhir.search("HealthcareService", [])
        with pytest.raises(FhirTruncatedError) as caught:
            next(results)
    assert (caught.value.limit, caught.value.total, caught.value.resource_type) == (5, 5, "HealthcareService")
    assert not caught.value.retryable


def test_limit_reached_with_a_next_link_is_truncation(server: FhirTestServer) -> None:
    def service(number: int) -> dict[str, Any]:
        return {"resourceType": "HealthcareService", "id": f"hs-{number}"}

    @server.route("GET", "/fhir/HealthcareService")
    def _(request: Request) -> Response:
        page = int(request.param("p") or 1)
        items = [service(page * 10 + i) for i in range(2)]
        return json_response(bundle(items, next_url=f"{server.base_url}/HealthcareService?p={page + 1}"))

    with FhirClient(options(server, truncation_limit=4)) as fhir:
        seen: list[str] = []
        results = fhir.search("HealthcareService", [])
        seen.extend(next(results)["id"] for _ in range(2))
        with pytest.raises(FhirTruncatedError):
            next(results)
    assert seen == ["hs-10", "hs-11"]  # the second page (reaching the limit) is never handed out
    assert len(server.api_requests()) == 2


def test_limit_reached_on_the_last_page_without_total_is_truncation(server: FhirTestServer) -> None:
    @server.route("GET", "/fhir/Organization")
    def _(request: Request) -> Response:
        return json_response(bundle([org(1), org(2), org(3)]))  # no total, no next link

    with FhirClient(options(server, truncation_limit=3)) as fhir, pytest.raises(FhirTruncatedError):
        list(fhir.search("Organization", []))
    with FhirClient(options(server, truncation_limit=4)) as fhir:
        assert len(list(fhir.search("Organization", []))) == 3


def test_fewer_results_than_the_announced_total_is_truncation(server: FhirTestServer) -> None:
    @server.route("GET", "/fhir/Organization")
    def _(request: Request) -> Response:
        return json_response(bundle([org(1), org(2)], total=40))  # a server whose limit is 2

    with FhirClient(options(server)) as fhir, pytest.raises(FhirTruncatedError) as caught:
        list(fhir.search("Organization", []))
    assert caught.value.total == 40


def test_server_outcome_saying_truncated_is_truncation(server: FhirTestServer) -> None:
    @server.route("GET", "/fhir/HealthcareService")
    def _(request: Request) -> Response:
        value = bundle([{"resourceType": "HealthcareService", "id": "a"}])
        value["entry"].append(
            {
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {"severity": "warning", "code": "too-costly", "diagnostics": "results truncated"}
                    ],
                },
                "search": {"mode": "outcome"},
            }
        )
        return json_response(value)

    with FhirClient(options(server)) as fhir, pytest.raises(FhirTruncatedError) as caught:
        list(fhir.search("HealthcareService", []))
    assert caught.value.issues[0].code == "too-costly"


def test_a_next_link_to_another_host_is_refused(server: FhirTestServer) -> None:
    @server.route("GET", "/fhir/Organization")
    def _(request: Request) -> Response:
        return json_response(bundle([org(1)], next_url="http://evil.example/steal?page=2"))

    with FhirClient(options(server)) as fhir, pytest.raises(FhirError, match="another host"):
        list(fhir.search("Organization", []))


def test_a_looping_next_link_is_an_error(server: FhirTestServer) -> None:
    @server.route("GET", "/fhir/Organization")
    def _(request: Request) -> Response:
        return json_response(bundle([org(1)], next_url=f"{server.base_url}/Organization?page=2"))

    with FhirClient(options(server)) as fhir, pytest.raises(FhirError, match="loops"):
        list(fhir.search("Organization", []))


def test_busy_and_transient_answers_are_retried_honouring_retry_after(
    server: FhirTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rorclient.ror import _retry

    retry_waits: list[float] = []
    monkeypatch.setattr(_retry, "_sleep", retry_waits.append)
    answers = iter(
        [
            outcome("throttled", "slow down", 429, **{"Retry-After": "7"}),
            outcome("transient", "try later", 500),
            Response(503, {"Retry-After": "2"}),
        ]
    )

    @server.route("GET", "/fhir/Organization")
    def _(request: Request) -> Response:
        return next(answers, None) or json_response(bundle([org(1)]))

    policy = RetryPolicy(max_attempts=5, jitter=0, initial_wait=0.01, max_wait=0.01)
    with FhirClient(options(server, retry=policy)) as fhir:
        assert [r["id"] for r in fhir.search("Organization", [])] == ["org-1"]
    assert retry_waits == [7.0, 0.01, 2.0]


def test_a_non_transient_outcome_is_not_retried(server: FhirTestServer) -> None:
    server.routes[("GET", "/fhir/Organization")] = lambda request: outcome(
        "invalid", "unknown parameter x", 400
    )
    with FhirClient(options(server)) as fhir, pytest.raises(FhirError) as caught:
        list(fhir.search("Organization", [("x", "1")]))
    error = caught.value
    assert not isinstance(error, FhirTransientError) and not error.retryable
    assert error.status == 400 and error.issues[0].diagnostics == "unknown parameter x"
    assert len(server.api_requests()) == 1


def test_busy_until_the_policy_gives_up_raises_server_busy(server: FhirTestServer) -> None:
    server.routes[("GET", "/fhir/Organization")] = lambda request: Response(503, {"Retry-After": "0"})
    with FhirClient(options(server)) as fhir, pytest.raises(ServerBusyError) as caught:
        list(fhir.search("Organization", []))
    assert caught.value.retryable and caught.value.status == 503
    assert len(server.api_requests()) == FAST.max_attempts


# --------------------------------------------------------------------------------------------------------
# export


def ndjson(resources: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in resources)


def serve_export(
    server: FhirTestServer,
    files: list[list[dict[str, Any]]],
    *,
    shape: str = "bundle",
    polls: list[Response] | None = None,
    kick_off_status: int = 202,
    manifest_extra: dict[str, Any] | None = None,
) -> None:
    """An export whose status answers ``polls`` in turn, then the manifest of ``files``."""
    pending = list(polls or [])
    poll_url = f"{server.base_url}/$export-poll-status?_jobId=job-1"

    @server.route("GET", "/fhir/$export")
    def _(request: Request) -> Response:
        return Response(kick_off_status, {"Content-Location": poll_url})

    @server.route("GET", "/fhir/$export-poll-status")
    def _(request: Request) -> Response:
        if pending:
            return pending.pop(0)
        manifest = {
            "transactionTime": "2026-06-01T10:00:00.123+02:00",
            "request": "x",
            "requiresAccessToken": True,
            "output": [
                {"type": "HealthcareService", "url": f"{server.base_url}/files/file-{n}.json"}
                for n in range(len(files))
            ],
            "error": [],
            **(manifest_extra or {}),
        }
        return json_response(manifest)

    @server.route("DELETE", "/fhir/$export-poll-status")
    def _(request: Request) -> Response:
        return Response(202)

    for number, resources in enumerate(files):
        body = ndjson(resources) if shape == "ndjson" else json.dumps(bundle(resources)).encode()
        server.routes[("GET", f"/fhir/files/file-{number}.json")] = lambda request, body=body: Response(
            200, {"Content-Type": "application/fhir+json"}, body
        )


def test_export_kick_off_202_polls_with_retry_after_and_progress(
    server: FhirTestServer, waits: list[float]
) -> None:
    serve_export(
        server,
        [[org(1), org(2)], [org(3)]],
        polls=[
            Response(202, {"X-Progress": "10%", "Retry-After": "3"}),
            Response(202, {"X-Progress": "Build in progress", "Retry-After": "1"}),
            outcome("throttled", "too fast", 429, **{"Retry-After": "5"}),
        ],
    )
    progress: list[str | None] = []
    with (
        FhirClient(options(server)) as fhir,
        fhir.export(type_filter=region_type_filter(["11"]), on_progress=progress.append) as export,
    ):
        ids = [r["id"] for r in export.resources()]
        assert export.transaction_time is not None
        assert export.transaction_time.isoformat() == "2026-06-01T10:00:00.123000+02:00"
        assert export.requested_at.tzinfo is not None
    assert ids == ["org-1", "org-2", "org-3"]
    assert progress == ["10%", "Build in progress"]
    assert sum(waits) == pytest.approx(9.0)
    kick_off = next(request for request in server.api_requests() if request.path.endswith("/$export"))
    assert kick_off.headers["prefer"] == "respond-async"
    assert dict(kick_off.query) == {
        "_outputFormat": "application/fhir+json",
        "_type": "HealthcareService",
        "_typeFilter": "HealthcareService?_tag=https://mos.esante.gouv.fr/NOS/TRE_R30-RegionOM/FHIR/TRE-R30-RegionOM|11",
        "includeAssociatedData": "_myCompleteExtract",
    }
    assert server.api_requests()[-1].method == "DELETE"


def test_export_kick_off_200_with_content_location_and_ndjson_files(
    server: FhirTestServer, waits: list[float]
) -> None:
    serve_export(server, [[org(1)], [org(2), org(3)]], shape="ndjson", kick_off_status=200)
    with FhirClient(options(server)) as fhir, fhir.export() as export:
        assert [r["id"] for r in export.resources()] == ["org-1", "org-2", "org-3"]


def test_export_without_retry_after_backs_off(server: FhirTestServer, waits: list[float]) -> None:
    serve_export(server, [[org(1)]], polls=[Response(202), Response(202), Response(202)])
    with FhirClient(options(server, poll_interval=2.0)) as fhir, fhir.export() as export:
        list(export.resources())
    assert sum(waits) == pytest.approx(2.0 + 3.0 + 4.5)


def test_export_kick_off_busy_is_retried(server: FhirTestServer, waits: list[float]) -> None:
    serve_export(server, [[org(1)]])
    kick_off = server.routes[("GET", "/fhir/$export")]
    answers = iter([outcome("throttled", "an export is already running", 429, **{"Retry-After": "0"})])
    server.routes[("GET", "/fhir/$export")] = lambda request: next(answers, None) or kick_off(request)
    with FhirClient(options(server)) as fhir, fhir.export() as export:
        assert [r["id"] for r in export.resources()] == ["org-1"]
    assert len([r for r in server.api_requests() if r.path.endswith("/$export")]) == 2


def test_export_poll_error_outcomes_are_typed(server: FhirTestServer, waits: list[float]) -> None:
    serve_export(
        server,
        [[org(1)]],
        polls=[outcome("transient", "node restarting", 500), outcome("processing", "the job failed", 500)],
    )
    with FhirClient(options(server)) as fhir, pytest.raises(FhirError) as caught, fhir.export():
        pass
    assert not caught.value.retryable
    assert caught.value.issues[0].diagnostics == "the job failed"
    assert server.api_requests()[-1].method == "DELETE"  # the job is abandoned, not left behind


def test_export_error_file_with_errors_refuses_the_export(server: FhirTestServer, waits: list[float]) -> None:
    serve_export(
        server,
        [[org(1)]],
        manifest_extra={
            "error": [{"type": "OperationOutcome", "url": f"{server.base_url}/files/errors.ndjson"}]
        },
    )
    failure = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "exception", "diagnostics": "Location partition lost"}],
    }
    server.routes[("GET", "/fhir/files/errors.ndjson")] = lambda request: Response(200, {}, ndjson([failure]))
    with FhirClient(options(server)) as fhir, pytest.raises(FhirError, match="incomplete"), fhir.export():
        pass


def test_export_files_on_another_host_are_refused_with_a_token(
    server: FhirTestServer, waits: list[float]
) -> None:
    serve_export(server, [], manifest_extra={"output": [{"type": "X", "url": "https://files.example/f1"}]})
    with FhirClient(options(server)) as fhir, pytest.raises(FhirError, match="another host"), fhir.export():
        pass


def test_export_deletes_the_job_when_the_caller_fails(server: FhirTestServer, waits: list[float]) -> None:
    serve_export(server, [[org(1)]])
    with FhirClient(options(server)) as fhir, pytest.raises(RuntimeError), fhir.export():
        raise RuntimeError("the store failed")
    deletes = [r for r in server.api_requests() if r.method == "DELETE"]
    assert len(deletes) == 1 and deletes[0].query == [("_jobId", "job-1")]


def test_export_stop_abandons_and_deletes_the_job(server: FhirTestServer, waits: list[float]) -> None:
    serve_export(server, [[org(1)]], polls=[Response(202, {"Retry-After": "60"})] * 5)
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 3

    with FhirClient(options(server)) as fhir, pytest.raises(Interrupted), fhir.export(stop=stop):
        pass
    assert server.api_requests()[-1].method == "DELETE"
    assert sum(waits) < 60


def test_token_expiring_mid_download_is_renewed_and_nothing_repeats(
    server: FhirTestServer, waits: list[float]
) -> None:
    resources = [org(n) for n in range(200)]
    serve_export(server, [resources[:100], resources[100:]], shape="ndjson")
    body = ndjson(resources[100:])
    cut = body.index(b"\n", len(body) // 2) + 1
    downloads: list[str] = []

    def second_file(request: Request) -> Response:
        downloads.append(request.headers["authorization"])
        if len(downloads) == 1:
            server.valid_tokens.clear()  # the token expires while this file streams
            return Response(200, {}, body, cut_after=cut)
        return Response(200, {}, body)

    server.routes[("GET", "/fhir/files/file-1.json")] = second_file
    with FhirClient(options(server)) as fhir, fhir.export() as export:
        ids = [r["id"] for r in export.resources()]
    assert ids == [r["id"] for r in resources]
    assert downloads == ["Bearer tok-1", "Bearer tok-2"]  # 401 on the retry, renewed, fetched again


def test_a_download_refused_for_good_is_not_retried(server: FhirTestServer, waits: list[float]) -> None:
    serve_export(server, [[org(1)]])
    server.routes[("GET", "/fhir/files/file-0.json")] = lambda request: outcome("not-found", "expired", 404)
    with FhirClient(options(server)) as fhir, fhir.export() as export, pytest.raises(FhirError) as caught:
        list(export.resources())
    assert caught.value.status == 404


def test_export_streams_a_large_bundle_file_in_flat_memory(
    server: FhirTestServer, waits: list[float]
) -> None:
    import tracemalloc

    entries = 20_000
    padding = "x" * 400

    def chunks() -> Iterator[bytes]:
        yield b'{"resourceType":"Bundle","type":"collection","entry":['
        for n in range(entries):
            resource = {"resourceType": "Location", "id": f"loc-{n}", "description": padding}
            yield (b"," if n else b"") + json.dumps({"resource": resource}).encode()
        yield b"]}"

    serve_export(server, [[]])
    server.routes[("GET", "/fhir/files/file-0.json")] = lambda request: Response(200, {}, chunks())
    with FhirClient(options(server)) as fhir, fhir.export() as export:
        tracemalloc.start()
        try:
            count = sum(1 for _ in export.resources())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert count == entries  # about 9 MB streamed
    assert peak < 5 * 1024 * 1024  # flat: see test_fhir_stream for the growth check


def test_closed_client_refuses_calls(server: FhirTestServer) -> None:
    fhir = FhirClient(options(server))
    fhir.close()
    with pytest.raises(RorError, match="closed"):
        list(fhir.search("Organization", []))


def test_fhir_errors_survive_pickling_with_their_attributes() -> None:
    import pickle

    from rorclient.fhir import FhirIssue

    issue = FhirIssue(severity="error", code="too-costly", diagnostics="10000 max")
    error = FhirTruncatedError("cut", resource_type="Location", limit=10, total=12, issues=[issue])
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is FhirTruncatedError and str(copy) == str(error)
    assert (copy.resource_type, copy.limit, copy.total, copy.issues) == ("Location", 10, 12, (issue,))
    assert pickle.loads(pickle.dumps(FhirTransientError("x"))).retryable


def test_an_export_file_with_fewer_resources_than_its_manifest_counts_is_refused(
    server: FhirTestServer, waits: list[float]
) -> None:
    # A file that ends cleanly but short (a proxy, a server cut at a line boundary) must not pass for the
    # whole export: what it lacks would be tombstoned, below the breaker's share unnoticed.
    resources = [org(n) for n in range(10)]
    serve_export(
        server,
        [resources],
        shape="ndjson",
        manifest_extra={
            "output": [{"type": "Organization", "url": f"{server.base_url}/files/file-0.json", "count": 11}]
        },
    )
    with FhirClient(options(server)) as fhir, fhir.export() as export, pytest.raises(FhirError) as caught:
        list(export.resources())
    assert "11" in str(caught.value) and "10" in str(caught.value)
    downloads = [r for r in server.api_requests() if r.path.endswith("/files/file-0.json")]
    assert len(downloads) > 1  # fetched again before giving up: a short file may be a transient cut


def test_an_export_file_with_the_count_its_manifest_announces_is_read(
    server: FhirTestServer, waits: list[float]
) -> None:
    resources = [org(n) for n in range(3)]
    serve_export(
        server,
        [resources],
        shape="ndjson",
        manifest_extra={
            "output": [{"type": "Organization", "url": f"{server.base_url}/files/file-0.json", "count": 3}]
        },
    )
    with FhirClient(options(server)) as fhir, fhir.export() as export:
        assert [r["id"] for r in export.resources()] == ["org-0", "org-1", "org-2"]


@pytest.mark.parametrize(
    "errors",
    [
        [{"type": "OperationOutcome"}],  # an error file without its url
        ["errors.ndjson"],
        {"type": "OperationOutcome", "url": "errors.ndjson"},  # not a list
        "errors.ndjson",
    ],
)
def test_an_export_manifest_with_unreadable_error_entries_is_refused(
    server: FhirTestServer, waits: list[float], errors: Any
) -> None:
    # The server says something went wrong, in a shape we cannot read: that is no proof of completeness.
    serve_export(server, [[org(1)]], manifest_extra={"error": errors})
    with FhirClient(options(server)) as fhir, pytest.raises(FhirError, match="error"), fhir.export():
        pass
