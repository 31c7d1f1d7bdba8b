"""The demo's messaging, alert and questionnaire content, seeded once on a real FHIR service."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from hygie.bootstrap import Runtime
from hygie.config import load_settings
from hygie.demo.ens_messages import seed_demo
from hygie.domain.access import Caller
from hygie.domain.ens import alerts as al
from hygie.domain.ens import messaging as msg
from hygie.domain.ens import questionnaires as qs
from hygie.domain.policy import Principal
from hygie.fhir.interactions import FhirService
from hygie.stores.binaries import BinaryOffloadingStore
from hygie.stores.files import MemoryBlobStore
from hygie.stores.memory import MemoryResourceStore
from hygie.web.portal.door import Door

pytestmark = pytest.mark.anyio
OPERATOR = Caller.operator("tests")


async def test_the_demo_gives_a_conversation_an_alert_and_a_questionnaire(tmp_path: Path) -> None:
    store = BinaryOffloadingStore(MemoryResourceStore(), MemoryBlobStore())
    service = FhirService(store, base_url="http://test/fhir")
    runtime = Runtime(
        load_settings(data_dir=tmp_path, database_url="sqlite://"), store, MemoryBlobStore(), service
    )
    door = Door(service)
    gp = (
        await door.create(
            OPERATOR, {"resourceType": "Practitioner", "name": [{"family": "LEROY", "given": ["Anne"]}]}
        )
    )["id"]
    patient = (
        await door.create(
            OPERATOR,
            {
                "resourceType": "Patient",
                "name": [{"family": "DUPONT", "given": ["Claire"]}],
                "birthDate": "1985-04-12",
                "address": [
                    {
                        "use": "home",
                        "extension": [{"url": al.INSEE_EXTENSION, "valueCoding": {"code": "45234"}}],
                        "postalCode": "45000",
                    }
                ],
                "generalPractitioner": [{"reference": f"Practitioner/{gp}"}],
            },
        )
    )["id"]
    await seed_demo(runtime, patient, None)
    await seed_demo(runtime, patient, None)  # once only

    claire = Caller.of(Principal("patient", f"Patient/{patient}"))
    messages = await door.search(claire, "Communication", [("subject", f"Patient/{patient}")])
    threads = msg.group_threads(messages, f"Patient/{patient}", {})
    assert len(threads) == 1 and threads[0].count == 3 and threads[0].unread == 1
    assert threads[0].correspondent == "Dr Anne LEROY"
    alerts = [al.view_alert(m) for m in messages if al.is_alert(m)]
    assert len(alerts) == 1
    assert alerts[0].reason == "Vous recevez ce message car : vous habitez en Centre-Val de Loire"
    encounters = await door.search(claire, "Encounter", [("patient", f"Patient/{patient}")])
    installed = {q["id"]: q for q in await door.search(claire, "Questionnaire", [])}
    proposed = qs.proposals(encounters, [], installed, now=datetime.now(UTC), weeks=8)
    assert [p.questionnaire_id for p in proposed] == ["esatis-48h-mco"]
