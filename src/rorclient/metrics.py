"""Prometheus metrics of the daemon (``rorclient daemon --metrics-port PORT``; extra ``rorclient[metrics]``).

The daemon feeds a :class:`DaemonMetrics` after every run and every change of state; an HTTP server in a
background thread answers ``GET /metrics`` in the Prometheus text format. Gauges are the state seen at
the last run (lag is computed at scrape time from the last success), so a scrape never touches the store.

Metrics (every one labelled ``source``; names and labels are a contract, see docs/daemon.md):

==============================================  =======  ===================================================
``rorclient_runs_total``                        counter  runs by ``operation`` (pull, sync) and ``outcome``
``rorclient_changes_applied_total``             counter  entities committed, by change ``kind``
``rorclient_run_duration_seconds``              histo.   run durations by ``operation``
``rorclient_pending_establishments``            gauge    establishments waiting for a retry
``rorclient_lag_seconds``                       gauge    seconds since the data was last brought up to date
``rorclient_last_success_timestamp_seconds``    gauge    Unix time of the last successful pull or sync
``rorclient_safety_breaker_tripped``            gauge    1 while the safety breaker holds the source
``rorclient_certificate_days_left``             gauge    days until the client certificate expires
``rorclient_live_entities``                     gauge    live entities of the source in the store
``rorclient_consecutive_failures``              gauge    failed runs since the last success
``rorclient_daemon_state``                      gauge    1 for the daemon's current ``state``, 0 for others
==============================================  =======  ===================================================
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, get_args

from rorclient.errors import ConfigError
from rorclient.health import HealthState
from rorclient.store.base import ChangeKind
from rorclient.sync.report import RunStatus, SyncReport, SyncStatus

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

__all__ = ["DaemonMetrics", "MetricsServer"]

_COMMITTED = (RunStatus.SUCCESS, RunStatus.PARTIAL, RunStatus.INTERRUPTED)
"""Runs whose counts are changes committed (a blocked or dry run's counts were only planned)."""

_MISSING = (
    "the daemon's metrics need the prometheus-client package: "
    "pip install 'rorclient[metrics]' (or drop --metrics-port)"
)


def require_prometheus_client() -> None:
    """Raise :class:`~rorclient.errors.ConfigError` unless ``prometheus-client`` is installed."""
    _prometheus()


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise ConfigError(_MISSING) from None
    return prometheus_client


class DaemonMetrics:
    """The metrics of one daemon (one source), in a registry of their own.

    Raises :class:`~rorclient.errors.ConfigError` when ``prometheus-client`` is not installed.
    """

    def __init__(self, source: str) -> None:
        prometheus = _prometheus()
        self.source = source
        self.registry: CollectorRegistry = prometheus.CollectorRegistry(auto_describe=True)
        self._runs = prometheus.Counter(
            "rorclient_runs",
            "Runs of the daemon by operation (pull, sync) and outcome "
            "(success, partial, failed, interrupted, blocked, held).",
            ["source", "operation", "outcome"],
            registry=self.registry,
        )
        self._changes = prometheus.Counter(
            "rorclient_changes_applied",
            "Entities committed to the store, by change kind.",
            ["source", "kind"],
            registry=self.registry,
        )
        for kind in ChangeKind:
            self._changes.labels(source, kind.value)
        self._durations = prometheus.Histogram(
            "rorclient_run_duration_seconds",
            "Duration of the runs that produced a report, by operation.",
            ["source", "operation"],
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200),
            registry=self.registry,
        )
        self._guard = threading.Lock()
        self._state: HealthState = "starting"
        self._status: SyncStatus | None = None
        self._failures = 0
        self.registry.register(_StateCollector(self))

    def run_finished(
        self, operation: str, state: HealthState, report: SyncReport | None, *, failures: int
    ) -> None:
        """Count one run: ``report`` is its report (``None`` when it raised, or did not run because the
        breaker holds the source)."""
        outcome = report.status.value if report is not None else "held" if state == "blocked" else "failed"
        self._runs.labels(self.source, operation, outcome).inc()
        if report is not None:
            self._durations.labels(self.source, operation).observe(report.seconds)
        if report is not None and report.status in _COMMITTED:
            for kind, number in report.counts.items():
                if number:
                    self._changes.labels(self.source, kind).inc(number)
        with self._guard:
            self._failures = failures

    def observe(self, state: HealthState, status: SyncStatus | None) -> None:
        """The daemon's state and the source's status (``None``: unknown, e.g. in standby)."""
        with self._guard:
            self._state = state
            if status is not None:
                self._status = status

    def snapshot(self) -> tuple[HealthState, SyncStatus | None, int]:
        with self._guard:
            return self._state, self._status, self._failures

    def serve(self, port: int, address: str = "127.0.0.1") -> MetricsServer:
        """Answer ``GET /metrics`` on ``address:port`` from a background thread until closed."""
        prometheus = _prometheus()
        try:
            server, thread = prometheus.start_http_server(port, addr=address, registry=self.registry)
        except OSError as error:
            raise ConfigError(
                f"cannot serve metrics on {address}:{port}: {error.strerror or error}"
            ) from None
        return MetricsServer(server, thread)


class MetricsServer:
    """The running ``/metrics`` endpoint; :meth:`close` stops it."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        """The port it listens on (useful after asking for port 0)."""
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _StateCollector:
    """Gauges computed at scrape time from the last state the daemon reported."""

    def __init__(self, metrics: DaemonMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        source = self._metrics.source
        state, status, failures = self._metrics.snapshot()

        def gauge(name: str, documentation: str, value: float | None) -> Iterator[Metric]:
            family = GaugeMetricFamily(name, documentation, labels=["source"])
            if value is not None:
                family.add_metric([source], value)
            yield family

        states = GaugeMetricFamily(
            "rorclient_daemon_state",
            "1 for the daemon's current state, 0 for the others.",
            labels=["source", "state"],
        )
        for name in get_args(HealthState):
            states.add_metric([source, name], 1.0 if name == state else 0.0)
        yield states
        yield from gauge(
            "rorclient_safety_breaker_tripped",
            "1 while the safety breaker holds the source (a human must look), else 0.",
            1.0 if state == "blocked" else 0.0,
        )
        yield from gauge("rorclient_consecutive_failures", "Failed runs since the last success.", failures)
        last_success = status.last_success if status is not None else None
        if last_success is not None and last_success.tzinfo is None:
            last_success = last_success.replace(tzinfo=dt.UTC)
        yield from gauge(
            "rorclient_last_success_timestamp_seconds",
            "Unix time of the end of the last successful pull or sync.",
            last_success.timestamp() if last_success is not None else None,
        )
        yield from gauge(
            "rorclient_lag_seconds",
            "Seconds since the data was last brought up to date.",
            max(0.0, time.time() - last_success.timestamp()) if last_success is not None else None,
        )
        yield from gauge(
            "rorclient_pending_establishments",
            "Establishments that could not be applied and are retried first next cycle.",
            len(status.pending) if status is not None else None,
        )
        yield from gauge(
            "rorclient_live_entities",
            "Live entities of the source in the store.",
            status.entities if status is not None else None,
        )
        certificate = status.certificate if status is not None else None
        yield from gauge(
            "rorclient_certificate_days_left",
            "Days until the client certificate expires (negative: expired).",
            certificate.days_until_expiry if certificate is not None else None,
        )
