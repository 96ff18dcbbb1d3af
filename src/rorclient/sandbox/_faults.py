"""Fault injection: rules that make the next requests of an operation fail in a chosen way."""

from __future__ import annotations

import random
import threading
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from rorclient.errors import ConfigError

__all__ = ["FAULT_KINDS", "OPERATIONS", "FaultInjector", "FaultKind", "FaultRule", "Operation"]

Operation = Literal[
    "notif",
    "lecture",
    "extraction",
    "fhir_token",
    "fhir_search",
    "fhir_read",
    "fhir_export",
    "fhir_status",
    "fhir_download",
    "*",
]
FaultKind = Literal[
    "latency",
    "503",
    "500",
    "reset",
    "truncate",
    "trickle",
    "soap_fault",
    "content_type",
    "429",
    "outcome",
    "expire_token",
]

OPERATIONS: tuple[str, ...] = get_args(Operation)
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)


class FaultRule(BaseModel):
    """One injection rule.

    ``count`` limits the rule to the next ``count`` matching requests (then it is spent); ``rate`` makes
    it fire with that probability (seeded, so a run is reproducible). With both, each of the next
    ``count`` firings happens with probability ``rate``; with neither, every matching request fails.

    Kinds: ``latency`` (wait ``delay`` seconds, then answer normally), ``503`` (with ``Retry-After:
    retry_after``), ``500`` (plain-text error page), ``reset`` (half the body, then a TCP reset),
    ``truncate`` (``Content-Length`` announces the whole body, half is sent, then the connection closes),
    ``trickle`` (the body in 16 pieces, ``delay`` seconds apart), ``soap_fault`` (a SOAP 1.2
    ``soap:Receiver`` fault with a ``ror:erreur`` detail), ``content_type`` (the right body under a
    ``text/html`` Content-Type), ``429`` (with ``Retry-After: retry_after``).

    FHIR operations (``fhir_*``) also take ``outcome`` (HTTP 500 with a transient OperationOutcome;
    ``soap_fault`` answers the same there) and ``expire_token`` (the request's token expires now: a
    download is cut halfway, any other call answers 401).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    operation: Operation = "*"
    kind: FaultKind
    rate: float | None = Field(default=None, ge=0, le=1)
    count: int | None = Field(default=None, ge=1)
    delay: float = Field(default=0.05, ge=0, le=600)
    retry_after: int = Field(default=1, ge=0)

    def matches(self, operation: str) -> bool:
        return self.operation in ("*", operation)


class FaultInjector:
    """The active fault rules, consulted once per request; thread-safe."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(f"rorclient-sandbox-faults:{seed}")  # noqa: S311 - reproducible, not secret
        self._rules: list[FaultRule] = []
        self._remaining: dict[int, int] = {}
        self._next_id = 1
        self._fired: dict[str, int] = {}

    def add(
        self,
        operation: str = "*",
        kind: str = "503",
        *,
        rate: float | None = None,
        count: int | None = None,
        delay: float = 0.05,
        retry_after: int = 1,
    ) -> int:
        """Add a rule and return its id (for :meth:`remove`); bad values raise ConfigError."""
        if operation not in OPERATIONS:
            raise ConfigError(f"unknown operation {operation!r}: expected one of {', '.join(OPERATIONS)}")
        if kind not in FAULT_KINDS:
            raise ConfigError(f"unknown fault kind {kind!r}: expected one of {', '.join(FAULT_KINDS)}")
        with self._lock:
            try:
                rule = FaultRule.model_validate(
                    {
                        "id": self._next_id,
                        "operation": operation,
                        "kind": kind,
                        "rate": rate,
                        "count": count,
                        "delay": delay,
                        "retry_after": retry_after,
                    }
                )
            except ValueError as exc:
                raise ConfigError(f"invalid fault rule: {exc}") from None
            self._next_id += 1
            self._rules.append(rule)
            if count is not None:
                self._remaining[rule.id] = count
            return rule.id

    def remove(self, rule_id: int) -> bool:
        """Drop one rule; ``False`` if it was not active (unknown or spent)."""
        with self._lock:
            before = len(self._rules)
            self._rules = [rule for rule in self._rules if rule.id != rule_id]
            self._remaining.pop(rule_id, None)
            return len(self._rules) != before

    def clear(self) -> None:
        """Drop every rule."""
        with self._lock:
            self._rules.clear()
            self._remaining.clear()

    def rules(self) -> list[FaultRule]:
        """The active rules, oldest first."""
        with self._lock:
            return list(self._rules)

    def fired(self) -> dict[str, int]:
        """How many faults of each kind were injected so far."""
        with self._lock:
            return dict(self._fired)

    def pick(self, operation: str) -> FaultRule | None:
        """The fault to inject into this request of ``operation``, if any (the first rule that fires)."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(operation):
                    continue
                if rule.rate is not None and self._rng.random() >= rule.rate:
                    continue
                if rule.id in self._remaining:
                    self._remaining[rule.id] -= 1
                    if self._remaining[rule.id] <= 0:
                        del self._remaining[rule.id]
                        self._rules.remove(rule)
                self._fired[rule.kind] = self._fired.get(rule.kind, 0) + 1
                return rule
            return None
