"""A durable outbox for e-mails and SMS, on the :class:`~hygie.ports.KeyValueStore`.

Why an outbox: the code that decides to send a message (a password reset, a notification)
must not wait on, nor fail with, an SMTP server. It records the message (:meth:`Outbox.enqueue`)
and returns; :func:`deliver_pending` hands due messages to the senders later, retrying a failed
one with an exponential backoff, so a mail server down for an hour loses nothing.

Records (kind ``outbox``, key = the message id) hold the whole message and its delivery state:
``pending`` (to send at ``next_attempt``), ``sent`` (body dropped, envelope kept
``SENT_RETENTION_US`` so that a de-duplication key keeps working), ``failed`` (given up after
``MAX_ATTEMPTS``). A message enqueued with a ``dedup_key`` gets an id derived from that key and
is inserted with ``add``: a double submission (a double click, a retried request) enqueues it
once, atomically.

Two delivery workers may run: each message is leased (kind ``outbox-lease``, ``add``) before it
is handed to a sender, so it is sent once even then (at least once if a worker dies mid-send).

Senders: :class:`SmtpSender` (e-mail, stdlib ``smtplib``), :class:`FileSender` (JSON lines, the
demo's SMS gateway) and :class:`MemorySender` (tests).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import smtplib
import ssl
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from hygie.ports import KeyValueStore


def now_us() -> int:
    """Microseconds since the epoch (UTC): the default clock."""
    return time.time_ns() // 1000


__all__ = [
    "FileSender",
    "MemorySender",
    "Message",
    "Outbox",
    "SendError",
    "Sender",
    "SmtpSender",
    "deliver_pending",
    "retry_delay_us",
]

log = logging.getLogger("hygie.outbox")

Channel = Literal["email", "sms"]
Status = Literal["pending", "sent", "failed"]
CHANNELS: frozenset[str] = frozenset({"email", "sms"})

KIND = "outbox"
LEASE_KIND = "outbox-lease"
SECOND_US = 1_000_000
SENT_RETENTION_US = 7 * 24 * 3600 * SECOND_US
FAILED_RETENTION_US = 30 * 24 * 3600 * SECOND_US
LEASE_US = 120 * SECOND_US  # longer than any send (the SMTP timeout is 30 s)
MAX_ATTEMPTS = 8
RETRY_BASE_US = 30 * SECOND_US
RETRY_MAX_US = 3600 * SECOND_US
MAX_ERROR_CHARS = 500


class SendError(Exception):
    """A sender could not hand the message over (the outbox will retry it)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One message and its delivery state. Times are microseconds since the epoch, UTC."""

    id: str
    channel: Channel
    to: str
    subject: str
    body: str
    created: int
    status: Status = "pending"
    attempts: int = 0
    next_attempt: int = 0
    last_error: str | None = None
    sent_at: int | None = None

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Message:
        return cls(
            id=str(record["id"]),
            channel=cast(Channel, record["channel"]),
            to=str(record["to"]),
            subject=str(record["subject"]),
            body=str(record["body"]),
            created=int(record["created"]),
            status=cast(Status, record.get("status", "pending")),
            attempts=int(record.get("attempts", 0)),
            next_attempt=int(record.get("next_attempt", 0)),
            last_error=record.get("last_error"),
            sent_at=record.get("sent_at"),
        )


def _system_clock() -> int:
    return now_us()


class Outbox:
    """Messages waiting to be sent, stored in ``kv``; ``clock`` gives microseconds (UTC)."""

    def __init__(self, kv: KeyValueStore, clock: Callable[[], int] = _system_clock) -> None:
        self.kv = kv
        self.clock = clock

    async def enqueue(
        self, channel: str, to: str, subject: str, body: str, *, dedup_key: str | None = None
    ) -> str:
        """Record a message to send; return its id.

        With ``dedup_key``, the id is derived from the key and the message is inserted only if
        absent: enqueuing twice with the same key records one message and returns its id twice.
        """
        if channel not in CHANNELS:
            raise ValueError(f"unknown outbox channel {channel!r} (expected one of {sorted(CHANNELS)})")
        if not to.strip():
            raise ValueError("an outbox message needs a recipient")
        if dedup_key is not None:
            message_id = "d-" + hashlib.sha256(dedup_key.encode()).hexdigest()[:32]
        else:
            message_id = uuid.uuid4().hex
        now = self.clock()
        message = Message(
            id=message_id,
            channel=cast(Channel, channel),
            to=to.strip(),
            subject=subject,
            body=body,
            created=now,
            next_attempt=now,
        )
        if not await self.kv.add(KIND, message_id, message.to_record()):
            log.info("outbox: message %s already enqueued (dedup)", message_id)
        return message_id

    async def get(self, message_id: str) -> Message | None:
        record = await self.kv.get(KIND, message_id)
        return None if record is None else Message.from_record(record)

    async def pending(self, *, due_only: bool = True) -> list[Message]:
        """Messages still to send, oldest first; with ``due_only``, those whose retry time came."""
        now = self.clock()
        messages = [Message.from_record(record) for _, record in await self.kv.list(KIND)]
        return sorted(
            (m for m in messages if m.status == "pending" and (not due_only or m.next_attempt <= now)),
            key=lambda m: (m.created, m.id),
        )

    async def mark_sent(self, message_id: str) -> None:
        """Record the delivery. The record is kept a week so that its dedup key still holds, but
        its body is dropped: it may carry a live reset link or health information, which must
        not outlive its purpose in the store (and its backups)."""
        message = await self.get(message_id)
        if message is None:
            return
        now = self.clock()
        sent = replace(
            message, status="sent", sent_at=now, attempts=message.attempts + 1, last_error=None, body=""
        )
        await self.kv.put(KIND, message_id, sent.to_record(), expires_us=now + SENT_RETENTION_US)

    async def mark_failed(self, message_id: str, error: str, retry_at: int | None) -> None:
        """Record a failed attempt: retry at ``retry_at`` (µs), or give up when it is None."""
        message = await self.get(message_id)
        if message is None:
            return
        failed = replace(message, attempts=message.attempts + 1, last_error=error[:MAX_ERROR_CHARS])
        if retry_at is None:
            failed = replace(failed, status="failed")
            await self.kv.put(
                KIND, message_id, failed.to_record(), expires_us=self.clock() + FAILED_RETENTION_US
            )
        else:
            await self.kv.put(KIND, message_id, replace(failed, next_attempt=retry_at).to_record())

    async def lease(self, message_id: str) -> bool:
        """Claim the message for one delivery attempt (False if another worker holds it).

        The lease's end is also kept in the record and checked with this outbox's clock, so a
        lease that lapsed by that clock is taken over even if the store has not purged it yet.
        """
        now = self.clock()
        lease = {"until": now + LEASE_US}
        if await self.kv.add(LEASE_KIND, message_id, lease, expires_us=now + LEASE_US):
            return True
        held = await self.kv.get(LEASE_KIND, message_id)
        if held is not None and int(held.get("until", 0)) > now:
            return False
        await self.kv.delete(LEASE_KIND, message_id)
        return await self.kv.add(LEASE_KIND, message_id, lease, expires_us=now + LEASE_US)

    async def release(self, message_id: str) -> None:
        await self.kv.delete(LEASE_KIND, message_id)


class Sender(Protocol):
    """Hands a message to the outside world; raises (preferably :class:`SendError`) on failure."""

    async def send(self, message: Message) -> None: ...


class SmtpSender:
    """E-mail through an SMTP server, with the standard library.

    Plain SMTP suits a relay on loopback (a local Postfix, the tests' server); ``starttls``
    upgrades the connection with certificate verification before anything else is said, for a
    remote relay (then ``username``/``password`` log in, only over TLS).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        from_address: str = "Hygie <ne-pas-repondre@hygie.localhost>",
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if username is not None and not starttls:
            raise ValueError("SMTP credentials are only sent over STARTTLS")
        self.host = host
        self.port = port
        self.from_address = from_address
        self.starttls = starttls
        self.username = username
        self.password = password
        self.timeout = timeout
        self.tls_context = tls_context

    def build(self, message: Message) -> EmailMessage:
        """The MIME message for ``message`` (UTF-8 plain text)."""
        email = EmailMessage()
        email["From"] = self.from_address
        email["To"] = message.to
        email["Subject"] = message.subject
        email["Date"] = formatdate(localtime=False)
        email["Message-ID"] = make_msgid(idstring=message.id, domain="hygie.localhost")
        email.set_content(message.body)
        return email

    def _send_now(self, message: Message) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=self.tls_context or ssl.create_default_context())
                if self.username is not None:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(self.build(message))
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"SMTP {self.host}:{self.port}: {exc}") from exc

    async def send(self, message: Message) -> None:
        if message.channel != "email":
            raise SendError(f"SmtpSender cannot send {message.channel} messages")
        await asyncio.to_thread(self._send_now, message)


class FileSender:
    """Appends each message as one JSON line to ``path`` (the demo's SMS "gateway")."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _append(self, message: Message) -> None:
        line = json.dumps(
            {
                "id": message.id,
                "channel": message.channel,
                "to": message.to,
                "subject": message.subject,
                "body": message.body,
            },
            ensure_ascii=False,
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
        except OSError as exc:
            raise SendError(f"{self.path}: {exc}") from exc

    async def send(self, message: Message) -> None:
        await asyncio.to_thread(self._append, message)


class MemorySender:
    """Keeps what it is given, in order (tests)."""

    def __init__(self) -> None:
        self.sent: list[Message] = []

    async def send(self, message: Message) -> None:
        self.sent.append(message)


def retry_delay_us(attempts: int) -> int:
    """The wait before the next try after ``attempts`` failures: 30 s, 1 min, 2 min… up to 1 h."""
    return int(min(RETRY_MAX_US, RETRY_BASE_US * 2 ** max(0, attempts - 1)))


async def _send(sender: Sender | None, message: Message) -> str | None:
    """Hand ``message`` to ``sender``; the error text on failure, None on success."""
    if sender is None:
        return f"no sender configured for channel {message.channel!r}"
    try:
        await sender.send(message)
    except Exception as exc:  # any sender failure is retried, not allowed to stop the others
        return str(exc) or type(exc).__name__
    return None


async def deliver_pending(
    outbox: Outbox, senders: Mapping[str, Sender], *, max_attempts: int = MAX_ATTEMPTS
) -> tuple[int, int]:
    """Send every due message through the sender of its channel; return ``(sent, failed)``.

    A failed message is retried after :func:`retry_delay_us`, and given up (status ``failed``)
    after ``max_attempts`` tries. A message of a channel with no sender counts as failed too:
    a misconfiguration shows in the counts and the record instead of passing silently.
    """
    sent = failed = 0
    for message in await outbox.pending():
        if not await outbox.lease(message.id):
            continue
        try:
            current = await outbox.get(message.id)  # another worker may have handled it meanwhile
            if current is None or current.status != "pending" or current.next_attempt > outbox.clock():
                continue
            error = await _send(senders.get(current.channel), current)
            if error is None:
                sent += 1
                await outbox.mark_sent(current.id)
            else:
                failed += 1
                attempts = current.attempts + 1
                retry_at = None if attempts >= max_attempts else outbox.clock() + retry_delay_us(attempts)
                log.warning(
                    "outbox: %s message %s failed (attempt %d): %s",
                    current.channel,
                    current.id,
                    attempts,
                    error,
                )
                await outbox.mark_failed(current.id, error, retry_at)
        finally:
            await outbox.release(message.id)
    return sent, failed
