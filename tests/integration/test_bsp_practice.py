"""The BSP practice view's numbers ("Mon activité"), on every store: what the professional did,
counted under the access policy — a record that is not open to them counts for nothing, someone
else's work is not theirs, and the months fall where Paris time puts them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hygie.domain.access import Caller
from hygie.domain.bsp.practice import MONTHLY, PARIS, last_months
from hygie.domain.ens.prescriptions import RENEWAL_CODE
from hygie.domain.policy import Principal
from hygie.fhir.interactions import FhirService
from hygie.fhir.request import FhirRequest
from hygie.fhir.router import route
from hygie.web.bsp.practice import gather
from hygie.web.portal.door import Door

pytestmark = pytest.mark.anyio

TRE_A03 = "urn:oid:1.2.250.1.213.1.1.4.1"


async def _create(service: FhirService, resource: dict[str, Any]) -> str:
    answer = await route(
        service, FhirRequest("POST", resource["resourceType"], resource=resource, caller=Caller.operator("t"))
    )
    assert answer.status == 201, answer.body
    return answer.headers["Location"].split(f"/{resource['resourceType']}/")[1].split("/")[0]


def _document(patient: str, author: str, when: str) -> dict[str, Any]:
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
        "category": [{"coding": [{"system": TRE_A03, "code": "10"}]}],
        "subject": {"reference": f"Patient/{patient}"},
        "date": when,
        "author": [{"reference": author}],
        "content": [{"attachment": {"contentType": "text/plain", "data": "Qm9uam91cg=="}}],
    }


def _work(patient: str, me: str, when: str) -> list[dict[str, Any]]:
    """A document, a message each way, two prescription lines, a renewal answered and one open."""
    subject = {"reference": f"Patient/{patient}"}
    renewal = {"coding": [RENEWAL_CODE]}
    return [
        _document(patient, me, when),
        {"resourceType": "Communication", "status": "completed", "subject": subject, "sender": {"reference": me}, "recipient": [subject], "sent": when},
        {"resourceType": "Communication", "status": "completed", "subject": subject, "sender": subject, "recipient": [{"reference": me}], "sent": when},
        *(
            {"resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": subject, "requester": {"reference": me}, "authoredOn": when, "medicationCodeableConcept": {"text": name}}
            for name in ("Paracétamol", "Ibuprofène")
        ),
        {"resourceType": "Task", "status": "completed", "intent": "order", "code": renewal, "for": subject, "owner": {"reference": me}, "lastModified": when},
        {"resourceType": "Task", "status": "requested", "intent": "order", "code": renewal, "for": subject, "owner": {"reference": me}, "lastModified": when},
    ]  # fmt: skip


async def test_the_practice_counts_only_what_the_professional_did_and_may_see(service: FhirService) -> None:
    now = datetime(2026, 3, 31, 21, 30, tzinfo=UTC)  # 23:30 in Paris: still March there
    doctor = await _create(service, {"resourceType": "Practitioner", "name": [{"family": "BERNARD"}]})
    colleague = await _create(service, {"resourceType": "Practitioner", "name": [{"family": "PETIT"}]})
    me, other = f"Practitioner/{doctor}", f"Practitioner/{colleague}"
    # in the care team of A, médecin traitant of C (and seen in consultation), nothing with B
    a = await _create(service, {"resourceType": "Patient"})
    b = await _create(service, {"resourceType": "Patient"})
    c = await _create(service, {"resourceType": "Patient", "generalPractitioner": [{"reference": me}]})
    await _create(
        service,
        {
            "resourceType": "CareTeam",
            "status": "active",
            "subject": {"reference": f"Patient/{a}"},
            "participant": [{"member": {"reference": me}}],
        },
    )
    await _create(
        service,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": f"Patient/{c}"},
            "participant": [{"individual": {"reference": me}}],
            "period": {"start": "2026-03-02T09:00:00+01:00", "end": "2026-03-02T09:30:00+01:00"},
        },
    )
    march = "2026-03-31T23:10:00+02:00"  # late on the last day of March, Paris summer time
    january = "2026-01-15T10:00:00+01:00"
    for resource in [*_work(a, me, march), *_work(a, me, january), *_work(c, me, march)]:
        await _create(service, resource)
    # what does not count: my work in B's record (not open to me), a colleague's work in A's
    for resource in _work(b, me, march):
        await _create(service, resource)
    await _create(service, _document(a, other, march))

    caller = Caller.of(Principal("practitioner", me, profession="10"))
    practice = await gather(Door(service), caller, me, now)

    assert practice.patients == 2
    assert practice.relations == {"traitant": 1, "equipe": 1, "consultation": 1}
    assert practice.open_renewals == 3  # A: January and March, C: March
    months = [m.label for m in practice.months]
    assert months[0] == "avril 2025" and months[-1] == "mars 2026" and len(months) == 12
    by_month = {key: dict(zip(months, series or [], strict=True)) for key, series in practice.monthly.items()}
    assert {key: by_month[key]["mars 2026"] for key in by_month} == {
        "documents": 2,
        "envoyes": 2,
        "recus": 2,
        "prescriptions": 4,
        "renouvellements": 2,
    }
    assert {key: by_month[key]["janvier 2026"] for key in by_month} == {
        "documents": 1,
        "envoyes": 1,
        "recus": 1,
        "prescriptions": 2,
        "renouvellements": 1,
    }
    assert practice.totals() == {
        "documents": 3,
        "envoyes": 3,
        "recus": 3,
        "prescriptions": 6,
        "renouvellements": 3,
    }
    assert [i.key for i in MONTHLY] == list(practice.monthly)


def test_the_months_are_paris_calendar_months() -> None:
    # 31 December 23:30 UTC is 1 January 00:30 in Paris: January already, the year's last month
    months = last_months(datetime(2025, 12, 31, 23, 30, tzinfo=UTC), 3)
    assert [m.label for m in months] == ["novembre 2025", "décembre 2025", "janvier 2026"]
    assert months[-1].start == datetime(2026, 1, 1, tzinfo=PARIS)
    assert months[0].end == months[1].start
    assert last_months(datetime(2026, 3, 10, tzinfo=UTC) - timedelta(days=1), 1)[0].label == "mars 2026"
