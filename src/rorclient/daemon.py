"""``rorclient daemon``: sync one source every ``interval`` (with jitter), pull it in full every
``full_every``, stop cleanly on SIGTERM/SIGINT, one instance per store and source, structured logs, a
health file.

::

    from rorclient.daemon import DaemonOptions, run_daemon
    run_daemon(Settings.load(), DaemonOptions(interval=parse_duration("15m"), health_file=Path("h.json")))

Behaviour (docs/daemon.md):

* **Schedule** — the first run starts at once: a full pull if the source was never pulled or its last
  full pull is older than ``full_every`` (the ROR recommends a weekly full re-sync), else a delta sync.
  The next run starts ``interval`` later, ± ``jitter`` × interval. After a failure the daemon retries
  sooner (``retry_after``, doubling up to ``interval``).
* **Latched breaker** — a tripped safety breaker is latched for the source in the store: the daemon then
  applies nothing from it (health ``blocked``, an error line each interval) until an operator runs
  ``rorclient breaker accept`` (the next run applies the stopped changes, forced), ``breaker reset``, or
  ``sync --force`` with the daemon stopped.
* **Refused takeover** — a run whose answers hold live rows another source holds (two sources configured
  over the same establishments) is refused, not latched: health ``blocked`` with the count and the other
  source in ``last_error`` and ``last_run.takeovers``, an error line each interval (the run is asked
  again: it goes through once the rows are no longer the other source's), until an operator fixes the
  sources or runs ``sync --force`` with the daemon stopped.
* **Stop** — the first SIGTERM or SIGINT asks the running operation to stop at the next establishment
  boundary (each establishment is applied in one transaction: never half-applied); the daemon then
  exits 0. A second signal interrupts at once (the open transaction is rolled back).
* **One instance per store and source** — the daemon holds its source's sync lock in the store
  (:mod:`rorclient._lock`) for its lifetime. A second daemon of the same source and store waits in
  standby and takes over when the first stops or dies; ``rorclient pull``/``sync`` of that source
  meanwhile fail with exit code 9. Daemons of other sources sync into the same store in parallel.
* **Health** — after every run, ``health_file`` gets a JSON object (:class:`rorclient.health.Health`),
  with the client certificate's days left, re-checked (and warned about within 30 days) at every run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import random
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from pydantic import BaseModel, ConfigDict, Field

from rorclient._durations import format_duration, parse_duration
from rorclient._log_redaction import redact_text
from rorclient._logging import RUN_RECORD_FIELD, TextLogFormatter
from rorclient.config import Settings
from rorclient.errors import RorError
from rorclient.health import Health, HealthState, write_health
from rorclient.store.base import utcnow
from rorclient.sync.engine import Sync
from rorclient.sync.errors import SafetyBreakerError, SyncLockedError
from rorclient.sync.options import SyncOptions
from rorclient.sync.report import RunStatus, SyncReport, SyncStatus

if TYPE_CHECKING:
    from rorclient.metrics import DaemonMetrics

__all__ = ["Daemon", "DaemonOptions", "JsonLogFormatter", "configure_logging", "parse_duration", "run_daemon"]

_log = logging.getLogger("rorclient.daemon")
_POLL = 0.2  # seconds between two looks at the stop flag while waiting


class DaemonOptions(BaseModel):
    """Schedule and outputs of the daemon."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    interval: dt.timedelta = Field(default=dt.timedelta(minutes=15))
    """Time between the starts of two runs."""
    full_every: dt.timedelta | None = Field(default=dt.timedelta(days=7))
    """A full pull replaces a sync when the last one is older than this (``None``: never)."""
    jitter: float = Field(default=0.1, ge=0, le=0.5)
    """Each wait is ``interval`` × (1 ± a random share up to ``jitter``)."""
    retry_after: dt.timedelta = Field(default=dt.timedelta(minutes=1))
    """First wait after a failed run; it doubles with each failure, up to ``interval``."""
    standby_step: float = Field(default=5.0, gt=0)
    """Seconds a standby daemon waits for the store's lock before checking whether to stop."""
    health_file: Path | None = None
    max_runs: int | None = Field(default=None, ge=1)
    """Stop after this many runs (tests, one-shot containers); ``None``: run until stopped."""
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """Serve Prometheus metrics on this port (``GET /metrics``; needs ``rorclient[metrics]``); ``None``:
    off; 0: any free port."""
    metrics_address: str = "127.0.0.1"
    """The address the metrics endpoint listens on (``0.0.0.0``: every interface)."""


class Daemon:
    """The scheduling loop around a :class:`~rorclient.sync.Sync`. :meth:`stop` is thread-safe."""

    def __init__(
        self,
        sync: Sync,
        options: DaemonOptions | None = None,
        *,
        seed: int | None = None,
        metrics: DaemonMetrics | None = None,
    ) -> None:
        self.sync = sync
        self.options = options or DaemonOptions()
        self.metrics = metrics
        """Fed after every run and change of state (:mod:`rorclient.metrics`)."""
        self._observed_runs = 0
        self._observed_report: SyncReport | None = None
        self._stop_requested = False  # a plain flag: set from signal handlers, which must not take locks
        self._random = random.Random(seed)  # noqa: S311 - jitter, not security
        self._failures = 0
        self._runs = 0
        self._last_report: SyncReport | None = None
        self._last_error: str | None = None
        self._signals = 0
        self._held = False  # the source's breaker is latched: wait full intervals, apply nothing

    # ---- control -----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Finish (or cleanly interrupt) the current run and leave :meth:`run`; thread- and signal-safe."""
        self._stop_requested = True
        self.sync.request_stop()

    @property
    def stopping(self) -> bool:
        return self._stop_requested

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: first a graceful stop, then an immediate interruption (main thread only)."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            raise KeyboardInterrupt
        _log.warning("received %s: stopping after the establishment in flight", signal.Signals(signum).name)
        self.stop()

    # ---- loop --------------------------------------------------------------------------------------
    def run(self) -> int:
        """Run until stopped (or ``max_runs``); returns the process exit code (0)."""
        self._health("starting")
        standby_logged = False
        finished = False  # max_runs reached: the health file keeps the last run's state
        while not self.stopping:
            try:
                with self.sync.exclusive(wait=self.options.standby_step):
                    _log.info(
                        "daemon started for source %r (interval %s, full pull every %s)",
                        self.sync.source,
                        format_duration(self.options.interval),
                        format_duration(self.options.full_every) if self.options.full_every else "never",
                    )
                    finished = self._loop()
            except SyncLockedError:
                if not standby_logged:
                    _log.warning(
                        "another instance holds this source's sync lock in the store: "
                        "standing by until it stops"
                    )
                    standby_logged = True
                self._health("standby")
                continue
        if not finished:
            self._health("stopped")
        _log.info("daemon stopped")
        return 0

    def _loop(self) -> bool:
        """Run until stopped; ``True`` when ``max_runs`` ended it."""
        while not self.stopping:
            state = self._run_once()
            self._check_certificate()
            self._runs += 1
            if self.options.max_runs is not None and self._runs >= self.options.max_runs:
                self._health(state)
                self._stop_requested = True
                return True
            delay = self._next_delay()
            self._health(state, next_run=utcnow() + dt.timedelta(seconds=delay))
            self._sleep(delay)
        return False

    def _sleep(self, seconds: float) -> None:
        """Wait ``seconds`` or until a stop is requested (polled: signal handlers cannot notify)."""
        deadline = time.monotonic() + seconds
        while not self._stop_requested:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, _POLL))

    def _run_once(self) -> HealthState:
        latch = self.sync.breaker_latch()
        if latch is not None and latch.accepted:
            latch = None  # an operator accepted the stopped changes: this run goes through, forced
        self._held = latch is not None
        if latch is not None:
            # A human must look: retrying would apply the same bad answer (or commit a bit more of it each
            # time, as blocked multi-batch cycles once did). Wait a full interval, say so, apply nothing.
            self._last_error = (
                f"safety breaker latched since {latch.tripped_at.isoformat(timespec='seconds')} "
                f"({latch.operation} run {latch.run_id}): not applying source {self.sync.source!r} until "
                "`rorclient breaker accept` (apply the stopped changes), `rorclient sync --force` or "
                "`rorclient breaker reset`"
            )
            _log.error("%s", self._last_error, extra={"operation": "hold", "source": self.sync.source})
            return "blocked"
        operation = "pull" if self._pull_due() else "sync"
        closed_before = _closing_records()
        try:
            report = self.sync.pull() if operation == "pull" else self.sync.sync()
        except SafetyBreakerError as error:
            self._last_report, self._last_error = error.report, str(error)
            self._failures += 1
            # Latched, or a refused takeover: retrying sooner would only read the same answer again.
            self._held = True
            return "blocked"
        except RorError as error:
            self._last_error = f"{type(error).__name__}: {error}"
            self._failures += 1
            if _closing_records() == closed_before:  # else the run's own line said it: one line per error
                _log.error("%s failed: %s", operation, self._last_error, extra={"operation": operation})
            return "failing"
        except Exception as error:  # a bug must not kill a long-running daemon silently
            self._last_error = f"{type(error).__name__}: {error}"
            self._failures += 1
            _log.exception("%s failed unexpectedly", operation)
            return "failing"
        self._last_report = report
        if report.status is RunStatus.INTERRUPTED:
            return "stopped"
        self._failures, self._last_error = 0, None
        return "ok"

    def _check_certificate(self) -> None:
        """Say at every cycle, not only at start-up, when the client certificate must be renewed: a
        daemon runs for months, longer than the warning window (docs/daemon.md)."""
        try:
            status = self.sync.status()
        except RorError as error:
            _log.warning("cannot check the client certificate: %s", error)
            return
        certificate = status.certificate
        if certificate is None:
            return
        if certificate.expired:
            _log.error(
                "the client certificate %s expired %d days ago (%s UTC): order a new one",
                certificate.subject,
                -certificate.days_until_expiry,
                f"{certificate.not_after:%Y-%m-%d}",
            )
        elif certificate.expires_soon:
            _log.warning(
                "the client certificate %s expires in %d days (%s UTC): renew it with IGC-Santé now",
                certificate.subject,
                certificate.days_until_expiry,
                f"{certificate.not_after:%Y-%m-%d}",
            )

    def _pull_due(self) -> bool:
        state = self.sync.store.sync_state(self.sync.source)
        if state is None or state.watermark is None:
            return True
        every = self.options.full_every
        if every is None or every <= dt.timedelta():
            return False
        last = state.last_full_pull
        if last is None:
            return True
        last = last if last.tzinfo is not None else last.replace(tzinfo=dt.UTC)
        return utcnow() - last >= every

    def _next_delay(self) -> float:
        interval = self.options.interval.total_seconds()
        if self._failures and not self._held:
            backoff = self.options.retry_after.total_seconds() * 2 ** (self._failures - 1)
            return float(min(interval, backoff))
        spread = self.options.jitter * interval
        return max(0.0, interval + self._random.uniform(-spread, spread))

    def _health(self, state: HealthState, *, next_run: dt.datetime | None = None) -> None:
        path = self.options.health_file
        if path is None and self.metrics is None:
            return
        try:
            status = self.sync.status() if state != "standby" else None
        except RorError as error:
            self._observe(state, None)
            _log.error("cannot read the status of source %r: %s", self.sync.source, error)
            return
        self._observe(state, status)
        if path is None:
            return
        try:
            health = Health.build(
                state,
                status,
                source=self.sync.source,
                store=self.sync.store_url,
                last_run=self._last_report,
                last_error=self._last_error,
                failures=self._failures,
                next_run=next_run,
            )
            write_health(path, health)
        except (OSError, RorError) as error:
            _log.error("cannot write the health file %s: %s", path, error)

    def _observe(self, state: HealthState, status: SyncStatus | None) -> None:
        """Feed the metrics, with the run just finished when this follows one (:meth:`_health` is called
        once after each run)."""
        if self.metrics is None:
            return
        if self._runs > self._observed_runs:
            self._observed_runs = self._runs
            fresh = self._last_report if self._last_report is not self._observed_report else None
            self._observed_report = self._last_report
            operation = fresh.operation if fresh is not None else self._operation_without_report()
            self.metrics.run_finished(operation, state, fresh, failures=self._failures)
        self.metrics.observe(state, status)

    def _operation_without_report(self) -> str:
        """What a run that left no report (it raised, or did not start) was or would have been: a run
        that fails moves neither the watermark nor the last full pull, so the schedule still says."""
        try:
            return "pull" if self._pull_due() else "sync"
        except RorError:
            return "unknown"


class _CountClosingRecords(logging.Filter):
    """Counts, per thread, the records that close a run (the sync engine's summary or error, which
    carry ``run_id``); drops nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.counts = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        if hasattr(record, RUN_RECORD_FIELD):
            self.counts.value = getattr(self.counts, "value", 0) + 1
        return True


_CLOSING = _CountClosingRecords()
logging.getLogger("rorclient.sync").addFilter(_CLOSING)


def _closing_records() -> int:
    return int(getattr(_CLOSING.counts, "value", 0))


# --------------------------------------------------------------------------------------------------
# Entry point for the CLI
# --------------------------------------------------------------------------------------------------


def run_daemon(
    settings: Settings,
    options: DaemonOptions | None = None,
    *,
    source: str | None = None,
    sync_options: SyncOptions | None = None,
    install_signals: bool = True,
) -> int:
    """What ``rorclient daemon`` runs: build the :class:`Sync` from ``settings``, serve the metrics when
    ``options.metrics_port`` is set, run the loop until a signal, return the exit code."""
    options = options or DaemonOptions()
    with contextlib.ExitStack() as stack:
        sync = stack.enter_context(Sync.from_settings(settings, source=source, options=sync_options))
        metrics = None
        if options.metrics_port is not None:
            from rorclient.metrics import DaemonMetrics

            metrics = DaemonMetrics(sync.source)
            server = stack.enter_context(metrics.serve(options.metrics_port, options.metrics_address))
            _log.info("serving metrics on http://%s:%d/metrics", options.metrics_address, server.port)
        daemon = Daemon(sync, options, metrics=metrics)
        if install_signals:
            daemon.install_signal_handlers()
        return daemon.run()


# --------------------------------------------------------------------------------------------------
# Structured logs
# --------------------------------------------------------------------------------------------------

_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime", "taskName"}
)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC ISO 8601), ``level``, ``logger``, ``message``, the fields
    passed as ``extra=`` (``run_id``, ``operation``, ``counts``...), and ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = redact_text("".join(traceback.format_exception(*record.exc_info)).rstrip())
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(
    *, json_lines: bool = False, level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """Send rorclient's logs to ``stream`` (default stderr), as JSON lines or as text."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if json_lines:
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(TextLogFormatter())
    logger = logging.getLogger("rorclient")
    for existing in list(logger.handlers):
        logger.removeHandler(existing)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
