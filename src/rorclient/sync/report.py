"""What a pull, a sync cycle or a refresh did (:class:`SyncReport`), and where a source stands
(:class:`SyncStatus`)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rorclient.store.base import BreakerLatch, ChangeKind, PendingEstablishment, RunReport

__all__ = [
    "BreakerVerdict",
    "CertificateStatus",
    "FailedEstablishment",
    "Operation",
    "RunStatus",
    "SyncReport",
    "SyncStatus",
]

Operation = Literal["pull", "sync", "refresh", "load"]
"""``load``: a pull of an ad-hoc file source (``rorclient load``, :func:`rorclient.loader.load_files`)."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunStatus(StrEnum):
    SUCCESS = "success"
    """Everything listed was applied."""
    PARTIAL = "partial"
    """Applied, but some establishments are pending (they are retried first next cycle)."""
    FAILED = "failed"
    """Nothing (more) could be done: the error says why; the watermark did not move."""
    INTERRUPTED = "interrupted"
    """Stopped on request (signal, :meth:`Sync.request_stop`); the watermark did not move."""
    BLOCKED = "blocked"
    """The safety breaker stopped the run before anything was committed."""
    DRY_RUN = "dry_run"
    """Planned only; nothing was committed."""


def empty_counts() -> dict[str, int]:
    """``{"created": 0, "updated": 0, ...}``: one entry per change kind."""
    return {kind.value: 0 for kind in ChangeKind}


class BreakerVerdict(_Model):
    """The safety breaker's arithmetic for one run."""

    deletions: int
    closures: int
    live: int
    """Live entities of the source before the run."""
    limit: int
    """``max(ceil(share × live), floor)``: more deletions + closures than this trips the breaker."""
    tripped: bool
    forced: bool = False
    latched: bool = False
    """The source's breaker is latched after this run: nothing more is applied from it until a forced run
    or ``rorclient breaker reset``."""


class FailedEstablishment(_Model):
    """An establishment that could not be applied this run; it is in the pending list."""

    establishment_id: str
    error: str
    retryable: bool


class SyncReport(_Model):
    """The outcome of one :meth:`~rorclient.sync.Sync.pull`, ``sync`` or ``refresh``.

    ``counts`` has one entry per change kind (``created``, ``updated``, ``closed``, ``reopened``,
    ``moved``, ``deleted``): the changes committed, or planned for a dry run or a blocked run.
    """

    run_id: str
    operation: Operation
    source: str
    status: RunStatus
    started: dt.datetime
    finished: dt.datetime
    counts: dict[str, int] = Field(default_factory=empty_counts)
    entities: int = 0
    """Entities read (the extraction's for a pull, the Lecture answers' for a sync)."""
    bytes: int = 0
    """Bytes downloaded or read (pull, load; the web-service client does not report Lecture answer
    sizes)."""
    readers: int | None = None
    """Most reader processes used for one file of a pull or load (1: read in the loading process)."""
    listed: int = 0
    """Establishments Notif listed."""
    retried: int = 0
    """Pending establishments retried (read before the listed ones)."""
    applied: int = 0
    """Establishments whose subtree was replaced (changed or not)."""
    unchanged: int = 0
    """...of which nothing changed."""
    removed: int = 0
    """Establishments the ROR no longer knows, tombstoned."""
    extra_reads: int = 0
    """Establishments read because a unit moved to them (Lecture OI), beyond those listed."""
    stale: int = 0
    """Establishments whose answer was older than the stored rows: not applied, pending (in ``failed``)."""
    failed: tuple[FailedEstablishment, ...] = ()
    pending: int = 0
    """Establishments in the source's pending list after the run."""
    date_ref: dt.datetime | None = None
    """The ``dateRef`` sent to Notif (the ROR's time frame)."""
    watermark_before: dt.datetime | None = None
    watermark: dt.datetime | None = None
    """The source's watermark after the run (the ROR's time frame, naive)."""
    breaker: BreakerVerdict | None = None
    takeovers: dict[str, int] = Field(default_factory=dict)
    """Live rows held by other sources that the run (pull, load, sync or refresh) took over (or, dry run
    or blocked, would take over), per former source; legal entities and professionals, which regional
    sources share, are not counted."""
    error: str | None = None

    @property
    def seconds(self) -> float:
        return (self.finished - self.started).total_seconds()

    @property
    def total_changes(self) -> int:
        return sum(self.counts.values())

    @property
    def ok(self) -> bool:
        """Whether the run did its job (possibly leaving some establishments pending)."""
        return self.status in (RunStatus.SUCCESS, RunStatus.PARTIAL, RunStatus.DRY_RUN)

    def summary(self) -> str:
        """One line for humans: ``sync idf: success in 1.2 s, 12 listed, 3 created, 1 moved``."""
        changes = ", ".join(f"{number} {kind}" for kind, number in self.counts.items() if number)
        parts = [f"{self.operation} {self.source}: {self.status.value} in {self.seconds:.1f} s"]
        if self.operation == "sync":
            parts.append(f"{self.listed} listed")
        if self.retried:
            parts.append(f"{self.retried} retried")
        if self.operation in ("pull", "load"):
            size = f", {self.bytes / 1e6:.1f} MB" if self.bytes else ""  # a stream of entities has no size
            parts.append(f"{self.entities} entities{size}")
        parts.append(changes or "no change")
        if self.takeovers:
            taken = ", ".join(f"{count} from {source!r}" for source, count in sorted(self.takeovers.items()))
            parts.append(f"taking over {taken}")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.pending:
            parts.append(f"{self.pending} pending")
        if self.breaker is not None and self.breaker.latched and self.status is not RunStatus.BLOCKED:
            parts.append("the source's safety breaker stays latched (`rorclient breaker show`)")
        if self.error:
            parts.append(self.error)
        return ", ".join(parts)

    def to_run_report(self) -> RunReport:
        """The store's record of this run (see :meth:`Store.runs`)."""
        return RunReport(
            run_id=self.run_id,
            operation=self.operation,
            source=self.source,
            started=self.started,
            finished=self.finished,
            status=self.status.value,
            counts=dict(self.counts),
            entities=self.entities,
            pending=self.pending,
            bytes=self.bytes,
            error=self.error,
        )


class CertificateStatus(_Model):
    """The client certificate's identity and expiry (never key material)."""

    subject: str
    not_after: dt.datetime
    days_until_expiry: int
    expires_soon: bool
    expired: bool
    not_yet_valid: bool = False
    """Its validity has not started: the client refuses to use it (a clock or a renewal issue)."""


class SyncStatus(_Model):
    """Where a source stands in a store (``rorclient status``, the daemon's health file)."""

    source: str
    store: str
    """The store URL, any password replaced by ``***``."""
    initialized: bool
    """Whether the source was ever pulled (a sync needs a watermark)."""
    watermark: dt.datetime | None = None
    last_success: dt.datetime | None = None
    """When the data was last brought up to date (end of the last successful pull or sync), UTC."""
    last_full_pull: dt.datetime | None = None
    lag_seconds: float | None = None
    """Seconds since ``last_success``."""
    entities: int = 0
    """Live entities of the source."""
    pending: tuple[PendingEstablishment, ...] = ()
    last_run: RunReport | None = None
    certificate: CertificateStatus | None = None
    breaker: BreakerLatch | None = None
    """The source's latched safety breaker, if any: while it holds, the daemon applies nothing from the
    source (``sync --force`` or ``rorclient breaker reset`` releases it)."""
