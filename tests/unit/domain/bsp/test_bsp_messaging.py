"""The professional's end of secure messaging (``domain/bsp/messaging.py``): whose mailbox, which
kind of conversation, files carried in the message, the trusted directory by name or MSSanté
address — the directory searched on a real in-memory FHIR service as a professional."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest

from hygie.domain.access import Caller
from hygie.domain.bsp import messaging as pro
from hygie.domain.ens import messaging as msg
from hygie.domain.policy import Principal
from hygie.fhir.interactions import FhirService
from hygie.stores.binaries import BinaryOffloadingStore
from hygie.stores.files import MemoryBlobStore
from hygie.stores.memory import MemoryResourceStore
from hygie.web.portal.door import Door

NOW = 1_780_000_000_000_000
ME = "Practitioner/gp"
CABINET = "Organization/cabinet"
BOX = pro.professional_mailbox(ME, CABINET)
TRE_G15 = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
MAIL_TYPE = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type"


def pdf() -> bytes:
    from fpdf import FPDF

    document = FPDF()
    document.add_page()
    document.set_font("Helvetica", size=12)
    document.cell(0, 10, "Courrier")
    return bytes(document.output())


def message(mid: str, sender: str, recipients: list[str], sent: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Communication",
        "id": mid,
        "category": [{"coding": [dict(pro.CORRESPONDENCE_CATEGORY)]}],
        "topic": {"text": f"Objet {mid}"},
        "sent": sent,
        "sender": {"reference": sender},
        "recipient": [{"reference": r} for r in recipients],
        "payload": [{"contentString": "Bonjour"}],
        **extra,
    }


def test_my_mailbox_is_mine_and_my_structures() -> None:
    to_me = message("1", "Practitioner/cardio", [ME], "2026-03-01T10:00:00Z")
    to_cabinet = message("2", "Practitioner/cardio", [CABINET], "2026-03-01T10:00:00Z")
    from_me = message("3", ME, ["Practitioner/cardio"], "2026-03-01T10:00:00Z")
    to_others = message("4", "Practitioner/cardio", ["Practitioner/ide"], "2026-03-01T10:00:00Z")
    assert BOX.unread(to_me) and BOX.unread(to_cabinet)
    assert not BOX.unread(from_me) and not BOX.unread(to_others)
    assert not BOX.unread({**to_me, "received": "2026-03-01T11:00:00Z"})
    assert pro.involves([to_cabinet], BOX) and pro.involves([from_me], BOX)
    assert not pro.involves([to_others], BOX)
    # unlike the person's end, a message naming no recipient is nobody's to open here
    assert not BOX.unread({**to_me, "recipient": []})


def test_the_inbox_puts_what_is_new_first() -> None:
    messages = [
        message("old-new", "Practitioner/cardio", [ME], "2026-01-01T10:00:00Z"),
        message("recent-read", ME, ["Practitioner/ide"], "2026-03-01T10:00:00Z"),
        message(
            "reply",
            "Practitioner/ide",
            [ME],
            "2026-03-02T10:00:00Z",
            partOf=[{"reference": "Communication/recent-read"}],
            received="2026-03-02T11:00:00Z",
        ),
    ]
    names = {"Practitioner/cardio": "Dr Jean CARDIO", "Practitioner/ide": "Luc INFIRMIER"}
    threads = msg.group_threads(messages, BOX, names, pro.KINDS)
    assert [t.root for t in threads] == ["recent-read", "old-new"]  # the most recent first
    ordered = pro.inbox_order(threads)
    assert [t.root for t in ordered] == ["old-new", "recent-read"]  # then unread first
    assert ordered[0].unread == 1 and ordered[0].correspondent == "Dr Jean CARDIO"
    assert ordered[1].count == 2 and ordered[1].messages[0].mine and not ordered[1].messages[1].mine
    # the person's messages (category "message") are not threads of the citizen kind only
    assert msg.group_threads(messages, BOX, names) == []


def test_a_message_to_a_colleague_is_a_correspondence_with_its_files_inside() -> None:
    data = pdf()
    letter = pro.professional_message(
        patient_ref="Patient/lea",
        sender=(ME, "Dr Paul BERNARD"),
        recipients=[("Practitioner/cardio", "Dr Jean CARDIO")],
        subject="Avis",
        text="Que pensez-vous de l’échographie ?",
        now_us=NOW,
        documents=[("DocumentReference/echo", "Échographie")],
        files=[("../../courrier d'adressage.PDF", data)],
    )
    assert letter["category"][0]["coding"][0]["code"] == "correspondance"
    assert letter["subject"] == {"reference": "Patient/lea"}
    assert letter["payload"][1] == {
        "contentReference": {"reference": "DocumentReference/echo", "display": "Échographie"}
    }
    carried = letter["payload"][2]["contentAttachment"]
    assert carried["title"] == "courrier d'adressage.pdf" and carried["size"] == len(data)
    assert base64.b64decode(carried["data"]) == data
    assert msg.carried_file(letter, 2) == (data, "application/pdf", "courrier d'adressage.pdf")
    assert msg.carried_file(letter, 0) is None and msg.carried_file(letter, 9) is None
    view = msg.view_message({**letter, "id": "m"}, BOX, {})
    assert view.mine and view.files == ((2, "courrier d'adressage.pdf"),)
    assert view.attachments == (("echo", "Échographie"),)

    about_no_one = pro.professional_message(
        patient_ref=None,
        sender=(ME, ""),
        recipients=[(CABINET, "Cabinet du Port")],
        subject="Garde",
        text="Qui est de garde samedi ?",
        now_us=NOW,
    )
    assert "subject" not in about_no_one
    with pytest.raises(ValueError, match="checked"):
        pro.professional_message(
            patient_ref=None,
            sender=(ME, ""),
            recipients=[(CABINET, "")],
            subject="x",
            text="y",
            now_us=NOW,
            files=[("virus.exe", b"MZ...")],
        )


def test_an_answer_to_a_patient_is_a_message_of_her_space() -> None:
    answer = pro.professional_message(
        patient_ref="Patient/lea",
        sender=(ME, "Dr Paul BERNARD"),
        recipients=[("Patient/lea", "Léa DURAND")],
        subject="Mon traitement",
        text="Continuez.",
        now_us=NOW,
        root_id="root",
        in_response_to="root",
    )
    assert answer["category"][0]["coding"][0]["code"] == "message"
    assert msg.unread_for_patient({**answer, "id": "a"}, "Patient/lea")
    assert pro.with_patient([answer]) == "Patient/lea"
    assert answer["partOf"] == [{"reference": "Communication/root"}]


def test_mssante_addresses_and_correspondents() -> None:
    practitioner = {
        "resourceType": "Practitioner",
        "id": "cardio",
        "name": [{"family": "Cardio", "given": ["Jean"], "prefix": ["Dr"]}],
        "telecom": [
            {
                "system": "email",
                "value": "jean.cardio@medecin.mssante.fr",
                "extension": [{"url": MAIL_TYPE, "valueCoding": {"code": "MSSANTE"}}],
            },
            {"system": "email", "value": "jean@example.fr"},  # a personal mailbox: not shown
        ],
        "qualification": [{"code": {"coding": [{"system": TRE_G15, "code": "10"}]}}],
    }
    roles = [
        {
            "resourceType": "PractitionerRole",
            "organization": {"reference": "Organization/chu", "display": "CHU de Rennes"},
            "telecom": [{"system": "email", "value": "cardiologie@chu-rennes.mssante.fr"}],
        },
        {"resourceType": "PractitionerRole", "active": False, "organization": {"display": "Ancien cabinet"}},
    ]
    found = pro.correspondent_of(practitioner, roles)
    assert found is not None
    assert found.reference == "Practitioner/cardio" and found.name == "Dr Jean CARDIO"
    assert found.profession == "Médecin" and found.places == ("CHU de Rennes",)
    assert found.addresses == ("jean.cardio@medecin.mssante.fr", "cardiologie@chu-rennes.mssante.fr")
    assert found.label == "Dr Jean CARDIO — Médecin · CHU de Rennes"
    assert pro.correspondent_of({**practitioner, "active": False}) is None
    structure = pro.correspondent_of({"resourceType": "Organization", "id": "chu", "name": "CHU de Rennes"})
    assert (
        structure is not None and structure.kind == "structure" and structure.reference == "Organization/chu"
    )
    assert pro.correspondent_of({"resourceType": "Patient", "id": "x"}) is None


def test_what_is_typed_becomes_directory_searches() -> None:
    assert pro.directory_searches("x") == []
    by_address = pro.directory_searches(" Jean.Cardio@medecin.mssante.fr ")
    assert [t for t, _ in by_address] == ["Practitioner", "PractitionerRole"]
    assert ("email", "jean.cardio@medecin.mssante.fr") in by_address[0][1]
    by_name = dict(pro.directory_searches("Jean  Cardio"))
    assert ("name", "Jean") in by_name["Practitioner"] and ("name", "Cardio") in by_name["Practitioner"]
    assert ("name:contains", "Jean Cardio") in by_name["Organization"]


@pytest.mark.anyio
async def test_a_correspondent_is_found_by_name_or_mailbox() -> None:
    door = Door(
        FhirService(BinaryOffloadingStore(MemoryResourceStore(), MemoryBlobStore()), base_url="http://t/fhir")
    )
    operator = Caller.operator("tests")
    cardio = await door.create(
        operator,
        {
            "resourceType": "Practitioner",
            "name": [{"family": "Cardio", "given": ["Jean"], "prefix": ["Dr"]}],
            "qualification": [{"code": {"coding": [{"system": TRE_G15, "code": "10"}]}}],
        },
    )
    await door.create(
        operator,
        {
            "resourceType": "PractitionerRole",
            "practitioner": {"reference": f"Practitioner/{cardio['id']}"},
            "organization": {"display": "CHU de Rennes"},
            "telecom": [{"system": "email", "value": "jean.cardio@medecin.mssante.fr"}],
        },
    )
    await door.create(operator, {"resourceType": "Organization", "name": "Centre de cardiologie"})
    me = Caller.of(Principal("practitioner", ME, profession="10"))
    by_name = await pro.find_correspondents(door, me, "jean card")
    assert [c.name for c in by_name] == ["Dr Jean CARDIO"]
    assert by_name[0].places == ("CHU de Rennes",)
    by_mailbox = await pro.find_correspondents(door, me, "jean.cardio@medecin.mssante.fr")
    assert [c.reference for c in by_mailbox] == [f"Practitioner/{cardio['id']}"]
    structures = await pro.find_correspondents(door, me, "cardiologie")
    assert [(c.kind, c.name) for c in structures] == [("structure", "Centre de cardiologie")]


def test_a_carried_file_survives_being_read_back_from_json() -> None:
    import orjson
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(buffer, "PNG")
    letter = pro.professional_message(
        patient_ref=None,
        sender=(ME, ""),
        recipients=[(CABINET, "")],
        subject="Photo",
        text="Ci-joint",
        now_us=NOW,
        files=[("photo.png", buffer.getvalue())],
    )
    again = orjson.loads(orjson.dumps(letter))
    assert msg.carried_file(again, 1) == (buffer.getvalue(), "image/png", "photo.png")
