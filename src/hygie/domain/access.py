"""The one door to health data: every interaction asks :func:`AccessPolicy.decide` first.

Every FHIR interaction (read, vread, search with its includes, history, each entry of a batch or
transaction, ``$everything``, exports, portal pages) builds an :class:`AccessRequest` and asks the
policy. The decision, granted or refused, is handed to the :class:`DecisionRecorder` — the audit
trail of the trust core plugs in there.

The foundation policy grants everything and records it; the rules (patients, professionals,
consents, break-glass, SMART scopes) belong to the trust-core work and land here, in one place.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = [
    "AccessPolicy",
    "AccessRequest",
    "AllowAllPolicy",
    "Caller",
    "Decision",
    "DecisionRecorder",
    "LoggingRecorder",
]

Interaction = Literal[
    "read",
    "vread",
    "search",
    "history",
    "create",
    "update",
    "patch",
    "delete",
    "transaction",
    "batch",
    "operation",
    "capabilities",
]

log = logging.getLogger("hygie.access")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: resolved from a token by ``auth/`` (anonymous until the trust core)."""

    kind: Literal["anonymous", "patient", "practitioner", "system", "operator"]
    subject: str | None = None
    scopes: frozenset[str] = frozenset()
    client_id: str | None = None

    @classmethod
    def anonymous(cls) -> Caller:
        return cls("anonymous")

    @classmethod
    def operator(cls, name: str = "cli") -> Caller:
        """A local operator (``hygie import``, ``hygie demo``): trusted, still recorded."""
        return cls("operator", subject=name)


@dataclass(frozen=True, slots=True)
class AccessRequest:
    caller: Caller
    interaction: Interaction
    resource_type: str | None = None
    resource_id: str | None = None
    patient: str | None = None  # the patient compartment concerned, when known
    detail: str | None = None  # search string, operation name…


@dataclass(frozen=True, slots=True)
class Decision:
    request: AccessRequest
    allowed: bool
    reason: str


class DecisionRecorder(Protocol):
    def record(self, decision: Decision) -> None: ...


@dataclass
class LoggingRecorder:
    """Keeps the last decisions in memory and logs them (the audit trail replaces it)."""

    keep: int = 1000
    recent: deque[Decision] = field(default_factory=deque)
    total: int = 0

    def record(self, decision: Decision) -> None:
        self.total += 1
        self.recent.append(decision)
        if len(self.recent) > self.keep:
            self.recent.popleft()
        if log.isEnabledFor(logging.DEBUG):
            req = decision.request
            log.debug(
                "access %s %s %s/%s by %s:%s -> %s (%s)",
                req.interaction,
                req.detail or "",
                req.resource_type,
                req.resource_id,
                req.caller.kind,
                req.caller.subject,
                "granted" if decision.allowed else "refused",
                decision.reason,
            )


class AccessPolicy(Protocol):
    def decide(self, request: AccessRequest) -> Decision: ...


@dataclass
class AllowAllPolicy:
    """The foundation's policy: every request is allowed, and every decision is recorded."""

    recorder: DecisionRecorder = field(default_factory=LoggingRecorder)

    def decide(self, request: AccessRequest) -> Decision:
        decision = Decision(request, True, "foundation policy: no rules yet")
        self.recorder.record(decision)
        return decision
