"""Break-glass: reasons, justification, four hours at most, the patient's refusal, notification,
the structure's review queue, expiry."""

from __future__ import annotations

import pytest

from hygie.domain.break_glass import MAX_HOURS, BreakGlass, BreakGlassRefused, BreakGlassService
from hygie.domain.ens.notifications import Notice, Recipient, notices
from hygie.domain.outbox import Outbox
from hygie.stores.kv import MemoryKeyValueStore

pytestmark = pytest.mark.anyio


class Clock:
    now = 1_800_000_000_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(clock: Clock) -> tuple[BreakGlassService, Outbox]:
    kv = MemoryKeyValueStore(clock)
    outbox = Outbox(kv, clock)
    return BreakGlassService(kv, outbox, clock), outbox


async def _tell(grant: BreakGlass) -> list[Notice]:
    return notices("emergency", grant.id, [Recipient("email", "claire@example.fr", "self")], base_url=None)


def args(**extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "practitioner": "Practitioner/cardio",
        "organization": "Organization/chu",
        "patient": "claire",
        "reason": "PATIENT_INCONSCIENT",
        "justification": "Patiente inconsciente aux urgences, antécédents ?",
        "emergency_refused": False,
        "notify": _tell,
    }
    base.update(extra)
    return base


async def test_open_notifies_queues_and_expires(
    service: tuple[BreakGlassService, Outbox], clock: Clock
) -> None:
    bg, outbox = service
    grant = await bg.open(**args())  # type: ignore[arg-type]
    assert grant.expires_us - grant.opened_us == MAX_HOURS * 3600 * 1_000_000
    assert await bg.open_for("Practitioner/cardio") == frozenset({"claire"})
    pending = await outbox.pending()
    assert len(pending) == 1
    assert "urgence" in pending[0].subject
    # the notice says nothing of why: the reason is the professional's, and may be about health
    assert "inconscient" not in pending[0].body.lower()
    queue = await bg.review_queue("Organization/chu")
    assert [g.id for g in queue] == [grant.id]
    await bg.review("Organization/chu", grant.id, "justifie")
    assert await bg.review_queue("Organization/chu") == []
    clock.now += MAX_HOURS * 3600 * 1_000_000 + 1
    assert await bg.open_for("Practitioner/cardio") == frozenset()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"reason": "CURIOSITE"}, "reason"),
        ({"justification": "  "}, "justification"),
        ({"hours": 5}, "duration"),
        ({"emergency_refused": True}, "refused-by-patient"),
    ],
)
async def test_refusals_are_explained(
    service: tuple[BreakGlassService, Outbox], change: dict[str, object], code: str
) -> None:
    bg, outbox = service
    with pytest.raises(BreakGlassRefused) as caught:
        await bg.open(**args(**change))  # type: ignore[arg-type]
    assert caught.value.code == code
    assert caught.value.message  # a French sentence for the professional
    assert await outbox.pending() == []
    assert await bg.open_for("Practitioner/cardio") == frozenset()
