"""The four events that tell a person (and the parents who run a child's space) that something is
new, on every store: a professional's message, a personal threshold crossed, a professional
declaring a care relation, an emergency access. One recipient rule
(``domain/ens/notifications.py``): e-mail to a local SMTP server (aiosmtpd), SMS to the file
sender, as each person chose; an adolescent's confidential choice keeps the parent it names out
of what could reveal care."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from bearer_tokens import bearer
from hygie.bootstrap import Runtime, clock_us
from hygie.delivery import DeliveryWorker
from hygie.domain.access import Caller
from hygie.domain.ens import vitals as v
from hygie.domain.ens.messaging import CATEGORY_SYSTEM
from hygie.domain.ens.vitals_watch import ThresholdWatch
from hygie.domain.outbox import FileSender, SmtpSender
from hygie.web.portal.door import Door

pytestmark = pytest.mark.anyio

TRE_G15 = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
ROLES = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
OPERATOR = Caller.operator("tests")
SECRET = "Résultat de votre sérologie"
IRCP = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]}


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpt, m in self.messages if address in rcpt]


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def sms_to(path: Path, number: str) -> list[str]:
    if not path.is_file():
        return []
    return [
        json.loads(line)["body"]
        for line in path.read_text(encoding="utf-8").splitlines()
        if line and json.loads(line)["to"] == number
    ]


def relative(rid: str, patient: str, code: str, *telecom: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "RelatedPerson",
        "id": rid,
        "active": True,
        "patient": {"reference": f"Patient/{patient}"},
        "relationship": [{"coding": [{"system": ROLES, "code": code}]}],
        "telecom": list(telecom),
    }


def practitioner(pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": pid,
        "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.1", "value": f"8{pid}"}],
        "name": [{"family": pid.upper(), "prefix": ["Dr"]}],
        "qualification": [{"code": {"coding": [{"system": TRE_G15, "code": "10"}]}}],
    }


async def seed(client: httpx.AsyncClient) -> None:
    """Zoé (nine, no contact details), run by her two parents; Hugo (sixteen), whose confidential
    mode keeps his mother out; two doctors with no relation to them."""
    resources: list[dict[str, Any]] = [
        practitioner("gp"),
        practitioner("er"),
        {"resourceType": "Patient", "id": "zoe", "birthDate": "2017-03-02", "name": [{"family": "ROUX"}]},
        relative(
            "zoe-mere",
            "zoe",
            "MTH",
            {"system": "email", "value": "claire.roux@example.fr"},
            {"system": "phone", "value": "06 11 22 33 44", "use": "mobile"},
        ),
        relative("zoe-pere", "zoe", "FTH", {"system": "email", "value": "marc.roux@example.fr"}),
        {
            "resourceType": "Patient",
            "id": "hugo",
            "birthDate": "2010-01-15",
            "name": [{"family": "LEBLANC"}],
            "telecom": [{"system": "email", "value": "hugo@example.fr"}],
        },
        relative("hugo-mere", "hugo", "MTH", {"system": "email", "value": "anne.leblanc@example.fr"}),
        {
            "resourceType": "Consent",
            "id": "hugo-confidentiel",
            "status": "active",
            "scope": {"coding": [{"code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": "Patient/hugo"},
            "provision": {
                "type": "deny",
                "actor": [{"role": IRCP, "reference": {"reference": "RelatedPerson/hugo-mere"}}],
                "class": [{"code": "11488-4"}],
            },
        },
    ]
    for resource in resources:
        r = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
        assert r.status_code in (200, 201), r.text


def message(patient: str, sender: str) -> dict[str, Any]:
    return {
        "resourceType": "Communication",
        "status": "completed",
        "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "message"}]}],
        "subject": {"reference": f"Patient/{patient}"},
        "topic": {"text": "Sérologie"},
        "sent": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sender": {"reference": sender},
        "recipient": [{"reference": f"Patient/{patient}"}],
        "payload": [{"contentString": SECRET}],
    }


async def pro(runtime: Runtime, pid: str) -> dict[str, str]:
    return await bearer(
        runtime,
        kind="professional",
        scope="openid",
        fhir_user=f"Practitioner/{pid}",
        client_id="hygie-portal",
    )


def params(**values: str) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": k, "valueCode" if k == "attestation" else "valueString": v} for k, v in values.items()
        ],
    }


@pytest.fixture
def worker(runtime: Runtime, smtp: tuple[Inbox, int], tmp_path: Path) -> DeliveryWorker:
    return DeliveryWorker(
        runtime,
        senders={
            "email": SmtpSender("127.0.0.1", smtp[1]),
            "sms": FileSender(tmp_path / "sms.jsonl"),
        },
    )


async def test_a_message_reaches_the_parents_of_a_child_and_not_the_parent_a_teen_keeps_out(
    client: httpx.AsyncClient,
    runtime: Runtime,
    worker: DeliveryWorker,
    smtp: tuple[Inbox, int],
    tmp_path: Path,
) -> None:
    inbox, _ = smtp
    await seed(client)
    for patient in ("zoe", "hugo"):
        r = await client.post("/fhir/Communication", json=message(patient, "Practitioner/gp"))
        assert r.status_code == 201, r.text
    await worker.round()
    [mother] = inbox.to("claire.roux@example.fr")
    [father] = inbox.to("marc.roux@example.fr")
    assert mother["Subject"] == "Nouveau message dans l’espace santé d’un de vos proches"
    assert "un de vos proches" in father.get_content()
    assert sms_to(tmp_path / "sms.jsonl", "06 11 22 33 44") == [
        "Hygie : vous avez un nouveau message dans l’espace santé d’un de vos proches. Connectez-vous pour le lire."
    ]
    [own] = inbox.to("hugo@example.fr")
    assert own["Subject"] == "Nouveau message dans votre espace santé"
    assert inbox.to("anne.leblanc@example.fr") == []  # the confidential mode names her
    for _, mail in inbox.messages:
        assert SECRET not in mail.get_content() and "Sérologie" not in mail.get_content()
    await worker.round()  # nothing is told twice
    assert len(inbox.messages) == 3


async def test_a_threshold_crossed_in_a_child_s_space_reaches_the_parents(
    client: httpx.AsyncClient,
    runtime: Runtime,
    worker: DeliveryWorker,
    smtp: tuple[Inbox, int],
    tmp_path: Path,
) -> None:
    inbox, _ = smtp
    await seed(client)
    door = Door(runtime.service)
    assert runtime.outbox is not None
    now = datetime.now(UTC)
    await door.create(
        OPERATOR,
        v.goal(v.MEASURES["poids"], {"29463-7": (20.0, 35.0)}, "Patient/zoe", "Patient/zoe", now.date()),
    )
    watch = ThresholdWatch(door, runtime.kv, runtime.outbox, clock_us)
    await watch.follow("zoe")
    await worker.round()
    reading = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": "Patient/zoe"},
        "effectiveDateTime": now.isoformat(),
        "valueQuantity": {"value": 38.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
    }
    await door.create(OPERATOR, reading)
    await worker.round()
    [mother] = inbox.to("claire.roux@example.fr")
    assert mother["Subject"] == "Une mesure d’un de vos proches a franchi un seuil d’alerte"
    assert "38" not in mother.get_content()
    assert f"{runtime.settings.base_url.rstrip('/')}/ens/mesures" in mother.get_content()
    assert len(inbox.to("marc.roux@example.fr")) == 1
    assert len(sms_to(tmp_path / "sms.jsonl", "06 11 22 33 44")) == 1
    await worker.round()
    assert len(inbox.messages) == 2


async def test_a_declared_care_relation_is_told_but_never_to_the_parent_a_teen_keeps_out(
    client: httpx.AsyncClient,
    runtime: Runtime,
    worker: DeliveryWorker,
    smtp: tuple[Inbox, int],
    tmp_path: Path,
) -> None:
    inbox, _ = smtp
    await seed(client)
    gp = await pro(runtime, "gp")
    for patient in ("zoe", "hugo"):
        r = await client.post(
            f"/fhir/Patient/{patient}/$declare-care",
            json=params(attestation="patient-present", reason="Consultation pour une entorse"),
            headers=gp,
        )
        assert r.status_code == 201, r.text
    await worker.deliver()
    [own] = inbox.to("hugo@example.fr")
    assert own["Subject"] == "Un professionnel de santé déclare vous prendre en charge"
    assert "entorse" not in own.get_content()
    assert inbox.to("anne.leblanc@example.fr") == []
    [mother] = inbox.to("claire.roux@example.fr")
    assert mother["Subject"] == "Un professionnel de santé déclare prendre en charge un de vos proches"
    assert len(inbox.to("marc.roux@example.fr")) == 1
    assert sms_to(tmp_path / "sms.jsonl", "06 11 22 33 44")[0].startswith("Hygie : un professionnel")
    # the contact details were read as the operator "notifications", in the child's access history
    page = await runtime.audit.list_for_patient("zoe", count=200)
    assert any("notifications" in (r.entry.agent or "") for r in page.records)


async def test_an_emergency_access_is_told_to_the_parents_of_a_child(
    client: httpx.AsyncClient,
    runtime: Runtime,
    worker: DeliveryWorker,
    smtp: tuple[Inbox, int],
    tmp_path: Path,
) -> None:
    inbox, _ = smtp
    await seed(client)
    er = await pro(runtime, "er")
    for patient in ("zoe", "hugo"):
        r = await client.post(
            f"/fhir/Patient/{patient}/$break-glass",
            json=params(reason="PATIENT_INCONSCIENT", justification="Enfant inconscient aux urgences"),
            headers=er,
        )
        assert r.status_code == 201, r.text
    await worker.deliver()
    [mother] = inbox.to("claire.roux@example.fr")
    assert mother["Subject"] == "Accès en urgence au dossier de santé d’un de vos proches"
    body = mother.get_content()
    assert "inconscient" not in body.lower() and "4 heures" in body
    assert len(inbox.to("marc.roux@example.fr")) == 1
    assert sms_to(tmp_path / "sms.jsonl", "06 11 22 33 44")[0].startswith("Hygie : un professionnel")
    assert len(inbox.to("hugo@example.fr")) == 1
    assert inbox.to("anne.leblanc@example.fr") == []
