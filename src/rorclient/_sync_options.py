"""How the sync engine behaves: overlap margin, concurrency, safety breaker, time frame, files.

Public as :class:`rorclient.sync.SyncOptions`; kept here, importing nothing of rorclient, so that
:class:`rorclient.config.Settings` can hold the ``[sync]`` table."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rorclient._durations import parse_duration
from rorclient.errors import ConfigError

__all__ = ["RetryOptions", "SyncOptions"]


def _seconds(value: object) -> object:
    """``"30s"``, ``"2m"`` as the daemon's options take them; numbers stay seconds."""
    if isinstance(value, str) and value.strip():
        try:
            return parse_duration(value).total_seconds()
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    return value


class RetryOptions(BaseModel):
    """How a failed ROR call is repeated (the ``[sync.retry]`` table; :class:`rorclient.ror.RetryPolicy`
    in the client). Only retryable errors are repeated: connection failures, timeouts, cut bodies, HTTP
    429/502/503/504 and ``soap:Receiver`` faults; never a 4xx, a ``soap:Sender`` fault or bad data.
    Durations are seconds, or ``"30s"``, ``"2m"``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(default=4, ge=1)
    """Attempts in all, the first included (1: no retry)."""
    max_total: float = Field(default=120.0, ge=0)
    """Seconds from the first attempt after which no new attempt starts."""
    initial_wait: float = Field(default=0.5, ge=0)
    """Wait after the first failure; it doubles with each further failure..."""
    max_wait: float = Field(default=15.0, ge=0)
    """...up to this many seconds."""
    jitter: float = Field(default=0.5, ge=0)
    """Up to this many seconds of random wait added to each backoff."""
    max_retry_after: float = Field(default=60.0, ge=0)
    """A server's ``Retry-After`` is honoured up to this many seconds."""

    _durations = field_validator(
        "max_total", "initial_wait", "max_wait", "jitter", "max_retry_after", mode="before"
    )(_seconds)


class SyncOptions(BaseModel):
    """Knobs of :class:`~rorclient.sync.Sync`; every default is the documented behaviour (docs/sync.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    overlap: dt.timedelta = Field(default=dt.timedelta(minutes=5))
    """Notif asks for changes after ``watermark - overlap``: the margin covers server transactions that
    committed late and small clock differences. Re-reading an establishment twice is harmless."""
    concurrency: int = Field(default=8, ge=1, le=64)
    """Lecture calls in flight at once (the client's ``max_concurrency``, 16, bounds it). 8 is chosen from
    measurement (docs/performance.md): the client's CPU per establishment is the same at 4, 8 and 16,
    a cycle at 200 ms per call runs 1.8 times faster than at 4, and the ROR's tolerance of parallel
    calls is not documented; 16 is for large catch-up syncs."""
    retry: RetryOptions = Field(default_factory=RetryOptions)
    """How the client built from the source repeats a failed ROR call (``[sync.retry]``)."""
    readers: int | None = Field(default=None, ge=1, le=64)
    """Processes reading a downloaded extraction of 32 MB or more in parallel (default: 2, or 1 on a
    single core; about 40 MB each; 1: read in the syncing process). A process running other threads
    reads alone."""
    batch_size: int = Field(default=2000, ge=1)
    """Establishments fetched, planned and applied together; a cycle listing more runs in batches (the
    watermark still moves only once, at the end)."""
    breaker_share: float = Field(default=0.10, gt=0, le=1)
    """The safety breaker trips when a run would delete or close more than this share of the source's
    live entities."""
    breaker_floor: int = Field(default=50, ge=0)
    """...and more than this many entities (so that a small store is not blocked by one closure)."""
    unknown_codes: tuple[int | None, ...] = (404,)
    """Codes of an inline Lecture error (``careServicesResponse/error``) meaning "no such establishment or
    unit": the establishment is then tombstoned. Any other error makes it pending."""
    resolve_lost_units: bool = True
    """When a unit disappears from its establishment, ask the ROR (Lecture OI) whether it moved to an
    establishment the cycle did not read, before tombstoning it."""
    server_timezone: str = "Europe/Paris"
    """The time zone of the ROR's naive date-times (``"local"``: this machine's)."""
    data_dir: Path | None = None
    """Where extractions are downloaded (default: ``<user cache dir>/rorclient/extractions``)."""
    keep_extraction: bool = False
    """Keep the downloaded extraction file after a successful pull."""
    activity: tuple[str, ...] = ()
    """Notif filter: activity fields (TRE_R227 codes); empty = all."""
    patients: tuple[str, ...] = ()
    """Notif filter: supported publics (TRE_R239 codes); empty = all."""
    lock_wait: float = Field(default=0.0, ge=0)
    """Seconds a pull or sync waits for another process holding this source's sync lock in the store
    (0: fail at once)."""

    @field_validator("server_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value != "local":
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("overlap", mode="before")
    @classmethod
    def _short_duration(cls, value: object) -> object:
        """``"10m"``, ``"1h30m"`` as the daemon's options take them; ISO 8601 (``"PT10M"``), ``HH:MM:SS``
        and numbers of seconds go to pydantic."""
        if isinstance(value, str) and value.strip() and value.strip()[0].isdigit() and ":" not in value:
            try:
                return parse_duration(value)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("overlap")
    @classmethod
    def _non_negative(cls, value: dt.timedelta) -> dt.timedelta:
        if value < dt.timedelta():
            raise ValueError("overlap must not be negative")
        return value

    def zone(self) -> ZoneInfo | None:
        """The ROR's time zone (``None``: this machine's local time)."""
        return None if self.server_timezone == "local" else ZoneInfo(self.server_timezone)
