"""The plain request and response objects of the FHIR layer (no web framework here).

``web/fhir_api.py`` builds a :class:`FhirRequest` from HTTP and turns a :class:`FhirResponse`
back into HTTP; batch and transaction Bundles build the same requests from their entries, so
every interaction has exactly one implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hygie.domain.access import Caller, Decision
from hygie.domain.policy import Relation

__all__ = ["FhirRequest", "FhirResponse", "PendingAudit"]


@dataclass(slots=True)
class PendingAudit:
    """The access decisions of one request (and of its Bundle entries) not yet in the trail."""

    decisions: list[Decision] = field(default_factory=list)
    written: int = 0

    def take(self) -> list[Decision]:
        pending = self.decisions[self.written :]
        self.written = len(self.decisions)
        return pending


@dataclass(slots=True)
class FhirRequest:
    method: str  # GET POST PUT PATCH DELETE HEAD
    path: str  # relative to the FHIR base, without leading slash: "Patient/1/_history/2"
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes | None = None
    caller: Caller = field(default_factory=Caller.anonymous)
    # parsed body, when the caller already has it (Bundle entries)
    resource: dict[str, Any] | None = None
    request_id: str | None = None
    # shared by a Bundle's entries: the decisions to audit, the relations read for the caller
    audit: PendingAudit = field(default_factory=PendingAudit)
    relations: dict[str, list[Relation]] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(slots=True)
class FhirResponse:
    status: int
    body: dict[str, Any] | bytes | None = None  # bytes: already-serialised JSON
    headers: dict[str, str] = field(default_factory=dict)
    # the resource after the interaction (for Bundle responses), when there is one
    resource_bytes: bytes | None = None
    # set when the body is not FHIR JSON (a Binary read in its native form)
    media_type: str | None = None
