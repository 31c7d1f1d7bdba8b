"""Break-glass: emergency access by a professional without a care relationship.

A professional states a reason (from :data:`REASONS`) and a justification in their own words;
the access opens for at most four hours (``MAX_HOURS``), unless the patient refused emergency
access. Opening it notifies the patient and the legal representatives who run their space, as
they chose (through the outbox; the caller says who they are: ``notify``), lands in the review queue of the
professional's structure, and every access under it is audited as ``BTG`` with high severity
(``domain/audit.py``). The open accesses of a professional feed
:attr:`hygie.domain.policy.Principal.break_glass`.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from hygie.domain.ens.notifications import Notice, enqueue
from hygie.domain.outbox import Outbox
from hygie.ports import KeyValueStore

__all__ = ["MAX_HOURS", "REASONS", "BreakGlass", "BreakGlassRefused", "BreakGlassService"]

MAX_HOURS = 4
_HOUR_US = 3600 * 1_000_000
_KIND = "break_glass"
_REVIEW = "break_glass_review"

# reason codes (access mode TRE_R248 bris_de_glace, with the circumstance stated)
REASONS: dict[str, str] = {
    "URGENCE_VITALE": "Urgence vitale",
    "PATIENT_INCONSCIENT": "Patient hors d'état d'exprimer sa volonté",
    "REGULATION": "Régulation médicale (centre 15)",
    "CONTINUITE_SOINS": "Continuité des soins sans médecin joignable",
}


class BreakGlassRefused(Exception):
    """The emergency access cannot open; ``message`` is shown to the professional (French)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True, slots=True)
class BreakGlass:
    id: str
    practitioner: str  # Practitioner/…
    organization: str | None
    patient: str  # patient id
    reason: str
    justification: str
    opened_us: int
    expires_us: int
    reviewed: bool = False
    review_outcome: str | None = None

    def live(self, now_us: int) -> bool:
        return self.expires_us > now_us


class BreakGlassService:
    def __init__(self, kv: KeyValueStore, outbox: Outbox, clock: Callable[[], int]) -> None:
        self.kv = kv
        self.outbox = outbox
        self.clock = clock

    async def open(
        self,
        *,
        practitioner: str,
        organization: str | None,
        patient: str,
        reason: str,
        justification: str,
        hours: float = MAX_HOURS,
        emergency_refused: bool,
        notify: Callable[[BreakGlass], Awaitable[Sequence[Notice]]] | None = None,
    ) -> BreakGlass:
        """Open an emergency access; refuses a bad reason, an empty justification, a refusal.

        ``notify`` gives, once the access is open, the notices that tell it — to the patient and
        the legal representatives who run their space (``domain/ens/notifications.py``, event
        ``emergency``: no reason, no justification, nothing about health) — and they go to the
        outbox, de-duplicated per access and destination."""
        if reason not in REASONS:
            raise BreakGlassRefused("Choisissez le motif de l'accès en urgence dans la liste.", "reason")
        if len(justification.strip()) < 10:
            raise BreakGlassRefused(
                "Expliquez en une phrase pourquoi cet accès est nécessaire (10 caractères au moins).",
                "justification",
            )
        if not 0 < hours <= MAX_HOURS:
            raise BreakGlassRefused(
                f"La durée d'un accès en urgence est de {MAX_HOURS} heures au plus.", "duration"
            )
        if emergency_refused:
            raise BreakGlassRefused(
                "Ce patient a refusé l'accès à son dossier en situation d'urgence.", "refused-by-patient"
            )
        now = self.clock()
        grant = BreakGlass(
            id=secrets.token_urlsafe(12),
            practitioner=practitioner,
            organization=organization,
            patient=patient,
            reason=reason,
            justification=justification.strip(),
            opened_us=now,
            expires_us=now + int(hours * _HOUR_US),
        )
        record = asdict(grant)
        await self.kv.put(_KIND, f"{practitioner}|{patient}|{grant.id}", record, expires_us=grant.expires_us)
        await self.kv.put(_REVIEW, f"{organization or '_'}|{grant.id}", record)
        if notify is not None:
            await enqueue(self.outbox, await notify(grant))
        return grant

    async def open_for(self, practitioner: str) -> frozenset[str]:
        """Patients for whom ``practitioner`` has an open, unexpired emergency access."""
        now = self.clock()
        prefix = f"{practitioner}|"
        return frozenset(
            str(v["patient"])
            for k, v in await self.kv.list(_KIND)
            if k.startswith(prefix) and int(v["expires_us"]) > now
        )

    async def review_queue(self, organization: str | None) -> list[BreakGlass]:
        prefix = f"{organization or '_'}|"
        items = [_from(v) for k, v in await self.kv.list(_REVIEW) if k.startswith(prefix)]
        return sorted((i for i in items if not i.reviewed), key=lambda i: i.opened_us)

    async def review(self, organization: str | None, grant_id: str, outcome: str) -> BreakGlass:
        key = f"{organization or '_'}|{grant_id}"
        record = await self.kv.get(_REVIEW, key)
        if record is None:
            raise BreakGlassRefused(
                "Cet accès en urgence n'est pas dans la file de votre structure.", "unknown"
            )
        if outcome not in ("justifie", "injustifie"):
            raise BreakGlassRefused("Conclusion attendue : justifié ou injustifié.", "outcome")
        record = {**record, "reviewed": True, "review_outcome": outcome}
        await self.kv.put(_REVIEW, key, record)
        return _from(record)


def _from(record: dict[str, Any]) -> BreakGlass:
    return BreakGlass(**record)
