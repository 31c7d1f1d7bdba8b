"""The portals' door: pages read as the signed-in person, and the trail holds every read of a
page, granted or refused, before the page is returned — in one write per page."""

from __future__ import annotations

import pytest

from hygie.domain.access import Caller
from hygie.domain.policy import Principal
from hygie.fhir.interactions import FhirService
from hygie.fhir.request import FhirRequest
from hygie.fhir.router import route
from hygie.web.portal.door import Door, PortalError

pytestmark = pytest.mark.anyio


async def _patient(service: FhirService) -> str:
    answer = await route(
        service,
        FhirRequest("POST", "Patient", resource={"resourceType": "Patient"}, caller=Caller.operator("t")),
    )
    return answer.headers["Location"].split("/Patient/")[1].split("/")[0]


async def _trail(service: FhirService, patient_id: str) -> int:
    return len((await service.audit.list_for_patient(patient_id, count=100)).records)


async def test_a_pages_reads_reach_the_trail_together_when_the_page_is_done(service: FhirService) -> None:
    claire, paul = await _patient(service), await _patient(service)
    door = Door(service)
    caller = Caller.of(Principal("patient", f"Patient/{claire}"))
    before_claire, before_paul = await _trail(service, claire), await _trail(service, paul)
    async with door.page():
        assert (await door.read(caller, "Patient", claire)) is not None
        await door.search(caller, "Observation", [("patient", claire)])
        # someone else's record: refused, and refused looks like absent
        assert (await door.read(caller, "Patient", paul)) is None
        with pytest.raises(PortalError) as refused:
            await door.call(caller, "GET", f"Patient/{paul}")
        assert refused.value.status == 404
        # nothing written yet: the page is not finished
        assert await _trail(service, claire) == before_claire
    # the page is done: its granted read is in Claire's trail (the empty search in the system's),
    # the refusals in Paul's
    assert await _trail(service, claire) == before_claire + 1
    assert await _trail(service, paul) == before_paul + 2


async def test_a_page_that_fails_still_leaves_its_trail(service: FhirService) -> None:
    claire = await _patient(service)
    door = Door(service)
    caller = Caller.of(Principal("patient", f"Patient/{claire}"))
    before = await _trail(service, claire)
    with pytest.raises(RuntimeError):
        async with door.page():
            await door.read(caller, "Patient", claire)
            raise RuntimeError("the page broke after reading")
    assert await _trail(service, claire) == before + 1


async def test_outside_a_page_each_read_writes_its_own_record(service: FhirService) -> None:
    claire = await _patient(service)
    door = Door(service)
    caller = Caller.of(Principal("patient", f"Patient/{claire}"))
    before = await _trail(service, claire)
    await door.read(caller, "Patient", claire)
    assert await _trail(service, claire) == before + 1
