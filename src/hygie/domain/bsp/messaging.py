"""Secure messaging for professionals (MSSanté-style), on the citizen side's model.

A message is a FHIR ``Communication`` built and threaded exactly as in the citizen's space
(``domain/ens/messaging.py``: ``partOf`` the thread's root, ``inResponseTo`` the message answered,
``received`` set by the recipient through ``$mark-received``); this module adds the professional's
end of it:

* **Whose mailbox**: the practitioner and their structure (:func:`professional_mailbox`) — a
  message to the structure (``Organization/…``, its organisational mailbox, digest §4) is read by
  its members, as ``$mark-received`` already lets them acknowledge it.
* **Two kinds of conversation**, told apart by ``category``: with a patient (code ``message``,
  the ones the person's space shows and answers) and between professionals (code
  ``correspondance``: never in the person's messaging, even when it is about them). A
  correspondence about a patient has that patient as ``subject``, so it lives in their record:
  the access rules apply — the recipient reads it, and the documents it points to, only if the
  rules open that record to them (a care relationship, a document class open to their
  profession). One about no patient has no ``subject``: outside every record, the access rules
  keep it to its sender and recipients (``domain/policy.py``, *correspondence*).
* **Attachments**: a document of the patient's record is attached by reference (a
  ``contentReference`` to its DocumentReference, readable under the rules); a file travels
  inside the message (``contentAttachment``, checked as the citizen's files: PDF, JPEG or PNG, the
  real type, at most :data:`~hygie.domain.ens.messaging.MAX_ATTACHMENT_BYTES`) so that it is
  exactly as private as the message — a file is not a document of the shared record, which a
  professional deposits with its DMP metadata (``domain/bsp/documents.py``).
* **The trusted directory**: a correspondent is found by name or by MSSanté address
  (:func:`directory_searches`): Practitioners (with their PractitionerRoles: structure,
  profession) and Organizations; an MSSanté address is a telecom e-mail typed ``MSSANTE``
  (FR Core's e-mail type extension, TRE_R256) or on an ``mssante.fr`` domain.
* **The inbox**: the conversations where I or my structure am a party, unread first, then the
  most recent (:func:`inbox_order`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from hygie.domain.access import Caller
from hygie.domain.ens.messaging import (
    CATEGORY_SYSTEM,
    MESSAGE_CATEGORY,
    Mailbox,
    ThreadView,
    carried_attachment,
    carried_file,
    new_message,
)
from hygie.domain.identity.nos import FR_CORE_SD, TRE_G15_PROFESSION

__all__ = [
    "CORRESPONDENCE_CATEGORY",
    "KINDS",
    "PROFESSIONS",
    "Correspondent",
    "DirectoryReads",
    "carried_file",
    "correspondent_of",
    "directory_searches",
    "find_correspondents",
    "inbox_order",
    "involves",
    "mssante_addresses",
    "profession_of",
    "professional_mailbox",
    "professional_message",
    "with_patient",
]

CORRESPONDENCE_CATEGORY: Final[dict[str, str]] = {
    "system": CATEGORY_SYSTEM,
    "code": "correspondance",
    "display": "Correspondance entre professionnels",
}
# the kinds of conversation a professional's messaging shows
KINDS: Final = frozenset({MESSAGE_CATEGORY["code"], CORRESPONDENCE_CATEGORY["code"]})
EMAIL_TYPE_URL: Final = FR_CORE_SD + "fr-core-contact-point-email-type"
MAX_FOUND: Final = 20
MIN_QUERY: Final = 2

# TRE_G15 professions (digest §9): the label shown beside a correspondent's name
PROFESSIONS: Final[dict[str, str]] = {
    "10": "Médecin",
    "21": "Pharmacien",
    "40": "Chirurgien-dentiste",
    "50": "Sage-femme",
    "60": "Infirmier",
    "70": "Masseur-kinésithérapeute",
    "80": "Pédicure-podologue",
}


def professional_mailbox(practitioner_ref: str, organization: str | None) -> Mailbox:
    """The professional's end: themselves and their structure's mailbox."""
    return Mailbox(frozenset(r for r in (practitioner_ref, organization) if r))


def _ref(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("reference"), str):
        ref: str = value["reference"]
        if ref.count("/") == 1 and not ref.startswith(("#", "urn:")):
            return ref
    return None


def involves(messages: Iterable[dict[str, Any]], box: Mailbox) -> bool:
    """Is ``box`` a sender or a recipient of one of these messages? (A colleague who may read a
    patient's record does not thereby read the conversations others hold about them.)"""
    return any(
        ref in box.own
        for message in messages
        for ref in [_ref(message.get("sender")), *(_ref(r) for r in message.get("recipient", []) or [])]
    )


def with_patient(messages: Iterable[dict[str, Any]]) -> str | None:
    """The ``Patient/…`` a conversation is held with (one of its parties), None between
    professionals."""
    for message in messages:
        for ref in [_ref(message.get("sender")), *(_ref(r) for r in message.get("recipient", []) or [])]:
            if ref and ref.startswith("Patient/"):
                return ref
    return None


def inbox_order(threads: Sequence[ThreadView]) -> list[ThreadView]:
    """Conversations with something new first, then the most recent (``threads`` come most
    recent first from ``group_threads``)."""
    return sorted(threads, key=lambda t: t.unread == 0)


# -- writing ----------------------------------------------------------------------------------


def professional_message(
    *,
    patient_ref: str | None,
    sender: tuple[str, str],
    recipients: Sequence[tuple[str, str]],
    subject: str,
    text: str,
    now_us: int,
    root_id: str | None = None,
    in_response_to: str | None = None,
    documents: Iterable[tuple[str, str]] = (),
    files: Iterable[tuple[str, bytes]] = (),
    to_patient: bool | None = None,
) -> dict[str, Any]:
    """A professional's message: with the patient (``to_patient``; by default, when a
    ``Patient/…`` is among the recipients), otherwise a correspondence between professionals
    (about ``patient_ref``, or about no one). ``documents`` are (DocumentReference reference,
    title); ``files`` (name, bytes), checked beforehand, travel inside the message."""
    if to_patient is None:
        to_patient = any(ref.startswith("Patient/") for ref, _ in recipients)
    message = new_message(
        patient_ref=patient_ref,
        sender=sender,
        recipients=recipients,
        subject=subject,
        text=text,
        now_us=now_us,
        root_id=root_id,
        in_response_to=in_response_to,
        attachments=documents,
        category=MESSAGE_CATEGORY if to_patient else CORRESPONDENCE_CATEGORY,
    )
    for filename, data in files:
        message["payload"].append({"contentAttachment": carried_attachment(filename, data, now_us)})
    return message


# -- the trusted directory --------------------------------------------------------------------


def mssante_addresses(resource: dict[str, Any] | None) -> tuple[str, ...]:
    """The MSSanté mailboxes of a directory entry: e-mails typed ``MSSANTE``, or on mssante.fr."""
    out: list[str] = []
    for telecom in (resource or {}).get("telecom", []) or []:
        if not isinstance(telecom, dict) or telecom.get("system") != "email" or not telecom.get("value"):
            continue
        value = str(telecom["value"])
        typed = any(
            isinstance(ext, dict)
            and ext.get("url") == EMAIL_TYPE_URL
            and (ext.get("valueCoding") or {}).get("code") == "MSSANTE"
            for ext in telecom.get("extension", []) or []
        )
        if (typed or value.lower().endswith(".mssante.fr")) and value not in out:
            out.append(value)
    return tuple(out)


def profession_of(practitioner: dict[str, Any] | None) -> str | None:
    """The TRE_G15 profession code of a Practitioner (its qualification)."""
    for qualification in (practitioner or {}).get("qualification", []) or []:
        if not isinstance(qualification, dict):
            continue
        for coding in (qualification.get("code") or {}).get("coding", []) or []:
            if isinstance(coding, dict) and coding.get("system") == TRE_G15_PROFESSION and coding.get("code"):
                return str(coding["code"])
    return None


def _person(resource: dict[str, Any]) -> str:
    names = resource.get("name") or [{}]
    chosen = next((n for n in names if isinstance(n, dict) and n.get("use") == "usual"), None) or names[0]
    prefix = " ".join(chosen.get("prefix", []) or [])
    given = " ".join((chosen.get("given") or [])[:1])
    family = str(chosen.get("family", "")).upper()
    return " ".join(p for p in (prefix, given, family) if p) or str(chosen.get("text", ""))


@dataclass(frozen=True, slots=True)
class Correspondent:
    """A professional or a structure of the directory one may write to."""

    reference: str  # Practitioner/… or Organization/…
    name: str
    kind: str  # "professionnel" | "structure"
    profession: str = ""
    places: tuple[str, ...] = ()  # the structures where the professional works
    addresses: tuple[str, ...] = ()  # MSSanté mailboxes

    @property
    def label(self) -> str:
        details = [d for d in (self.profession, ", ".join(self.places)) if d]
        return self.name + (f" — {' · '.join(details)}" if details else "")


def correspondent_of(resource: dict[str, Any], roles: Iterable[dict[str, Any]] = ()) -> Correspondent | None:
    """A Practitioner (with its PractitionerRoles) or an Organization as a correspondent; None
    when it is inactive or not something one writes to."""
    if resource.get("active") is False:
        return None
    rtype, rid = resource.get("resourceType"), resource.get("id")
    if rtype == "Organization":
        return Correspondent(
            f"Organization/{rid}",
            str(resource.get("name") or "Structure sans nom"),
            "structure",
            addresses=mssante_addresses(resource),
        )
    if rtype != "Practitioner":
        return None
    live = [r for r in roles if r.get("active") is not False]
    places = tuple(
        dict.fromkeys(
            str((r.get("organization") or {}).get("display") or "")
            for r in live
            if (r.get("organization") or {}).get("display")
        )
    )
    addresses = mssante_addresses(resource) + tuple(a for r in live for a in mssante_addresses(r))
    return Correspondent(
        f"Practitioner/{rid}",
        _person(resource) or "Professionnel sans nom",
        "professionnel",
        PROFESSIONS.get(profession_of(resource) or "", ""),
        places,
        tuple(dict.fromkeys(addresses)),
    )


def directory_searches(text: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The FHIR searches that find a correspondent from what was typed: an MSSanté address
    (``Practitioner?email``, ``PractitionerRole?email``) or words of a name (each word starts a
    part of a professional's name; the words appear in a structure's name)."""
    query = " ".join(text.split())[:100]
    if len(query) < MIN_QUERY:
        return []
    count = ("_count", str(MAX_FOUND))
    if "@" in query and " " not in query:
        address = query.lower()
        return [
            ("Practitioner", [("email", address), count]),
            ("PractitionerRole", [("email", address), count]),
        ]
    return [
        ("Practitioner", [*(("name", word) for word in query.split(" ")), count]),
        ("Organization", [("name:contains", query), count]),
    ]


class DirectoryReads(Protocol):
    async def read(self, caller: Caller, resource_type: str, id: str) -> dict[str, Any] | None: ...

    async def search(
        self, caller: Caller, resource_type: str, params: Sequence[tuple[str, str]] = (), *, limit: int = 1000
    ) -> list[dict[str, Any]]: ...


async def find_correspondents(records: DirectoryReads, caller: Caller, text: str) -> list[Correspondent]:
    """Professionals and structures of the directory matching ``text`` (a name or an MSSanté
    address), professionals first, at most :data:`MAX_FOUND`."""
    practitioners: dict[str, dict[str, Any]] = {}
    organizations: list[dict[str, Any]] = []
    for resource_type, params in directory_searches(text):
        for found in await records.search(caller, resource_type, params, limit=MAX_FOUND):
            if resource_type == "Organization":
                organizations.append(found)
            elif resource_type == "Practitioner":
                practitioners[str(found.get("id"))] = found
            else:  # a role with that address: its practitioner
                ref = _ref(found.get("practitioner"))
                if ref and ref.startswith("Practitioner/") and ref.split("/", 1)[1] not in practitioners:
                    person = await records.read(caller, "Practitioner", ref.split("/", 1)[1])
                    if person is not None:
                        practitioners[str(person.get("id"))] = person
    out: list[Correspondent] = []
    for pid, person in list(practitioners.items())[:MAX_FOUND]:
        roles = await records.search(
            caller, "PractitionerRole", [("practitioner", f"Practitioner/{pid}"), ("_count", "10")], limit=10
        )
        entry = correspondent_of(person, roles)
        if entry is not None:
            out.append(entry)
    out.extend(e for e in (correspondent_of(o) for o in organizations) if e is not None)
    return out[:MAX_FOUND]
