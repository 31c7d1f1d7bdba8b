"""The in-memory audit log: the unit-test twin of ``stores/audit_sql.py``.

Same chains, heads, checkpoints and disputes, held in dicts. ``append`` writes at once: the
memory resource store has no hook to tie the audit to its commit, so a write that rolls back
keeps its audit record here (the SQL logs roll it back with the write). Nothing is durable.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

from hygie.domain.audit import (
    AuditEntry,
    AuditPage,
    AuditRecord,
    AuditSigner,
    ChainHead,
    Checkpoint,
    seal_many,
)
from hygie.domain.disputes import Dispute, DisputeConflict, DisputeStatus
from hygie.stores.audit_sql import decode_cursor, page_of

__all__ = ["MemoryAuditLog"]


class MemoryAuditLog:
    """AuditLog held in memory (tests and ``sqlite://`` in-memory runtimes)."""

    def __init__(self) -> None:
        self.chains: dict[str, list[AuditRecord]] = {}
        self.head_of: dict[str, ChainHead] = {}
        self.signed: dict[tuple[str, int], Checkpoint] = {}
        self.disputes: dict[str, Dispute] = {}
        self._lock = asyncio.Lock()

    def _append(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        records = seal_many(self.head_of, entries)
        for record in records:
            self.chains.setdefault(record.partition, []).append(record)
            self.head_of[record.partition] = ChainHead(record.partition, record.seq, record.hash)
        return records

    async def append(self, tx: object, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        return self._append(entries)

    async def append_now(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        async with self._lock:
            return self._append(entries)

    async def get(self, partition: str, seq: int) -> AuditRecord | None:
        chain = self.chains.get(partition, [])
        return chain[seq - 1] if 0 < seq <= len(chain) else None

    async def list_for_patient(
        self,
        patient_id: str,
        *,
        since_us: int | None = None,
        count: int = 50,
        cursor: str | None = None,
        exclude_agents: Sequence[str] = (),
        exclude_roles: Sequence[str] = (),
    ) -> AuditPage:
        chain = self.chains.get(patient_id.removeprefix("Patient/"), [])
        before = decode_cursor(cursor)
        end = len(chain) if before is None else bisect.bisect_left([r.seq for r in chain], before)
        out: list[AuditRecord] = []
        for record in reversed(chain[:end]):
            if (since_us is None or record.entry.recorded_us >= since_us) and (
                record.entry.agent not in exclude_agents and (record.entry.role or "") not in exclude_roles
            ):
                out.append(record)
                if len(out) > count:
                    break
        return page_of(out, count)

    async def checkpoint(self, signer: AuditSigner, now_us: int) -> list[Checkpoint]:
        last: dict[str, int] = {}
        for partition, seq in self.signed:
            last[partition] = max(seq, last.get(partition, 0))
        out = []
        for partition in sorted(self.head_of):
            head = self.head_of[partition]
            if head.seq > last.get(partition, 0):
                cp = signer.sign(head, now_us)
                self.signed[(partition, head.seq)] = cp
                out.append(cp)
        return out

    async def iter_all(self) -> AsyncIterator[AuditRecord]:
        for partition in sorted(self.chains):
            for record in list(self.chains[partition]):
                yield record

    async def checkpoints(self) -> list[Checkpoint]:
        return [self.signed[k] for k in sorted(self.signed)]

    async def heads(self) -> dict[str, ChainHead]:
        return dict(self.head_of)

    async def save_dispute(self, dispute: Dispute) -> None:
        current = self.disputes.get(dispute.id)
        if dispute.version == 1:
            taken = any(
                (d.partition, d.seq) == (dispute.partition, dispute.seq) for d in self.disputes.values()
            )
            if current is not None or taken:
                raise DisputeConflict("this entry is already disputed")
        elif current is None or current.version != dispute.version - 1:
            raise DisputeConflict(f"case {dispute.id} changed since it was read")
        self.disputes[dispute.id] = replace(dispute)

    async def get_dispute(self, dispute_id: str) -> Dispute | None:
        return self.disputes.get(dispute_id)

    async def list_disputes(
        self, *, structure: str | None = None, patient: str | None = None, status: DisputeStatus | None = None
    ) -> list[Dispute]:
        return sorted(
            (
                d
                for d in self.disputes.values()
                if (structure is None or d.structure == structure)
                and (patient is None or d.patient == patient)
                and (status is None or d.status == status)
            ),
            key=lambda d: (d.opened_us, d.id),
        )

    async def close(self) -> None:
        return None
