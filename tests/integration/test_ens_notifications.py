"""A message from a professional reaches the person's phone and mailbox — without health content.

A real server (``tests/live_server.py``) whose background delivery runs every 0.2 s, e-mail to a
local SMTP server (aiosmtpd), SMS to ``<data_dir>/sms.jsonl``; the professional writes through
the FHIR API with a bearer token.
"""

from __future__ import annotations

import json
import socket
import time
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
from hygie.config import load_settings
from hygie.domain.access import Caller
from hygie.domain.ens.messaging import CATEGORY_SYSTEM
from hygie.domain.ens.notifications import apply_choice
from hygie.web.portal.door import Door
from live_server import LiveServer, start_live_server

SECRET = "Votre biopsie montre une lésion"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    # aiosmtpd calls handle_DATA
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default))
        )  # type: ignore[arg-type]
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def server(tmp_path: Path, smtp: tuple[Inbox, int]) -> Iterator[LiveServer]:
    port = _port()
    settings = load_settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'hygie.sqlite3'}",
        base_url=f"http://127.0.0.1:{port}",
        smtp_host="127.0.0.1",
        smtp_port=smtp[1],
        outbox_interval=0.2,
    )
    live = start_live_server(settings, port)
    live.base = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    yield live
    live.stop()


def _wait(check: Any, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    return check()


def _message(patient: str, sender: str, recipient: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "Communication",
        "status": "completed",
        "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "message"}]}],
        "subject": {"reference": patient},
        "topic": {"text": "Résultats d'anatomopathologie"},
        "sent": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sender": {"reference": sender},
        "recipient": [{"reference": recipient}],
        "payload": [{"contentString": text}],
    }


def test_a_professional_s_message_is_notified_by_email_and_sms(
    server: LiveServer, smtp: tuple[Inbox, int], tmp_path: Path
) -> None:
    inbox, _ = smtp
    door = Door(server.runtime.service)
    operator = Caller.operator("tests")
    gp = server.call(
        door.create(
            operator, {"resourceType": "Practitioner", "name": [{"family": "LEROY", "given": ["Anne"]}]}
        )
    )["id"]
    patient = server.call(
        door.create(
            operator,
            {
                "resourceType": "Patient",
                "name": [{"family": "MOREAU", "given": ["Julie"]}],
                "telecom": [
                    {"system": "email", "value": "julie.moreau@example.fr"},
                    {"system": "phone", "value": "06 12 34 56 78", "use": "mobile"},
                ],
                "generalPractitioner": [{"reference": f"Practitioner/{gp}"}],
            },
        )
    )
    pid = patient["id"]
    headers = server.call(
        bearer(
            server.runtime,
            kind="professional",
            scope="openid",
            fhir_user=f"Practitioner/{gp}",
            client_id="hygie-portal",
        )
    )
    base = server.base  # type: ignore[attr-defined]
    with httpx.Client(base_url=f"{base}/fhir", headers=headers, timeout=30) as api:
        created = api.post(
            "Communication",
            json=_message(f"Patient/{pid}", f"Practitioner/{gp}", f"Patient/{pid}", SECRET),
            headers={"Content-Type": "application/fhir+json"},
        )
        assert created.status_code == 201, created.text

        mail = _wait(lambda: inbox.messages)
        assert len(mail) == 1
        recipients, email = mail[0]
        assert recipients == ["julie.moreau@example.fr"]
        assert email["Subject"] == "Nouveau message dans votre espace santé"
        body = email.get_content()
        assert "nouveau message dans votre espace santé" in body
        assert f"{base}/ens/messages" in body
        # no health content: not the text, not the subject line, not who wrote
        for leak in (SECRET, "anatomopathologie", "LEROY", "MOREAU"):
            assert leak not in body and leak not in str(email["Subject"])

        sms_file = tmp_path / "sms.jsonl"
        lines = _wait(lambda: sms_file.is_file() and sms_file.read_text(encoding="utf-8").splitlines())
        assert len(lines) == 1
        sms = json.loads(lines[0])
        assert sms["to"] == "06 12 34 56 78"
        assert (
            sms["body"]
            == "Hygie : vous avez un nouveau message dans votre espace santé. Connectez-vous pour le lire."
        )

        # the person now wants e-mails only; her own message notifies nobody
        current = server.call(door.read(operator, "Patient", pid))
        server.call(door.update(operator, apply_choice(current, "email")))
        own = _message(f"Patient/{pid}", f"Patient/{pid}", f"Practitioner/{gp}", "Merci")
        server.call(door.create(operator, own))
        second = api.post(
            "Communication",
            json=_message(f"Patient/{pid}", f"Practitioner/{gp}", f"Patient/{pid}", "Rappel"),
            headers={"Content-Type": "application/fhir+json"},
        )
        assert second.status_code == 201
        assert _wait(lambda: len(inbox.messages) == 2)
        time.sleep(1)  # a few more rounds: nothing else is sent
        assert len(inbox.messages) == 2
        assert len(sms_file.read_text(encoding="utf-8").splitlines()) == 1
    # each notification went out once, and the outbox kept no body
    outbox = server.runtime.outbox
    assert outbox is not None
    assert server.call(outbox.pending(due_only=False)) == []
