"""The daemon's health file: one JSON object, rewritten atomically after every run.

Monitoring reads it (a Nagios/Zabbix check, a Kubernetes exec probe, ``jq``); it never holds a secret.
``status`` is ``ok`` (the last run succeeded), ``degraded`` (it succeeded with pending establishments,
or the certificate expires within 30 days), ``failing`` (the last run failed), ``blocked`` (the safety
breaker stopped a run and stays latched: the daemon applies nothing until a human looks; or the last run
was refused because it would take over rows another source holds: ``last_run.takeovers``, not latched,
asked again every interval), ``standby``
(another instance holds the store),
``starting`` or ``stopped``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from rorclient._private_files import private_directory
from rorclient.store.base import BreakerLatch, utcnow
from rorclient.sync.report import CertificateStatus, SyncReport, SyncStatus
from rorclient.tls import EXPIRY_WARNING_DAYS

__all__ = ["Health", "HealthState", "read_health"]

HealthState = Literal["starting", "ok", "degraded", "failing", "blocked", "standby", "stopped"]

#: A certificate expiring within this many days makes the health ``degraded`` (the one threshold,
#: :data:`rorclient.tls.EXPIRY_WARNING_DAYS`).
CERTIFICATE_WARNING_DAYS = EXPIRY_WARNING_DAYS


class Health(BaseModel):
    """The content of the health file."""

    model_config = ConfigDict(frozen=True)

    status: HealthState
    pid: int
    source: str
    store: str
    """Store URL, password redacted."""
    updated_at: dt.datetime
    last_success: dt.datetime | None = None
    lag_seconds: float | None = None
    """Seconds since the data was last brought up to date."""
    watermark: dt.datetime | None = None
    pending: int = 0
    consecutive_failures: int = 0
    last_run: SyncReport | None = None
    last_error: str | None = None
    next_run: dt.datetime | None = None
    certificate: CertificateStatus | None = None
    breaker: BreakerLatch | None = None
    """The source's latched safety breaker: while set, the daemon applies nothing (status ``blocked``)."""

    @classmethod
    def build(
        cls,
        state: HealthState,
        status: SyncStatus | None,
        *,
        source: str,
        store: str,
        last_run: SyncReport | None = None,
        last_error: str | None = None,
        failures: int = 0,
        next_run: dt.datetime | None = None,
    ) -> Health:
        """The health of a daemon in ``state`` (``ok`` is lowered to ``degraded`` when warranted)."""
        certificate = status.certificate if status is not None else None
        pending = len(status.pending) if status is not None else 0
        if state == "ok" and (
            pending or (certificate is not None and (certificate.expires_soon or certificate.expired))
        ):
            state = "degraded"
        return cls(
            status=state,
            pid=os.getpid(),
            source=source,
            store=store,
            updated_at=utcnow(),
            last_success=status.last_success if status else None,
            lag_seconds=status.lag_seconds if status else None,
            watermark=status.watermark if status else None,
            pending=pending,
            consecutive_failures=failures,
            last_run=last_run,
            last_error=last_error,
            next_run=next_run,
            certificate=certificate,
            breaker=status.breaker if status is not None else None,
        )


def write_health(path: Path, health: Health) -> None:
    """Write ``health`` to ``path`` atomically: readers see the previous file or the new one, whole.
    The file is ``0600`` (a monitor reading it runs as the daemon's user or is given access by ACL)."""
    private_directory(path.parent)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # 0600, O_EXCL
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(health.model_dump_json(indent=2))
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_health(path: Path) -> Health:
    """Read a health file (for checks and tests)."""
    return Health.model_validate(json.loads(path.read_text(encoding="utf-8")))
