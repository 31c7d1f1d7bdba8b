"""Messaging rules: who can be written to, threads and unread counts, attachments, the signature
rule of the access policy, the read receipt operation — on a real in-memory FHIR service."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from hygie.domain.access import Caller
from hygie.domain.ens import messaging as msg
from hygie.domain.policy import Principal, Relation, Target, decide
from hygie.fhir.interactions import FhirService
from hygie.stores.binaries import BinaryOffloadingStore
from hygie.stores.files import MemoryBlobStore
from hygie.stores.memory import MemoryResourceStore
from hygie.web.portal.door import Door, PortalError

pytestmark = pytest.mark.anyio
OPERATOR = Caller.operator("tests")


@pytest.fixture
def door() -> Door:
    store = BinaryOffloadingStore(MemoryResourceStore(), MemoryBlobStore())
    return Door(FhirService(store, base_url="http://test/fhir"))


def patient_caller(pid: str) -> Caller:
    return Caller.of(Principal("patient", f"Patient/{pid}"))


def gp_caller(gid: str) -> Caller:
    return Caller.of(Principal("practitioner", f"Practitioner/{gid}", profession="10"))


async def _directory(door: Door) -> dict[str, str]:
    async def make(resource: dict[str, Any]) -> str:
        return str((await door.create(OPERATOR, resource))["id"])

    ids: dict[str, str] = {}
    ids["gp"] = await make(
        {"resourceType": "Practitioner", "name": [{"family": "LEROY", "given": ["Anne"], "prefix": ["Dr"]}]}
    )
    ids["nurse"] = await make(
        {"resourceType": "Practitioner", "name": [{"family": "NOEL", "given": ["Marc"]}]}
    )
    ids["surgeon"] = await make(
        {"resourceType": "Practitioner", "name": [{"family": "ROUX", "given": ["Léo"]}]}
    )
    ids["org"] = await make({"resourceType": "Organization", "name": "Maison de santé des Lilas"})
    yes = [{"url": msg.ACCEPTS_MESSAGES_URL, "valueBoolean": True}]
    await make(
        {
            "resourceType": "PractitionerRole",
            "active": True,
            "practitioner": {"reference": f"Practitioner/{ids['gp']}"},
            "organization": {
                "reference": f"Organization/{ids['org']}",
                "display": "Maison de santé des Lilas",
            },
            "extension": yes,
        }
    )
    await make(
        {
            "resourceType": "PractitionerRole",
            "active": True,
            "practitioner": {"reference": f"Practitioner/{ids['nurse']}"},
            "extension": yes,
        }
    )
    # the surgeon's role says no
    await make(
        {
            "resourceType": "PractitionerRole",
            "active": True,
            "practitioner": {"reference": f"Practitioner/{ids['surgeon']}"},
            "extension": [{"url": msg.ACCEPTS_MESSAGES_URL, "valueBoolean": False}],
        }
    )
    ids["patient"] = await make(
        {
            "resourceType": "Patient",
            "name": [{"family": "MOREAU", "given": ["Julie"]}],
            "generalPractitioner": [{"reference": f"Practitioner/{ids['gp']}"}],
        }
    )
    await make(
        {
            "resourceType": "CareTeam",
            "status": "active",
            "subject": {"reference": f"Patient/{ids['patient']}"},
            "participant": [
                {"member": {"reference": f"Practitioner/{ids['nurse']}"}},
                {"member": {"reference": f"Practitioner/{ids['surgeon']}"}},
                {"member": {"reference": f"Practitioner/{ids['gp']}"}},
            ],
        }
    )
    return ids


async def test_the_care_team_members_who_accept_messages_are_offered(door: Door) -> None:
    ids = await _directory(door)
    contacts = await msg.care_contacts(door, patient_caller(ids["patient"]), ids["patient"])
    assert [(c.reference, c.role) for c in contacts] == [
        (f"Practitioner/{ids['gp']}", "médecin traitant"),
        (f"Practitioner/{ids['nurse']}", "équipe de soins"),
    ]
    assert contacts[0].label == "Dr Anne LEROY — médecin traitant, Maison de santé des Lilas"


async def test_someone_else_s_care_team_is_not_reachable(door: Door) -> None:
    ids = await _directory(door)
    other = str((await door.create(OPERATOR, {"resourceType": "Patient", "name": [{"family": "X"}]}))["id"])
    # refused reads look like absence: nothing to offer
    assert await msg.care_contacts(door, patient_caller(other), ids["patient"]) == []


def _message(pid: str, gid: str, **extra: Any) -> dict[str, Any]:
    return {
        **msg.new_message(
            patient_ref=f"Patient/{pid}",
            sender=(f"Patient/{pid}", "Julie MOREAU"),
            recipients=[(f"Practitioner/{gid}", "Dr Anne LEROY")],
            subject="Renouvellement",
            text="Bonjour",
            now_us=1_770_000_000_000_000,
        ),
        **extra,
    }


async def test_a_patient_writes_only_in_their_own_name(door: Door) -> None:
    ids = await _directory(door)
    julie = patient_caller(ids["patient"])
    created = await door.create(julie, _message(ids["patient"], ids["gp"]))
    assert created["sender"]["reference"] == f"Patient/{ids['patient']}"
    forged = _message(ids["patient"], ids["gp"], sender={"reference": f"Practitioner/{ids['gp']}"})
    with pytest.raises(PortalError) as refused:
        await door.create(julie, forged)
    assert refused.value.status == 403
    # nor may she rewrite her doctor's answer to acknowledge it
    answer = await door.create(
        gp_caller(ids["gp"]),
        _message(
            ids["patient"],
            ids["gp"],
            sender={"reference": f"Practitioner/{ids['gp']}"},
            recipient=[{"reference": f"Patient/{ids['patient']}"}],
        ),
    )
    with pytest.raises(PortalError):
        await door.update(julie, {**answer, "received": "2026-03-01T10:00:00Z"})
    # the read receipt is the operation's to give, once
    first = await door.operation(julie, "POST", f"Communication/{answer['id']}/$mark-received")
    again = await door.operation(julie, "POST", f"Communication/{answer['id']}/$mark-received")
    assert first["received"] and again["received"] == first["received"]
    assert first["payload"] == answer["payload"]


async def test_only_a_recipient_acknowledges(door: Door) -> None:
    ids = await _directory(door)
    julie = patient_caller(ids["patient"])
    sent = await door.create(julie, _message(ids["patient"], ids["gp"]))
    with pytest.raises(PortalError) as refused:  # the sender is not a recipient
        await door.operation(julie, "POST", f"Communication/{sent['id']}/$mark-received")
    assert refused.value.status == 403
    other = str((await door.create(OPERATOR, {"resourceType": "Patient", "name": [{"family": "X"}]}))["id"])
    with pytest.raises(PortalError) as hidden:  # someone else's message does not exist for them
        await door.operation(patient_caller(other), "POST", f"Communication/{sent['id']}/$mark-received")
    assert hidden.value.status == 404


def test_the_policy_refuses_a_message_signed_by_someone_else() -> None:
    patient = Principal("patient", "Patient/p1")
    mine = Target("Communication", "p1", authors=frozenset({"Patient/p1"}))
    forged = Target("Communication", "p1", authors=frozenset({"Practitioner/g"}))
    assert decide(patient, "create", mine).allowed
    assert not decide(patient, "create", forged).allowed
    parent = Principal("representative", "RelatedPerson/r1")
    link = [Relation("representative")]
    assert decide(
        parent, "create", Target("Communication", "p1", authors=frozenset({"RelatedPerson/r1"})), link
    ).allowed
    assert not decide(parent, "create", mine, link).allowed
    answer = Target("QuestionnaireResponse", "p1", authors=frozenset({"Practitioner/g"}))
    assert not decide(patient, "create", answer).allowed


def test_threads_group_replies_under_their_root_and_count_unread() -> None:
    me = "Patient/p1"
    root = {**_message("p1", "g"), "id": "a", "sent": "2026-03-01T08:00:00Z"}
    answer = {
        **_message("p1", "g"),
        "id": "b",
        "sent": "2026-03-02T08:00:00Z",
        "sender": {"reference": "Practitioner/g", "display": "Dr Anne LEROY"},
        "recipient": [{"reference": me}],
        "partOf": [{"reference": "Communication/a"}],
    }
    read = {**answer, "id": "c", "sent": "2026-03-03T08:00:00Z", "received": "2026-03-03T09:00:00Z"}
    other = {**_message("p1", "h"), "id": "d", "sent": "2026-02-01T08:00:00Z", "topic": {"text": "Autre"}}
    threads = msg.group_threads([answer, other, root, read], me, {})
    assert [t.root for t in threads] == ["a", "d"]
    assert [m.id for m in threads[0].messages] == ["a", "b", "c"]
    assert threads[0].unread == 1 and threads[1].unread == 0
    assert threads[0].correspondent == "Dr Anne LEROY"
    assert threads[0].messages[0].mine and not threads[0].messages[1].mine
    assert threads[0].messages[2].received == "03/03/2026 à 10h00"  # Paris time


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(out, "PNG")
    return out.getvalue()


def test_attachments_must_be_what_they_claim_and_small_enough() -> None:
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    assert msg.attachment_problem("application/pdf", pdf) is None
    assert msg.attachment_problem("image/png", _png()) is None
    assert "type de fichier" in (msg.attachment_problem("application/pdf", b"hello") or "")
    assert "abîmé" in (msg.attachment_problem("application/pdf", b"%PDF-1.4 truncated") or "")
    assert "abîmé" in (msg.attachment_problem("image/png", _png()[:30]) or "")
    assert "ne correspond pas" in (msg.attachment_problem("image/jpeg", pdf) or "")
    assert "vide" in (msg.attachment_problem("application/pdf", b"") or "")
    big = b"%PDF-1.4\n" + b"0" * msg.MAX_ATTACHMENT_BYTES + b"%%EOF"
    assert "taille maximale" in (msg.attachment_problem("application/pdf", big) or "")
    assert msg.safe_filename("../../etc/pass<wd>.exe", "application/pdf") == "passwd.pdf"


async def test_an_attachment_is_a_document_of_the_record_in_one_transaction(door: Door) -> None:
    ids = await _directory(door)
    julie = patient_caller(ids["patient"])
    binary, document = msg.attachment_resources(
        f"Patient/{ids['patient']}",
        f"Patient/{ids['patient']}",
        "scan.png",
        _png(),
        1_770_000_000_000_000,
        "urn:uuid:b",
    )
    message = _message(ids["patient"], ids["gp"])
    message["payload"].append({"contentReference": {"reference": "urn:uuid:d"}})
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:b", "resource": binary, "request": {"method": "POST", "url": "Binary"}},
            {
                "fullUrl": "urn:uuid:d",
                "resource": document,
                "request": {"method": "POST", "url": "DocumentReference"},
            },
            {
                "fullUrl": "urn:uuid:m",
                "resource": message,
                "request": {"method": "POST", "url": "Communication"},
            },
        ],
    }
    await door.call(julie, "POST", "", resource=bundle)
    found = await door.search(julie, "Communication", [("subject", f"Patient/{ids['patient']}")])
    ref = found[0]["payload"][1]["contentReference"]["reference"]
    doc = await door.read(gp_caller(ids["gp"]), "DocumentReference", ref.split("/")[1])
    assert doc is not None and doc["content"][0]["attachment"]["url"].startswith("Binary/")
    # a failing entry leaves nothing behind
    forged = {**message, "sender": {"reference": f"Practitioner/{ids['gp']}"}}
    bundle["entry"][2]["resource"] = forged
    with pytest.raises(PortalError):
        await door.call(julie, "POST", "", resource=bundle)
    assert len(await door.search(julie, "DocumentReference", [("patient", f"Patient/{ids['patient']}")])) == 1
