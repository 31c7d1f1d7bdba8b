"""The server's background delivery: notifications of new messages, then the outbox.

Started by the application's lifespan (``web/app.py``) when ``HYGIE_OUTBOX_INTERVAL`` > 0; every
interval it

1. finds the Communications written since the last round (the store's ``_lastUpdated`` index:
   ids and times only) and, for each one addressed to a patient by someone else
   (``domain/ens/notifications.py``), reads it and the contact details of whoever is told —
   the person as they chose, and the legal representatives who run a minor's space
   (:func:`~hygie.domain.ens.notifications.audience`) — through the FHIR service as the operator
   ``notifications`` (audited like any access), and enqueues an e-mail and/or an SMS with no
   health content, once per message and destination (de-duplication key);
2. runs the personal-threshold watch over the patients of the Observations written since the
   last round (``domain/ens/vitals_watch.py``);
3. hands the due messages of the outbox to the senders (:func:`~hygie.domain.outbox.deliver_pending`),
   which retries failures with a backoff;
4. once a day (the first round of each UTC day, claimed in the shared key-value store so that one
   process of several runs it), erases the records of closed spaces whose archive period has
   ended (:func:`~hygie.domain.ens.purge.run_daily`, the same as ``hygie ens purger``).

Senders come from the configuration (:func:`senders_from`): e-mail through SMTP when
``HYGIE_SMTP_HOST`` is set (``HYGIE_SMTP_PORT``, ``HYGIE_SMTP_FROM``, ``HYGIE_SMTP_STARTTLS``,
``HYGIE_SMTP_USERNAME``/``PASSWORD``), else appended to ``<data_dir>/mail.jsonl``; SMS appended to
``<data_dir>/sms.jsonl`` (``HYGIE_SMS_FILE``) — the demo's gateway; a real SMS provider is a
:class:`~hygie.domain.outbox.Sender` to plug in here. Several server processes may run it at
once: the outbox leases each message and the notifications are de-duplicated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hygie.domain.access import Caller
from hygie.domain.ens.notifications import OPERATOR, hidden_from_representatives, notification_patient, tell
from hygie.domain.outbox import FileSender, Sender, SmtpSender, deliver_pending
from hygie.fhir.search import parse_search

if TYPE_CHECKING:
    from hygie.bootstrap import Runtime
    from hygie.config import Settings
    from hygie.ports import StoredResource

__all__ = ["DeliveryWorker", "running", "senders_from"]

log = logging.getLogger("hygie.delivery")

_CURSOR_KIND = "ens-notify-cursor"
_DONE_KIND = "ens-notified"
_PURGE_KIND = "ens-purge-day"  # the UTC day whose purge a process has claimed
_SECOND_US = 1_000_000
_OVERLAP_US = 60 * _SECOND_US  # writes commit out of order: look a minute back each round
_FIRST_LOOK_US = 10 * 60 * _SECOND_US  # on first start, what was written in the last ten minutes
_FRESH_US = 2 * 24 * 3600 * _SECOND_US  # an older message (an import, a restore) is not news
_DONE_TTL_US = 7 * 24 * 3600 * _SECOND_US
_PAGE = 200


def senders_from(settings: Settings) -> dict[str, Sender]:
    """The outbox's senders by channel, as configured."""
    email: Sender
    if settings.smtp_host:
        email = SmtpSender(
            settings.smtp_host,
            settings.smtp_port,
            from_address=settings.smtp_from,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=settings.smtp_password,
        )
    else:
        email = FileSender(settings.mail_file or settings.data_dir / "mail.jsonl")
    return {"email": email, "sms": FileSender(settings.sms_file or settings.data_dir / "sms.jsonl")}


def _iso(micros: int) -> str:
    return datetime.fromtimestamp(micros / _SECOND_US, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def _us(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * _SECOND_US)


class DeliveryWorker:
    """One round at a time: :meth:`notify_new_messages`, then :meth:`deliver`."""

    def __init__(self, runtime: Runtime, senders: dict[str, Sender] | None = None) -> None:
        from hygie.bootstrap import clock_us  # noqa: PLC0415
        from hygie.web.portal.door import Door  # noqa: PLC0415

        self.runtime = runtime
        self.senders = senders if senders is not None else senders_from(runtime.settings)
        self.door = Door(runtime.service)
        self.clock = clock_us
        self.caller = Caller.operator(OPERATOR)

    async def notify_new_messages(self) -> int:
        """Enqueue the notifications of the Communications written since the last round."""
        kv, outbox = self.runtime.kv, self.runtime.outbox
        assert outbox is not None
        now = self.clock()
        rows, latest = await self._written_since("Communication", now)
        enqueued = 0
        for row in rows:
            if row.deleted or await kv.get(_DONE_KIND, row.id) is not None:
                continue
            message = await self.door.read(self.caller, "Communication", row.id)
            patient_id = notification_patient(message) if message else None
            sent = _us((message or {}).get("sent")) or row.last_updated
            if patient_id is not None and now - sent <= _FRESH_US:
                enqueued += await tell(
                    self.door,
                    outbox,
                    patient_id,
                    "message",
                    row.id,
                    now_us=now,
                    majority_age=self.runtime.settings.majority_age,
                    base_url=self.runtime.settings.base_url,
                    hidden=hidden_from_representatives(message),
                )
            await kv.put(_DONE_KIND, row.id, {"at": now}, expires_us=now + _DONE_TTL_US)
        await kv.put(_CURSOR_KIND, "Communication", {"since": latest})
        return enqueued

    async def _written_since(self, resource_type: str, now: int) -> tuple[list[StoredResource], int]:
        """The rows of ``resource_type`` written since the last round (ids and times from the
        ``_lastUpdated`` index, a page at a time), and the time the next round starts from."""
        cursor = await self.runtime.kv.get(_CURSOR_KIND, resource_type)
        since = int(cursor["since"]) if cursor else now - _FIRST_LOOK_US
        query = parse_search(
            resource_type,
            [
                ("_lastUpdated", f"ge{_iso(since - _OVERLAP_US)}"),
                ("_sort", "_lastUpdated"),
                ("_count", str(_PAGE)),
            ],
            max_count=_PAGE,
        )
        page = await self.runtime.store.search(query, now_us=now)
        return page.resources, max([since, *(row.last_updated for row in page.resources)])

    async def watch_thresholds(self) -> int:
        """Personal thresholds (``domain/ens/vitals_watch.py``) crossed by the Observations written
        since the last round, whoever wrote them (the person, a professional, an app)."""
        from hygie.domain.ens.vitals_watch import ThresholdWatch  # noqa: PLC0415

        kv, outbox = self.runtime.kv, self.runtime.outbox
        assert outbox is not None
        rows, latest = await self._written_since("Observation", self.clock())
        patients = [row.patient for row in rows if row.patient]
        watch = ThresholdWatch(
            self.door,
            kv,
            outbox,
            self.clock,
            majority_age=self.runtime.settings.majority_age,
            base_url=self.runtime.settings.base_url,
        )
        crossed = await watch.sweep(self.caller, patients)
        await kv.put(_CURSOR_KIND, "Observation", {"since": latest})
        return crossed

    async def deliver(self) -> tuple[int, int]:
        assert self.runtime.outbox is not None
        return await deliver_pending(self.runtime.outbox, self.senders)

    async def purge_when_due(self) -> int:
        """The day's purge of expired closed spaces, by the first process to claim the day;
        the number of records erased (0 when another process has the day)."""
        from hygie.domain.ens.lifecycle import SpaceRules  # noqa: PLC0415
        from hygie.domain.ens.purge import run_daily  # noqa: PLC0415

        now = self.clock()
        day = datetime.fromtimestamp(now / _SECOND_US, UTC).date().isoformat()
        if not await self.runtime.kv.add(_PURGE_KIND, day, {"at": now}, expires_us=now + _DONE_TTL_US):
            return 0
        settings = self.runtime.settings
        report = await run_daily(
            self.runtime.store,
            self.runtime.audit,
            self.clock,
            SpaceRules(opt_out_days=settings.ens_opt_out_days, archive_years=settings.ens_archive_years),
            server=self.runtime.service.server,
        )
        return len(report.purged)

    async def round(self) -> None:
        notified = await self.notify_new_messages()
        notified += await self.watch_thresholds()
        sent, failed = await self.deliver()
        if notified or sent or failed:
            log.info("delivery: %d notifications queued, %d sent, %d failed", notified, sent, failed)
        purged = await self.purge_when_due()
        if purged:
            log.info("purge: %d closed health spaces erased at the end of their archive period", purged)

    async def run(self, interval: float) -> None:
        """Rounds forever, ``interval`` seconds apart; a failing round is logged, not fatal."""
        while True:
            await asyncio.sleep(interval)  # the first round once the server has settled
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery round failed")


@contextlib.asynccontextmanager
async def running(runtime: Runtime) -> AsyncIterator[asyncio.Task[None] | None]:
    """The delivery worker as a background task for the lifetime of the block (none when the
    interval is 0)."""
    interval = runtime.settings.outbox_interval
    task = asyncio.create_task(DeliveryWorker(runtime).run(interval)) if interval > 0 else None
    try:
        yield task
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
