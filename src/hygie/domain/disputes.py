""" "I don't recognise this": a patient disputes an entry of their access history.

A dispute is a small case file routed to the data-protection officer (DPO) of the structure
whose agent made the access (the ``structure`` of the audit entry; ``_platform`` when the access
was made by no structure, e.g. the platform itself or a patient's app)::

    open ──start_review──▶ under_review ──close──▶ closed (legitimate | unauthorised | audit_error)

Only the patient the entry concerns may open one, once per entry; only a DPO of the structure it
is routed to may review and close it. Each transition returns a new :class:`Dispute` with its
``version`` bumped, so stores can update it optimistically (``WHERE version = previous``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from hygie.domain.access import Caller
from hygie.domain.audit import AuditRecord

__all__ = [
    "PLATFORM",
    "Dispute",
    "DisputeConflict",
    "DisputeError",
    "DisputeOutcome",
    "DisputeStatus",
    "close_dispute",
    "open_dispute",
    "start_review",
]

PLATFORM = "_platform"

DisputeStatus = Literal["open", "under_review", "closed"]
DisputeOutcome = Literal["legitimate", "unauthorised", "audit_error"]


class DisputeError(ValueError):
    """The transition is not allowed: wrong person, wrong structure, or wrong state."""


class DisputeConflict(DisputeError):
    """The entry is already disputed, or the case changed since it was read."""


@dataclass(frozen=True, slots=True)
class Dispute:
    id: str
    partition: str  # the disputed audit record: (partition, seq)
    seq: int
    patient: str
    structure: str  # the structure whose DPO handles it
    opened_us: int
    comment: str
    status: DisputeStatus = "open"
    reviewer: str | None = None
    outcome: DisputeOutcome | None = None
    resolution: str | None = None
    updated_us: int = 0
    version: int = 1


def _subject_patient(caller: Caller) -> str | None:
    if caller.kind != "patient" or not caller.subject:
        return None
    return caller.subject.removeprefix("Patient/")


def open_dispute(dispute_id: str, record: AuditRecord, caller: Caller, comment: str, now_us: int) -> Dispute:
    """The patient says "I don't recognise this" about ``record``: open a case for its DPO."""
    patient = record.entry.patient
    if patient is None or _subject_patient(caller) != patient:
        raise DisputeError("only the patient an access concerns may dispute it")
    return Dispute(
        id=dispute_id,
        partition=record.partition,
        seq=record.seq,
        patient=patient,
        structure=record.entry.structure or PLATFORM,
        opened_us=now_us,
        comment=comment.strip()[:2000],
        updated_us=now_us,
    )


def _require_dpo(dispute: Dispute, reviewer_structure: str) -> None:
    if reviewer_structure != dispute.structure:
        raise DisputeError(f"this case belongs to the DPO of {dispute.structure}")


def start_review(dispute: Dispute, reviewer: str, reviewer_structure: str, now_us: int) -> Dispute:
    """A DPO of the routed structure takes the case."""
    _require_dpo(dispute, reviewer_structure)
    if dispute.status != "open":
        raise DisputeError(f"a case {dispute.status.replace('_', ' ')} cannot be taken for review")
    return replace(
        dispute, status="under_review", reviewer=reviewer, updated_us=now_us, version=dispute.version + 1
    )


def close_dispute(
    dispute: Dispute,
    reviewer: str,
    reviewer_structure: str,
    outcome: DisputeOutcome,
    resolution: str,
    now_us: int,
) -> Dispute:
    """Close a case under review with its outcome and an explanation the patient will read."""
    _require_dpo(dispute, reviewer_structure)
    if dispute.status != "under_review":
        raise DisputeError("only a case under review can be closed")
    if not resolution.strip():
        raise DisputeError("closing a case needs an explanation for the patient")
    return replace(
        dispute,
        status="closed",
        reviewer=reviewer,
        outcome=outcome,
        resolution=resolution.strip(),
        updated_us=now_us,
        version=dispute.version + 1,
    )
