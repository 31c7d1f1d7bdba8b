"""The durable outbox: dedup, delivery, retries with backoff, and the senders — SMTP against a
real local server (aiosmtpd on 127.0.0.1), JSON lines, memory."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from hygie.auth.accounts import AccountService
from hygie.domain.outbox import (
    MAX_ATTEMPTS,
    FileSender,
    MemorySender,
    Message,
    Outbox,
    SendError,
    SmtpSender,
    deliver_pending,
    retry_delay_us,
)
from hygie.ports import KeyValueStore
from hygie.stores.kv import MemoryKeyValueStore, SqliteKeyValueStore, now_us

pytestmark = pytest.mark.anyio

SECOND = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.now = now_us()

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * SECOND)


class FlakySender:
    """Fails its first ``failures`` sends, then delivers to memory."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.sent: list[Message] = []

    async def send(self, message: Message) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise SendError(f"relais indisponible (essai {self.calls})")
        self.sent.append(message)


@pytest.fixture(params=["memory", "sqlite"])
async def kv(request: pytest.FixtureRequest) -> AsyncIterator[KeyValueStore]:
    if request.param == "memory":
        yield MemoryKeyValueStore()
    else:
        store = SqliteKeyValueStore(":memory:")
        yield store
        store.conn.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(kv: KeyValueStore, clock: Clock) -> Outbox:
    return Outbox(kv, clock)


async def test_enqueue_and_pending(outbox: Outbox, clock: Clock) -> None:
    first = await outbox.enqueue("email", "a@exemple.fr", "Objet", "Corps")
    clock.advance(1)
    second = await outbox.enqueue("sms", "+33600000000", "", "Code : 123456")
    pending = await outbox.pending()
    assert [m.id for m in pending] == [first, second]
    assert pending[0].channel == "email" and pending[0].to == "a@exemple.fr"
    assert pending[0].status == "pending" and pending[0].attempts == 0


async def test_dedup_key_enqueues_once(outbox: Outbox) -> None:
    ids = [
        await outbox.enqueue("email", "a@exemple.fr", "Objet", "Corps", dedup_key="rdv-42") for _ in range(3)
    ]
    assert len(set(ids)) == 1
    assert len(await outbox.pending()) == 1
    other = await outbox.enqueue("email", "a@exemple.fr", "Objet", "Corps", dedup_key="rdv-43")
    assert other != ids[0]


async def test_dedup_holds_under_concurrency(outbox: Outbox) -> None:
    ids = await asyncio.gather(
        *(
            outbox.enqueue("email", "a@exemple.fr", "Objet", "Corps", dedup_key="double-clic")
            for _ in range(5)
        )
    )
    assert len(set(ids)) == 1
    assert len(await outbox.pending()) == 1


async def test_dedup_survives_delivery(outbox: Outbox) -> None:
    message_id = await outbox.enqueue("email", "a@exemple.fr", "Objet", "Corps", dedup_key="k")
    assert await deliver_pending(outbox, {"email": MemorySender()}) == (1, 0)
    assert await outbox.enqueue("email", "a@exemple.fr", "Objet", "Corps", dedup_key="k") == message_id
    assert await outbox.pending() == []


async def test_enqueue_validates(outbox: Outbox) -> None:
    with pytest.raises(ValueError, match="channel"):
        await outbox.enqueue("pigeon", "a@exemple.fr", "Objet", "Corps")
    with pytest.raises(ValueError, match="recipient"):
        await outbox.enqueue("email", "  ", "Objet", "Corps")


async def test_delivery_marks_sent(outbox: Outbox) -> None:
    email, sms = MemorySender(), MemorySender()
    message_id = await outbox.enqueue("email", "a@exemple.fr", "Objet", "Corps")
    await outbox.enqueue("sms", "+33600000000", "", "Code")
    assert await deliver_pending(outbox, {"email": email, "sms": sms}) == (2, 0)
    assert [m.body for m in email.sent] == ["Corps"]
    assert [m.body for m in sms.sent] == ["Code"]
    assert await outbox.pending() == []
    sent = await outbox.get(message_id)
    assert sent is not None and sent.status == "sent" and sent.sent_at is not None
    assert sent.body == ""  # the content does not outlive its delivery
    assert sent.to == "a@exemple.fr" and sent.subject == "Objet"
    assert await deliver_pending(outbox, {"email": email, "sms": sms}) == (0, 0)


async def test_failing_sender_is_retried_with_backoff(outbox: Outbox, clock: Clock) -> None:
    sender = FlakySender(failures=2)
    message_id = await outbox.enqueue("email", "a@exemple.fr", "Objet", "Corps")

    assert await deliver_pending(outbox, {"email": sender}) == (0, 1)
    failed = await outbox.get(message_id)
    assert failed is not None
    assert failed.status == "pending" and failed.attempts == 1
    assert failed.last_error == "relais indisponible (essai 1)"
    assert failed.next_attempt == clock() + retry_delay_us(1) == clock() + 30 * SECOND

    assert await deliver_pending(outbox, {"email": sender}) == (0, 0)  # not due yet
    assert await outbox.pending() == []
    assert len(await outbox.pending(due_only=False)) == 1

    clock.advance(30)
    assert await deliver_pending(outbox, {"email": sender}) == (0, 1)
    again = await outbox.get(message_id)
    assert again is not None and again.next_attempt == clock() + 60 * SECOND  # doubled

    clock.advance(60)
    assert await deliver_pending(outbox, {"email": sender}) == (1, 0)
    assert [m.id for m in sender.sent] == [message_id]
    done = await outbox.get(message_id)
    assert done is not None and done.status == "sent" and done.attempts == 3 and done.last_error is None


async def test_backoff_is_capped_and_delivery_gives_up(outbox: Outbox, clock: Clock) -> None:
    assert retry_delay_us(1) == 30 * SECOND
    assert retry_delay_us(20) == 3600 * SECOND
    sender = FlakySender(failures=1_000)
    message_id = await outbox.enqueue("email", "a@exemple.fr", "Objet", "Corps")
    for _ in range(MAX_ATTEMPTS):
        assert await deliver_pending(outbox, {"email": sender}) == (0, 1)
        clock.advance(3600)
    given_up = await outbox.get(message_id)
    assert given_up is not None and given_up.status == "failed" and given_up.attempts == MAX_ATTEMPTS
    assert await deliver_pending(outbox, {"email": sender}) == (0, 0)
    assert sender.calls == MAX_ATTEMPTS


async def test_a_channel_without_sender_counts_as_failed(outbox: Outbox) -> None:
    message_id = await outbox.enqueue("sms", "+33600000000", "", "Code")
    assert await deliver_pending(outbox, {}) == (0, 1)
    failed = await outbox.get(message_id)
    assert failed is not None and "no sender" in (failed.last_error or "")


async def test_one_failure_does_not_stop_the_others(outbox: Outbox) -> None:
    class Broken:
        async def send(self, message: Message) -> None:
            raise RuntimeError("boom")

    sms = MemorySender()
    await outbox.enqueue("email", "a@exemple.fr", "Objet", "Corps")
    await outbox.enqueue("sms", "+33600000000", "", "Code")
    assert await deliver_pending(outbox, {"email": Broken(), "sms": sms}) == (1, 1)
    assert len(sms.sent) == 1


async def test_two_workers_send_each_message_once(outbox: Outbox) -> None:
    class Slow(MemorySender):
        async def send(self, message: Message) -> None:
            await asyncio.sleep(0.01)
            await super().send(message)

    sender = Slow()
    for i in range(4):
        await outbox.enqueue("email", f"u{i}@exemple.fr", "Objet", "Corps")
    results = await asyncio.gather(*(deliver_pending(outbox, {"email": sender}) for _ in range(3)))
    assert sum(sent for sent, _ in results) == 4
    assert sorted(m.to for m in sender.sent) == [f"u{i}@exemple.fr" for i in range(4)]


async def test_file_sender_appends_json_lines(outbox: Outbox, clock: Clock, tmp_path: Path) -> None:
    path = tmp_path / "sms" / "sortie.jsonl"
    await outbox.enqueue("sms", "+33600000001", "", "Votre code : 111111")
    clock.advance(1)
    await outbox.enqueue("sms", "+33600000002", "", "Votre code : 222222 — à bientôt")
    assert await deliver_pending(outbox, {"sms": FileSender(path)}) == (2, 0)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(line["to"], line["body"]) for line in lines] == [
        ("+33600000001", "Votre code : 111111"),
        ("+33600000002", "Votre code : 222222 — à bientôt"),
    ]


async def test_file_sender_failure_is_a_send_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    message = Message("m1", "sms", "+33600000000", "", "x", created=0)
    with pytest.raises(SendError):
        await FileSender(blocker / "out.jsonl").send(message)


# -- SMTP against a real local server ------------------------------------------------------------


class Inbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


async def test_smtp_sender_delivers_the_reset_link(
    kv: KeyValueStore, clock: Clock, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    accounts = AccountService(kv, clock)
    await accounts.create("citizen", "zoe@exemple.fr", "une phrase de passe solide")
    await accounts.start_password_reset("zoe@exemple.fr", "https://hygie.example")

    sender = SmtpSender("127.0.0.1", port, from_address="Hygie <ne-pas-repondre@hygie.example>")
    assert await deliver_pending(accounts.outbox, {"email": sender}) == (1, 0)

    [(mail_from, rcpt_tos, mail)] = inbox.received
    assert mail_from == "ne-pas-repondre@hygie.example"
    assert rcpt_tos == ["zoe@exemple.fr"]
    assert mail["Subject"] == "Hygie : réinitialisation de votre mot de passe"
    body = mail.get_content()
    match = re.search(r"https://hygie\.example/compte/reinitialiser\?jeton=([A-Za-z0-9_-]{43,})", body)
    assert match is not None, body
    assert "Bonjour" in body
    # the link received by mail works, once
    account = await accounts.complete_password_reset(match.group(1), "un tout nouveau mot de passe")
    assert account.login == "zoe@exemple.fr"


async def test_smtp_sender_builds_utf8_mail() -> None:
    sender = SmtpSender("127.0.0.1", 25)
    mail = sender.build(Message("m1", "email", "élodie@exemple.fr", "Objet accentué", "Corps é", created=0))
    assert mail["Subject"] == "Objet accentué"
    assert mail.get_content().strip() == "Corps é"
    assert "m1" in mail["Message-ID"]


async def test_smtp_failure_is_retried(outbox: Outbox, clock: Clock) -> None:
    message_id = await outbox.enqueue("email", "a@exemple.fr", "Objet", "Corps")
    closed = SmtpSender("127.0.0.1", free_port(), timeout=2)
    assert await deliver_pending(outbox, {"email": closed}) == (0, 1)
    failed = await outbox.get(message_id)
    assert failed is not None and failed.status == "pending" and (failed.last_error or "").startswith("SMTP")


async def test_smtp_sender_refuses_sms_and_credentials_without_tls() -> None:
    with pytest.raises(SendError):
        await SmtpSender("127.0.0.1", 25).send(Message("m", "sms", "+33600000000", "", "x", created=0))
    with pytest.raises(ValueError, match="STARTTLS"):
        SmtpSender("smtp.exemple.fr", 587, username="hygie", password="x")
