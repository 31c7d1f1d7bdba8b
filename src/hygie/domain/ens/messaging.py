"""Secure messaging between a person and their care team, as FHIR ``Communication`` resources.

**One message, one Communication**: ``subject`` = the patient, ``sender`` and ``recipient``,
``sent``, ``payload`` (the text as ``contentString``; an attached file as a ``contentReference``
to a DocumentReference of the record), ``category`` = :data:`MESSAGE_CATEGORY`, ``topic.text``
= the thread's subject line. ``received`` is set when the recipient opens the message (the
read receipt, "Lu le …"), through the ``$mark-received`` operation
(``fhir/operations/messaging.py``) so that nobody has to be allowed to rewrite someone
else's message to acknowledge it.

**Threads**: the first message of a conversation is its root; every reply has
``partOf`` = the root and ``inResponseTo`` = the message it answers. Why ``partOf`` rather than
a shared ``identifier`` or the ``inResponseTo`` chain alone: a business identifier names one
resource (sharing it across messages would misuse it and break conditional references), and
R4 defines no search parameter on ``inResponseTo``, so a chain can only be walked message by
message; ``part-of`` *is* a search parameter, so a whole thread is one search
(``Communication?part-of=Communication/<root>``) for the patient's portal and for any
professional's software. ``inResponseTo`` is still written, for the exact reply structure.

**Attachments**: a file the person attaches becomes a ``Binary`` filed in their own record (its
``securityContext``) and a ``DocumentReference`` pointing at it (author = who wrote), created in
the same transaction as the message: the same access rules as any document protect it, the
recipient reads it through the API, and a failure leaves none of the three. A document already
in the record can be attached by reference instead. Files are checked: PDF, JPEG or PNG only,
at most :data:`MAX_ATTACHMENT_BYTES`, and they must really be what they claim (signature and
decoding). A professional's file arrives inside their message instead (``contentAttachment``,
:func:`carried_attachment`): it is not a document of the shared record — which a professional
deposits with its DMP metadata — and it is exactly as private as the message.

**Who can be written to**: the professionals and structures of the patient's care team
(active ``CareTeam`` participants, the médecin traitant ``Patient.generalPractitioner``) who
accept messages from patients — the ``accepts-patient-messages`` extension
(:data:`ACCEPTS_MESSAGES_URL`, ``valueBoolean``) on one of their ``PractitionerRole`` (or on the
``PractitionerRole``/``Organization`` named directly). The professional portal reuses it.
In Mon espace santé only professionals open a conversation; Hygie lets the person open one
too, with the professionals who said so by this flag.

**Whose side**: a conversation reads differently from each end — "mine", "new" — so threads are
built for a :class:`Mailbox`: the person's (:func:`patient_mailbox`: the patient and the
relatives acting in their space) or a professional's (``domain/bsp/messaging.py``: the
practitioner and their structure). The professionals' portal builds its threads with the same
functions; a message between professionals names no patient when it is about none (``subject``
is then absent and the access rules keep it to its parties).
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from hygie.domain.access import Caller
from hygie.domain.ens.records_port import Records

__all__ = [
    "ACCEPTS_MESSAGES_URL",
    "ALLOWED_TYPES",
    "MAX_ATTACHMENT_BYTES",
    "MESSAGE_CATEGORY",
    "Contact",
    "Mailbox",
    "MessageView",
    "ThreadView",
    "accepts_messages",
    "attachment_problem",
    "attachment_resources",
    "care_contacts",
    "carried_attachment",
    "carried_file",
    "french_datetime",
    "group_threads",
    "instant_of",
    "is_message",
    "new_message",
    "patient_mailbox",
    "thread_root",
    "unread_for_patient",
    "view_message",
]

HYGIE_FHIR = "https://hygie.example/fhir"
ACCEPTS_MESSAGES_URL = f"{HYGIE_FHIR}/StructureDefinition/accepts-patient-messages"
CATEGORY_SYSTEM = f"{HYGIE_FHIR}/CodeSystem/ens-communication"
MESSAGE_CATEGORY: dict[str, str] = {
    "system": CATEGORY_SYSTEM,
    "code": "message",
    "display": "Message sécurisé",
}
MAX_SUBJECT_CHARS = 150
MAX_TEXT_CHARS = 5000
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
ALLOWED_TYPES: dict[str, str] = {
    "application/pdf": "PDF",
    "image/jpeg": "JPEG",
    "image/png": "PNG",
}
PARIS = ZoneInfo("Europe/Paris")


# -- time -------------------------------------------------------------------------------------


def instant_of(micros: int) -> str:
    """A FHIR instant (UTC, seconds) for microseconds since the epoch."""
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def french_datetime(value: str | None) -> str:
    """``12/03/2026 à 14h05`` (Paris time) for a FHIR dateTime; empty when unknown."""
    parsed = _parse(value)
    if parsed is None:
        return ""
    local = parsed.astimezone(PARIS)
    return local.strftime("%d/%m/%Y à %Hh%M")


# -- the directory flag -------------------------------------------------------------------------


def accepts_messages(resource: dict[str, Any] | None) -> bool:
    """Does this PractitionerRole, Practitioner or Organization accept messages from patients?"""
    if not resource or resource.get("active") is False:
        return False
    return any(
        isinstance(ext, dict) and ext.get("url") == ACCEPTS_MESSAGES_URL and ext.get("valueBoolean") is True
        for ext in resource.get("extension", []) or []
    )


def _name(resource: dict[str, Any] | None) -> str:
    if not resource:
        return ""
    if resource.get("resourceType") == "Organization":
        return str(resource.get("name") or "")
    names = resource.get("name") or [{}]
    chosen = next((n for n in names if n.get("use") == "usual"), None) or names[0]
    prefix = " ".join(chosen.get("prefix", []) or [])
    given = " ".join((chosen.get("given") or [])[:1])
    family = str(chosen.get("family", "")).upper()
    return " ".join(p for p in (prefix, given, family) if p) or str(chosen.get("text", ""))


@dataclass(frozen=True, slots=True)
class Contact:
    """Someone of the care team the person may write to."""

    reference: str  # Practitioner/…, PractitionerRole/… or Organization/…
    name: str  # "Dr Paul BERNARD"
    role: str  # "médecin traitant", "équipe de soins", "structure de soins"
    place: str = ""  # the structure of the accepting role

    @property
    def label(self) -> str:
        where = f", {self.place}" if self.place else ""
        return f"{self.name} — {self.role}{where}"


def _ref(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("reference"), str):
        ref: str = value["reference"]
        if ref.count("/") == 1 and not ref.startswith(("#", "urn:")):
            return ref
    return None


async def care_contacts(records: Records, caller: Caller, patient_id: str) -> list[Contact]:
    """The care-team professionals and structures of the patient who accept messages.

    The médecin traitant first, then the active CareTeams' members; a practitioner accepts
    messages when one of their active PractitionerRoles carries the flag."""
    patient = await records.read(caller, "Patient", patient_id)
    members: list[tuple[str, str]] = []  # (reference, role)
    for gp in (patient or {}).get("generalPractitioner", []) or []:
        ref = _ref(gp)
        if ref:
            members.append((ref, "médecin traitant"))
    teams = await records.search(
        caller, "CareTeam", [("subject", f"Patient/{patient_id}"), ("status", "active")], limit=100
    )
    for team in teams:
        for participant in team.get("participant", []) or []:
            ref = _ref(participant.get("member")) if isinstance(participant, dict) else None
            if ref and ref.startswith(("Practitioner/", "PractitionerRole/", "Organization/")):
                members.append((ref, "équipe de soins"))
    out: list[Contact] = []
    seen: set[str] = set()
    for ref, role in members:
        contact = await _contact(records, caller, ref, role)
        if contact is not None and contact.reference not in seen:
            seen.add(contact.reference)
            out.append(contact)
    return out


async def _contact(records: Records, caller: Caller, ref: str, role: str) -> Contact | None:
    rtype, rid = ref.split("/", 1)
    if rtype == "Organization":
        org = await records.read(caller, "Organization", rid)
        return Contact(ref, _name(org), "structure de soins") if accepts_messages(org) else None
    if rtype == "PractitionerRole":
        role_res = await records.read(caller, "PractitionerRole", rid)
        if not accepts_messages(role_res):
            return None
        practitioner_ref = _ref((role_res or {}).get("practitioner"))
        if practitioner_ref is None:
            return None
        practitioner = await records.read(caller, "Practitioner", practitioner_ref.split("/", 1)[1])
        if practitioner is None or practitioner.get("active") is False:
            return None
        place = str(((role_res or {}).get("organization") or {}).get("display") or "")
        return Contact(practitioner_ref, _name(practitioner), role, place)
    if rtype != "Practitioner":
        return None
    practitioner = await records.read(caller, "Practitioner", rid)
    if practitioner is None or practitioner.get("active") is False:
        return None
    roles = await records.search(
        caller, "PractitionerRole", [("practitioner", ref), ("active", "true")], limit=20
    )
    accepting = [r for r in roles if accepts_messages(r)]
    if not accepting and not accepts_messages(practitioner):
        return None
    place = str((accepting[0].get("organization") or {}).get("display") or "") if accepting else ""
    return Contact(ref, _name(practitioner), role, place)


# -- attachments --------------------------------------------------------------------------------


def attachment_problem(content_type: str, data: bytes) -> str | None:
    """Why this file cannot be attached (in French), or None when it can."""
    if not data:
        return "Le fichier est vide."
    if len(data) > MAX_ATTACHMENT_BYTES:
        return f"Le fichier dépasse la taille maximale de {MAX_ATTACHMENT_BYTES // (1024 * 1024)} Mo."
    kind = sniff_type(data)
    if kind is None:
        return "Ce type de fichier n’est pas accepté : joignez un PDF, une photo JPEG ou une image PNG."
    declared = content_type.split(";", maxsplit=1)[0].strip().lower()
    if declared not in ("", "application/octet-stream", kind) and declared in ALLOWED_TYPES:
        return "Le contenu du fichier ne correspond pas à son type. Vérifiez le fichier et recommencez."
    if not _intact(kind, data):
        return "Ce fichier semble abîmé et ne peut pas être ouvert. Vérifiez-le et recommencez."
    return None


def sniff_type(data: bytes) -> str | None:
    """The accepted MIME type the bytes really are (by signature), or None."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None


def _intact(kind: str, data: bytes) -> bool:
    if kind == "application/pdf":
        return b"%%EOF" in data[-2048:]
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415 - only for images

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return False
    return True


def safe_filename(filename: str, kind: str) -> str:
    """A plain file name (no path, no control characters) with the right extension."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable() and c not in '"<>:|?*').strip() or "piece-jointe"
    extension = {"application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png"}[kind]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return stem[:100] + extension


def attachment_resources(
    patient_ref: str, author_ref: str, filename: str, data: bytes, now_us: int, binary_url: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Binary (filed in the patient's record by its ``securityContext``) and the
    DocumentReference pointing at it (``binary_url``: its future address, e.g. a transaction's
    ``urn:uuid``) for a file attached to a message, checked beforehand."""
    kind = sniff_type(data)
    assert kind is not None
    name = safe_filename(filename, kind)
    binary = {
        "resourceType": "Binary",
        "contentType": kind,
        "securityContext": {"reference": patient_ref},
        "data": base64.b64encode(data).decode("ascii"),
    }
    document = {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {
            "coding": [{"system": "http://loinc.org", "code": "51855-5", "display": "Patient Note"}],
            "text": "Pièce jointe à un message",
        },
        "subject": {"reference": patient_ref},
        "date": instant_of(now_us),
        "author": [{"reference": author_ref}],
        "description": name,
        "content": [
            {
                "attachment": {
                    "contentType": kind,
                    "url": binary_url,
                    "size": len(data),
                    "hash": base64.b64encode(hashlib.sha1(data).digest()).decode("ascii"),
                    "title": name,
                    "creation": instant_of(now_us),
                }
            }
        ],
    }
    return binary, document


def carried_attachment(filename: str, data: bytes, now_us: int) -> dict[str, Any]:
    """A file (checked beforehand) as a message carries it: a ``contentAttachment`` with its data."""
    kind = sniff_type(data)
    if kind is None:
        raise ValueError("an attached file is checked before it is carried (attachment_problem)")
    name = safe_filename(filename, kind)
    return {
        "contentType": kind,
        "data": base64.b64encode(data).decode("ascii"),
        "size": len(data),
        "hash": base64.b64encode(hashlib.sha1(data).digest()).decode("ascii"),
        "title": name,
        "creation": instant_of(now_us),
    }


def carried_file(message: dict[str, Any], index: int) -> tuple[bytes, str, str] | None:
    """The file carried at ``payload[index]``: (bytes, content type, title), or None."""
    payload = message.get("payload") or []
    if not 0 <= index < len(payload) or not isinstance(payload[index], dict):
        return None
    attachment = payload[index].get("contentAttachment")
    if not isinstance(attachment, dict) or not isinstance(attachment.get("data"), str):
        return None
    try:
        data = base64.b64decode(attachment["data"], validate=True)
    except ValueError:
        return None
    return data, str(attachment.get("contentType") or ""), str(attachment.get("title") or "piece-jointe")


# -- messages and threads ----------------------------------------------------------------------


def is_message(resource: dict[str, Any], codes: frozenset[str] = frozenset({"message"})) -> bool:
    """A secure message of Hygie's category (``codes``: which kinds, a message with the patient
    by default)."""
    return any(
        coding.get("system") == CATEGORY_SYSTEM and coding.get("code") in codes
        for concept in resource.get("category", []) or []
        if isinstance(concept, dict)
        for coding in concept.get("coding", []) or []
        if isinstance(coding, dict)
    )


def new_message(
    *,
    patient_ref: str | None,
    sender: tuple[str, str],
    recipients: Sequence[tuple[str, str]],
    subject: str,
    text: str,
    now_us: int,
    root_id: str | None = None,
    in_response_to: str | None = None,
    attachments: Iterable[tuple[str, str]] = (),
    category: dict[str, str] = MESSAGE_CATEGORY,
) -> dict[str, Any]:
    """A message (``sender`` and ``recipients`` as (reference, display)) about ``patient_ref``
    (None: about no patient); a reply names the thread's root and the message it answers;
    ``attachments`` are (reference, title)."""
    payload: list[dict[str, Any]] = [{"contentString": text}]
    payload.extend({"contentReference": {"reference": ref, "display": title}} for ref, title in attachments)
    message: dict[str, Any] = {
        "resourceType": "Communication",
        "status": "completed",
        "category": [{"coding": [dict(category)]}],
        "topic": {"text": subject},
        "sent": instant_of(now_us),
        "sender": _party(sender),
        "recipient": [_party(r) for r in recipients],
        "payload": payload,
    }
    if patient_ref is not None:
        message["subject"] = {"reference": patient_ref}
    if root_id:
        message["partOf"] = [{"reference": f"Communication/{root_id}"}]
    if in_response_to:
        message["inResponseTo"] = [{"reference": f"Communication/{in_response_to}"}]
    return message


def _party(party: tuple[str, str]) -> dict[str, str]:
    ref, display = party
    return {"reference": ref, "display": display} if display else {"reference": ref}


def thread_root(message: dict[str, Any]) -> str:
    """The id of the first message of the conversation this message belongs to."""
    for part in message.get("partOf", []) or []:
        ref = _ref(part)
        if ref and ref.startswith("Communication/"):
            return ref.split("/", 1)[1]
    return str(message.get("id", ""))


@dataclass(frozen=True, slots=True)
class Mailbox:
    """The end a conversation is read from: which references are "us".

    ``own`` are the references whose messages are ours and to which a message is ours to open;
    ``also_ours`` are reference kinds whose messages count as ours too (a relative writing in the
    person's space); ``unaddressed`` says whether a message naming no recipient is ours to open
    (in a person's record, it is for them)."""

    own: frozenset[str]
    also_ours: tuple[str, ...] = ()
    unaddressed: bool = False

    def ours(self, ref: str | None) -> bool:
        """Written from this end?"""
        if not ref:
            return False
        return ref in self.own or (bool(self.also_ours) and ref.startswith(self.also_ours))

    def unread(self, message: dict[str, Any]) -> bool:
        """A message to this end that nobody here has opened yet."""
        if self.ours(_ref(message.get("sender"))) or message.get("received"):
            return False
        recipients = [_ref(r) for r in message.get("recipient", []) or []]
        return self.unaddressed if not recipients else any(r in self.own for r in recipients)


def patient_mailbox(patient_ref: str) -> Mailbox:
    """The person's end: themselves, and the relatives acting in their space."""
    return Mailbox(frozenset({patient_ref}), ("RelatedPerson/",), unaddressed=True)


def _box(side: Mailbox | str) -> Mailbox:
    return side if isinstance(side, Mailbox) else patient_mailbox(side)


def unread_for_patient(message: dict[str, Any], patient_ref: str) -> bool:
    """A message to the person that nobody in their space has opened yet."""
    return patient_mailbox(patient_ref).unread(message)


@dataclass(frozen=True, slots=True)
class MessageView:
    id: str
    mine: bool
    sender: str
    sent: str  # French date
    text: str
    attachments: tuple[tuple[str, str], ...]  # (DocumentReference id, title)
    received: str  # French date of the read receipt, "" when not read
    unread: bool
    files: tuple[tuple[int, str], ...] = ()  # files carried by the message: (payload index, title)


@dataclass(slots=True)
class ThreadView:
    root: str
    subject: str
    correspondent: str
    last_sent: str
    last_sent_raw: str
    count: int = 0
    unread: int = 0
    messages: list[MessageView] = field(default_factory=list)


def view_message(message: dict[str, Any], side: Mailbox | str, names: dict[str, str]) -> MessageView:
    """One message as ``side`` (a :class:`Mailbox`, or the person's ``Patient/…``) reads it."""
    box = _box(side)
    sender_ref = _ref(message.get("sender"))
    mine = box.ours(sender_ref)
    sender = str((message.get("sender") or {}).get("display") or names.get(sender_ref or "", "")) or (
        "Vous" if mine else "Expéditeur inconnu"
    )
    texts: list[str] = []
    attachments: list[tuple[str, str]] = []
    files: list[tuple[int, str]] = []
    for index, item in enumerate(message.get("payload", []) or []):
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("contentString"), str):
            texts.append(item["contentString"])
        ref = _ref(item.get("contentReference"))
        if ref and ref.startswith("DocumentReference/"):
            title = str((item.get("contentReference") or {}).get("display") or "Pièce jointe")
            attachments.append((ref.split("/", 1)[1], title))
        if isinstance(item.get("contentAttachment"), dict):
            files.append((index, str(item["contentAttachment"].get("title") or "Pièce jointe")))
    return MessageView(
        id=str(message.get("id", "")),
        mine=mine,
        sender=sender,
        sent=french_datetime(message.get("sent")),
        text="\n\n".join(texts),
        attachments=tuple(attachments),
        received=french_datetime(message.get("received")),
        unread=box.unread(message),
        files=tuple(files),
    )


def correspondent_refs(messages: Iterable[dict[str, Any]], side: Mailbox | str) -> list[str]:
    """Who is on the other side of a conversation (for the person: the professionals or
    structures; for a professional: the patient and the other professionals)."""
    box = _box(side)
    out: list[str] = []
    for message in messages:
        for ref in [_ref(message.get("sender")), *(_ref(r) for r in message.get("recipient", []) or [])]:
            if ref and not box.ours(ref) and ref not in out:
                out.append(ref)
    return out


def group_threads(
    messages: Iterable[dict[str, Any]],
    side: Mailbox | str,
    names: dict[str, str],
    codes: frozenset[str] = frozenset({"message"}),
) -> list[ThreadView]:
    """The conversations of ``side`` (a :class:`Mailbox`, or the person's ``Patient/…``), the most
    recent first, their messages oldest first; ``codes``: the kinds of message they hold."""
    box = _box(side)
    by_root: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        if is_message(message, codes):
            by_root.setdefault(thread_root(message), []).append(message)
    threads: list[ThreadView] = []
    for root, items in by_root.items():
        # the root first, then by the time sent (parsed: writers format instants differently)
        items.sort(key=lambda m: (m.get("id") != root, _sent_key(m), str(m.get("id", ""))))
        first = next((m for m in items if m.get("id") == root), items[0])
        others = correspondent_refs(items, box)
        correspondent = ", ".join(
            names.get(r) or _display_in(items, r) or "Professionnel de santé" for r in others
        )
        last = str(max(items, key=_sent_key).get("sent", ""))
        thread = ThreadView(
            root=root,
            subject=str((first.get("topic") or {}).get("text") or "(sans objet)"),
            correspondent=correspondent or "Professionnel de santé",
            last_sent=french_datetime(last),
            last_sent_raw=last,
            count=len(items),
        )
        thread.messages = [view_message(m, box, names) for m in items]
        thread.unread = sum(1 for m in thread.messages if m.unread)
        threads.append(thread)
    threads.sort(key=lambda t: _parse(t.last_sent_raw) or _EPOCH, reverse=True)
    return threads


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _sent_key(message: dict[str, Any]) -> datetime:
    return _parse(message.get("sent")) or _EPOCH


def _display_in(messages: Iterable[dict[str, Any]], ref: str) -> str:
    for message in messages:
        for party in [message.get("sender"), *(message.get("recipient", []) or [])]:
            if _ref(party) == ref and isinstance(party, dict) and party.get("display"):
                return str(party["display"])
    return ""


async def names_of(records: Records, caller: Caller, refs: Iterable[str]) -> dict[str, str]:
    """Display names of directory entries (Practitioner, PractitionerRole, Organization)."""
    out: dict[str, str] = {}
    for ref in refs:
        rtype, _, rid = ref.partition("/")
        if ref in out or rtype not in ("Practitioner", "Organization", "PractitionerRole"):
            continue
        resource = await records.read(caller, rtype, rid)
        if rtype == "PractitionerRole" and resource:
            out[ref] = str((resource.get("practitioner") or {}).get("display") or "")
        else:
            out[ref] = _name(resource)
    return out
