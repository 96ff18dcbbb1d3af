"""The retry policy: what is retried, how long it waits, when it gives up."""

from __future__ import annotations

import email.utils
import time

import pytest

from rorclient.errors import DataError, RemoteError, TlsError
from rorclient.ror import (
    ConnectError,
    RequestTimeoutError,
    RetryPolicy,
    ServerBusyError,
    ServerFaultError,
    SoapFaultError,
    disable_retry_waits,
)
from rorclient.ror._http import parse_retry_after
from rorclient.ror._retry import retry_call

FAST = RetryPolicy(wait_scale=0)


class Flaky:
    """Fails with the given errors, in order, then returns ``"ok"``."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


@pytest.mark.parametrize(
    "error",
    [
        ConnectError("reset"),
        RequestTimeoutError("slow", phase="read"),
        ServerBusyError("busy", status=503, retry_after=1),
        ServerFaultError(500, "database down", soap_code="Receiver"),
    ],
    ids=["connect", "timeout", "busy", "receiver-fault"],
)
def test_transient_failures_are_retried_until_success(error: Exception) -> None:
    call = Flaky(error, error)
    assert retry_call(call, FAST, operation="test") == "ok"
    assert call.calls == 3


@pytest.mark.parametrize(
    "error",
    [
        SoapFaultError(400, "bad dateRef", soap_code="Sender"),
        RemoteError(404, "unknown establishment"),
        TlsError("certificate revoked"),
        DataError("not XML"),
        ValueError("a bug"),
    ],
    ids=["sender-fault", "remote", "tls", "data", "other"],
)
def test_permanent_failures_are_not_retried(error: Exception) -> None:
    call = Flaky(error)
    with pytest.raises(type(error)):
        retry_call(call, FAST, operation="test")
    assert call.calls == 1


def test_attempts_are_capped_and_the_last_error_is_raised() -> None:
    errors = [ConnectError(f"failure {n}") for n in range(10)]
    call = Flaky(*errors)
    with pytest.raises(ConnectError, match="failure 2"):
        retry_call(call, RetryPolicy(max_attempts=3, wait_scale=0), operation="test")
    assert call.calls == 3


def test_total_time_cap_stops_before_a_wait_that_would_exceed_it() -> None:
    call = Flaky(*[ServerBusyError("busy", status=503, retry_after=30) for _ in range(5)])
    policy = RetryPolicy(max_attempts=5, max_total=10, max_retry_after=60)
    with pytest.raises(ServerBusyError):
        retry_call(call, policy, operation="test")
    assert call.calls == 1  # the 30 s Retry-After would end past the 10 s budget: give up at once


def test_no_retry_policy_makes_one_attempt() -> None:
    call = Flaky(ConnectError("down"))
    with pytest.raises(ConnectError):
        retry_call(call, RetryPolicy.no_retry(), operation="test")
    assert call.calls == 1


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(initial_wait=1, max_wait=5, jitter=0.5)
    for attempt, base in [(1, 1), (2, 2), (3, 4), (4, 5), (8, 5)]:
        wait = policy.wait_before(attempt, ConnectError("x"))
        assert base <= wait <= base + 0.5


def test_retry_after_is_honoured_and_capped() -> None:
    policy = RetryPolicy(initial_wait=0.1, jitter=0, max_retry_after=20)
    assert policy.wait_before(1, ServerBusyError("busy", status=503, retry_after=7)) == 7
    assert policy.wait_before(1, ServerBusyError("busy", status=429, retry_after=3600)) == 20
    assert policy.wait_before(1, ServerBusyError("busy", status=503, retry_after=None)) == pytest.approx(0.1)


def test_wait_scale_and_disable_retry_waits_make_retries_immediate() -> None:
    busy = ServerBusyError("busy", status=503, retry_after=30)
    assert RetryPolicy(wait_scale=0).wait_before(3, busy) == 0
    with disable_retry_waits():
        assert RetryPolicy().wait_before(3, busy) == 0
    assert RetryPolicy().wait_before(3, busy) >= 30


def test_retries_are_logged_as_warnings(caplog: pytest.LogCaptureFixture) -> None:
    call = Flaky(ConnectError("connection reset"))
    with caplog.at_level("WARNING", logger="rorclient.ror"):
        retry_call(call, FAST, operation="idf lecture")
    assert "idf lecture failed (attempt 1): connection reset; retrying" in caplog.text


@pytest.mark.parametrize("value", ["0", "5", " 12 ", "1.5"])
def test_retry_after_in_seconds(value: str) -> None:
    assert parse_retry_after(value) == float(value)


def test_retry_after_as_http_date() -> None:
    now = time.time()
    header = email.utils.formatdate(now + 90, usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(90, abs=1)
    past = email.utils.formatdate(now - 90, usegmt=True)
    assert parse_retry_after(past, now=now) == 0


@pytest.mark.parametrize("value", [None, "", "soon", "-", "nan", "inf"])
def test_unusable_retry_after_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="wait_scale"):
        RetryPolicy(wait_scale=-1)
