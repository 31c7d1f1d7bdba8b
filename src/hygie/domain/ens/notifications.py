"""Telling a person that something new waits in their health space — by e-mail and SMS.

A notification never carries health information: not who wrote, not about what, only
"vous avez un nouveau message dans votre espace santé" and where to read it. It goes through
the durable outbox (``domain/outbox.py``) once per message and channel (its de-duplication key).

**Where the contact details and the choice live**: in the record, as FHIR. The addresses are
``Patient.telecom`` (``email``, and ``phone`` with ``use`` = ``mobile`` for SMS); the person's
choice is an extension on each of those ``ContactPoint`` (:data:`NOTIFY_URL`, ``valueBoolean``).
Why not in the sign-in account: the choice is about a contact point of the record, which may be
reached by several accounts (the person, a parent acting for a child) and which the profile
page edits; it travels with the record when it is exported, and a ContactPoint with no
extension simply follows the default (notify on every contact point there is).

**Who is told, on which channel** (:func:`recipients`, the one rule every event uses: a new
message, a personal threshold crossed, a professional declaring a care relation, an emergency
access):

* the person, on their own contact points as they chose (none for a child without contact
  details of their own);
* while legal representatives run the space — the live ``representative`` relations as
  ``domain/relations.py`` derives them (a parent or guardian, ended when the person reaches
  ``HYGIE_MAJORITY_AGE``: from that birthday on the young adult is told alone) — each
  representative on *their* contact points (``RelatedPerson.telecom``, with the same
  per-contact-point choice). Aidants and trusted persons are not told: they help, they do not run
  the space.

Why the record's contact points and not the logins of the accounts holding the space: the
record's are those the person (or the parent) wrote down to be reached on, and they carry the
choice; a login is a sign-in identifier (a federated account may have none that is a mailbox),
and the account service keeps no index from a RelatedPerson to the accounts acting as it.

**The adolescent's confidential choice.** A notification says only "something new in the
space", but *that* something is new can be the secret: a message from the family-planning
centre, a professional who declares a care relation, an emergency access. So a representative
whom the adolescent's confidential mode names (a ``deny`` Consent naming their RelatedPerson:
``adolescent_confidential``) is never told of those (:data:`CONFIDENTIAL_KINDS`), whatever
document classes the deny lists — a message or an access has no class to compare. A threshold
crossed concerns measures the space set and the representative sees: told as usual. Something a
professional hid from the legal representatives (``meta.security`` ``INVISIBLE_REPRESENTANTS_LEGAUX``
on the message) is told to no representative at all.

Each event kind has one text (e-mail and SMS; the person's wording or a representative's), never
a health detail: not who, not why, not which value. De-duplication keys name the event and the
destination, so a retry, a second server process or a second pass never tells twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from hygie.domain.access import Caller
from hygie.domain.outbox import Outbox
from hygie.domain.policy import HIDDEN_FROM_REPRESENTATIVES
from hygie.domain.relations import relations_from
from hygie.fhir.values import date_range

__all__ = [
    "CONFIDENTIAL_KINDS",
    "NOTIFY_URL",
    "OPERATOR",
    "PAGES",
    "Channel",
    "Choice",
    "EventKind",
    "Notice",
    "Recipient",
    "Records",
    "apply_choice",
    "audience",
    "choice_of",
    "destinations",
    "enqueue",
    "hidden_from_representatives",
    "majority_us",
    "mobile_of",
    "notices",
    "notification_patient",
    "portal_base",
    "recipients",
    "representing",
    "tell",
]

NOTIFY_URL = "https://hygie.example/fhir/StructureDefinition/ens-notification"
Channel = Literal["email", "sms"]
Choice = Literal["email", "sms", "both", "none"]
CHOICES: dict[str, str] = {
    "both": "Par e-mail et par SMS",
    "email": "Par e-mail seulement",
    "sms": "Par SMS seulement",
    "none": "Je ne souhaite pas être prévenu(e)",
}
SUBJECT = "Nouveau message dans votre espace santé"
EventKind = Literal["message", "threshold", "care", "emergency"]
Role = Literal["self", "representative"]
# the events whose mere existence may reveal an adolescent's confidential care
CONFIDENTIAL_KINDS: frozenset[str] = frozenset({"message", "care", "emergency"})
OPERATOR = "notifications"  # the operator whose reads of contact details are audited


@dataclass(frozen=True, slots=True)
class Destination:
    channel: Channel
    address: str


def _is_mobile(telecom: dict[str, Any]) -> bool:
    if telecom.get("system") == "sms":
        return True
    if telecom.get("system") != "phone":
        return False
    if telecom.get("use") == "mobile":
        return True
    digits = "".join(c for c in str(telecom.get("value", "")) if c.isdigit())
    # French mobile numbers: 06/07, or +33 6/7
    return digits.startswith(("06", "07", "336", "337"))


def _notify_flag(telecom: dict[str, Any]) -> bool | None:
    for ext in telecom.get("extension", []) or []:
        if (
            isinstance(ext, dict)
            and ext.get("url") == NOTIFY_URL
            and isinstance(ext.get("valueBoolean"), bool)
        ):
            flag: bool = ext["valueBoolean"]
            return flag
    return None


def _live(telecom: Any) -> bool:
    if not isinstance(telecom, dict) or not str(telecom.get("value", "")).strip():
        return False
    end = (telecom.get("period") or {}).get("end") if isinstance(telecom.get("period"), dict) else None
    return end is None


def email_of(patient: dict[str, Any]) -> dict[str, Any] | None:
    items = [t for t in patient.get("telecom", []) or [] if _live(t) and t.get("system") == "email"]
    return sorted(items, key=lambda t: int(t.get("rank", 99)))[0] if items else None


def mobile_of(patient: dict[str, Any]) -> dict[str, Any] | None:
    items = [t for t in patient.get("telecom", []) or [] if _live(t) and _is_mobile(t)]
    return sorted(items, key=lambda t: int(t.get("rank", 99)))[0] if items else None


def destinations(patient: dict[str, Any]) -> list[Destination]:
    """Where to notify this person: the e-mail and the mobile they did not switch off."""
    out: list[Destination] = []
    email = email_of(patient)
    if email is not None and _notify_flag(email) is not False:
        out.append(Destination("email", str(email["value"]).strip()))
    mobile = mobile_of(patient)
    if mobile is not None and _notify_flag(mobile) is not False:
        out.append(Destination("sms", str(mobile["value"]).strip()))
    return out


def choice_of(patient: dict[str, Any]) -> Choice:
    """The person's current choice, as the settings form shows it."""
    channels = {d.channel for d in destinations(patient)}
    if channels == {"email", "sms"}:
        return "both"
    if channels == {"email"}:
        return "email"
    if channels == {"sms"}:
        return "sms"
    return "none"


def _with_flag(telecom: dict[str, Any], on: bool) -> dict[str, Any]:
    others = [
        e
        for e in telecom.get("extension", []) or []
        if not (isinstance(e, dict) and e.get("url") == NOTIFY_URL)
    ]
    return {**telecom, "extension": [*others, {"url": NOTIFY_URL, "valueBoolean": on}]}


def apply_choice(patient: dict[str, Any], choice: Choice) -> dict[str, Any]:
    """The Patient with the choice written on its e-mail and mobile contact points."""
    email, mobile = email_of(patient), mobile_of(patient)
    wanted = {
        "email": choice in ("email", "both"),
        "sms": choice in ("sms", "both"),
    }
    telecoms = []
    for telecom in patient.get("telecom", []) or []:
        if email is not None and telecom is email:
            telecoms.append(_with_flag(email, wanted["email"]))
        elif mobile is not None and telecom is mobile:
            telecoms.append(_with_flag(mobile, wanted["sms"]))
        else:
            telecoms.append(telecom)
    return {**patient, "telecom": telecoms}


def _ref(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("reference"), str):
        ref: str = value["reference"]
        return ref
    return None


def notification_patient(communication: dict[str, Any]) -> str | None:
    """The patient to notify about this new Communication, or None.

    A message or an alert addressed to a patient (``recipient`` names them) that was not
    written from their own space (by them or a relative) and that nobody has opened yet."""
    if communication.get("resourceType") != "Communication" or communication.get("received"):
        return None
    if communication.get("status") not in (None, "completed", "in-progress"):
        return None
    sender = _ref(communication.get("sender")) or ""
    if sender.startswith(("Patient/", "RelatedPerson/")):
        return None
    for recipient in communication.get("recipient", []) or []:
        ref = _ref(recipient)
        if ref and ref.startswith("Patient/"):
            return ref.split("/", 1)[1]
    return None


# -- who is told ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recipient:
    """One destination of an event's notification: the person's (``self``) or a representative's."""

    channel: Channel
    address: str
    role: Role
    related_id: str | None = None  # the RelatedPerson a representative is


@dataclass(frozen=True, slots=True)
class Notice:
    """One message for the outbox."""

    channel: Channel
    to: str
    subject: str
    body: str
    dedup_key: str


def majority_us(patient: dict[str, Any], majority_age: int) -> int | None:
    """When the person comes of age (µs), exactly as the write path dates the end of a legal
    representative's relation (``FhirService._majority``); None without a birth year."""
    born = patient.get("birthDate")
    if not isinstance(born, str) or len(born) < 4 or not born[:4].isdigit():
        return None
    year = int(born[:4]) + majority_age
    try:
        return date_range(f"{year:04d}{born[4:]}")[0]
    except ValueError:  # 29 February
        return date_range(f"{year:04d}-03-01")[0]


def _running(expires_us: int | None, now_us: int) -> bool:
    return expires_us is None or expires_us > now_us


def _address_key(channel: str, address: str) -> tuple[str, str]:
    """One destination however it is written (``+33 6…`` and ``06…``; case of an e-mail)."""
    if channel == "sms":
        digits = "".join(c for c in address if c.isdigit())
        return channel, ("0" + digits[2:] if digits.startswith("33") else digits)
    return channel, address.strip().lower()


def kept_from(consents: Iterable[dict[str, Any]], now_us: int) -> frozenset[str]:
    """The RelatedPersons (``RelatedPerson/<id>``) the adolescent's confidential mode names."""
    return frozenset(
        row.actor
        for consent in consents
        for row in relations_from(consent)
        if row.kind == "adolescent_confidential" and _running(row.expires_us, now_us)
    )


def representing(
    patient: dict[str, Any], related: Iterable[dict[str, Any]], *, majority_age: int, now_us: int
) -> list[dict[str, Any]]:
    """The RelatedPersons who run the person's space now: a live ``representative`` relation
    (``domain/relations.py``) — a parent's ends when the child comes of age."""
    majority = majority_us(patient, majority_age)
    own = f"Patient/{patient.get('id')}"
    out = []
    for person in related:
        patient_ref = person.get("patient")
        if person.get("resourceType") != "RelatedPerson" or not isinstance(patient_ref, dict):
            continue
        if patient_ref.get("reference") != own:
            continue
        rows = relations_from(person, majority_us=majority)
        if any(r.kind == "representative" and _running(r.expires_us, now_us) for r in rows):
            out.append(person)
    return out


def recipients(
    patient: dict[str, Any],
    related: Iterable[dict[str, Any]] = (),
    consents: Iterable[dict[str, Any]] = (),
    *,
    kind: EventKind,
    now_us: int,
    majority_age: int = 18,
    hidden_from_representatives: bool = False,
) -> list[Recipient]:
    """Who is told, on which channel, of an event of ``kind`` in this person's space.

    ``related``: the person's RelatedPersons; ``consents``: their active privacy Consents (where
    the adolescent's confidential mode is); ``hidden_from_representatives``: the event's object
    is labelled so. Each destination once (the person's wording first)."""
    out = [Recipient(d.channel, d.address, "self") for d in destinations(patient)]
    if not hidden_from_representatives:
        kept = kept_from(consents, now_us) if kind in CONFIDENTIAL_KINDS else frozenset()
        for person in representing(patient, related, majority_age=majority_age, now_us=now_us):
            rid = str(person.get("id"))
            if f"RelatedPerson/{rid}" in kept:
                continue
            out.extend(Recipient(d.channel, d.address, "representative", rid) for d in destinations(person))
    seen: set[tuple[str, str]] = set()
    unique = []
    for recipient in out:
        key = _address_key(recipient.channel, recipient.address)
        if key not in seen:
            seen.add(key)
            unique.append(recipient)
    return unique


def hidden_from_representatives(resource: dict[str, Any] | None) -> bool:
    """The resource carries the label that keeps it out of the legal representatives' sight."""
    meta = (resource or {}).get("meta")
    labels = meta.get("security") if isinstance(meta, dict) else None
    return any(isinstance(c, dict) and c.get("code") == HIDDEN_FROM_REPRESENTATIVES for c in labels or [])


# -- what they are told -----------------------------------------------------------------------

# where the portal shows each event
PAGES: dict[str, str] = {
    "message": "/ens/messages",
    "threshold": "/ens/mesures",
    "care": "/ens/controles/historique",
    "emergency": "/ens/controles/historique",
}
_SUBJECTS: dict[str, tuple[str, str]] = {  # kind -> (the person's, a representative's)
    "message": (SUBJECT, "Nouveau message dans l’espace santé d’un de vos proches"),
    "threshold": (
        "Une de vos mesures a franchi un seuil d’alerte",
        "Une mesure d’un de vos proches a franchi un seuil d’alerte",
    ),
    "care": (
        "Un professionnel de santé déclare vous prendre en charge",
        "Un professionnel de santé déclare prendre en charge un de vos proches",
    ),
    "emergency": (
        "Accès en urgence à votre dossier de santé",
        "Accès en urgence au dossier de santé d’un de vos proches",
    ),
}
_FOOTER = (
    "Par sécurité, ce courriel ne contient aucune information sur la santé. "
    "Merci de ne pas y répondre.\n\n"
    "Pour choisir comment être prévenu(e) (e-mail, SMS ou pas du tout) : espace santé, "
    "« Messagerie », « Être prévenu(e) ».\n"
)


def _link(portal_url: str) -> str:
    return f" : {portal_url}" if portal_url else "."


def _body(kind: EventKind, role: Role, portal_url: str, until: str | None, hours: int) -> str:
    mine = role == "self"
    space = "votre espace santé" if mine else "l’espace santé d’un de vos proches"
    record = "votre dossier de santé" if mine else "le dossier de santé d’un de vos proches"
    if kind == "message":
        text = (
            f"Vous avez un nouveau message dans {space}.\n\n"
            f"Pour le lire, connectez-vous à votre espace santé{_link(portal_url)}\n\n"
        )
    elif kind == "threshold":
        text = (
            f"Une nouvelle mesure enregistrée dans {space} a franchi l’un des seuils d’alerte choisis.\n\n"
            f"Pour la consulter, connectez-vous à votre espace santé, rubrique « Mesures »{_link(portal_url)}\n\n"
            "Ce message ne remplace pas un avis médical : en cas de doute, contactez votre médecin ; "
            "en cas d’urgence, appelez le 15 (ou le 112).\n\n"
        )
    elif kind == "care":
        text = (
            "Un professionnel de santé a déclaré une relation de soins "
            + ("avec vous" if mine else "avec un de vos proches")
            + f". Elle lui ouvre {record}"
            + (f" jusqu’au {until}" if until else "")
            + ".\n\nSi vous n’êtes pas à l’origine de cette prise en charge, consultez l’historique des "
            "accès dans l’espace santé : vous pouvez y signaler un accès que vous ne reconnaissez pas "
            f"et bloquer un professionnel{_link(portal_url)}\n\n"
        )
    else:
        text = (
            f"Un professionnel de santé a ouvert {record} en situation d’urgence. Cet accès est "
            f"tracé et prend fin au plus tard {hours} heures après son ouverture. Vous pouvez "
            "consulter l’historique des accès dans l’espace santé et signaler un accès que vous ne "
            f"reconnaissez pas{_link(portal_url)}\n\n"
        )
    return "Bonjour,\n\n" + text + _FOOTER


def _sms(kind: EventKind, role: Role) -> str:
    space = "votre espace santé" if role == "self" else "l’espace santé d’un de vos proches"
    record = "votre dossier" if role == "self" else "le dossier d’un de vos proches"
    return {
        "message": f"Hygie : vous avez un nouveau message dans {space}. Connectez-vous pour le lire.",
        "threshold": f"Hygie : une nouvelle mesure a franchi un seuil d’alerte dans {space}. "
        "Connectez-vous pour la consulter.",
        "care": f"Hygie : un professionnel de santé a déclaré une relation de soins qui lui ouvre {record}. "
        "Détails dans l’historique des accès de l’espace santé.",
        "emergency": f"Hygie : un professionnel de santé a ouvert {record} en urgence. "
        "Détails dans l’historique des accès de l’espace santé.",
    }[kind]


def notices(
    kind: EventKind,
    key: str,
    to: Sequence[Recipient],
    *,
    base_url: str | None,
    until: str | None = None,
    hours: int = 4,
) -> list[Notice]:
    """The outbox messages of one event (``key`` names it: a message id, a crossing, an Encounter,
    an emergency access), one per recipient, de-duplicated per event and destination.
    ``until``: when a declared care relation ends (a French date); ``hours``: an emergency
    access's longest duration; without ``base_url`` (a caller that does not know the public
    address) the text names the page instead of linking it."""
    portal_url = base_url.rstrip("/") + PAGES[kind] if base_url else ""
    out = []
    for r in to:
        subject = _SUBJECTS[kind][0 if r.role == "self" else 1]
        body = _body(kind, r.role, portal_url, until, hours) if r.channel == "email" else _sms(kind, r.role)
        channel, address = _address_key(r.channel, r.address)
        out.append(Notice(r.channel, r.address, subject, body, f"ens-{kind}:{key}:{channel}:{address}"))
    return out


async def enqueue(outbox: Outbox, items: Iterable[Notice]) -> int:
    """Put the notices in the durable outbox; how many."""
    count = 0
    for n in items:
        await outbox.enqueue(n.channel, n.to, n.subject, n.body, dedup_key=n.dedup_key)
        count += 1
    return count


# -- reading the audience through the door ----------------------------------------------------


class Records(Protocol):
    """The one door (``web/portal/door.py`` :class:`Door`): reads audited as the caller's."""

    async def read(self, caller: Caller, resource_type: str, id: str) -> dict[str, Any] | None: ...

    async def search(
        self, caller: Caller, resource_type: str, params: Sequence[tuple[str, str]] = (), *, limit: int = 1000
    ) -> list[dict[str, Any]]: ...


async def audience(
    records: Records,
    patient_id: str,
    *,
    kind: EventKind,
    now_us: int,
    majority_age: int = 18,
    hidden_from_representatives: bool = False,
) -> list[Recipient]:
    """:func:`recipients` of an event in ``patient_id``'s space: the Patient, their
    RelatedPersons and — when a representative may be told of something confidential — their
    active Consents, read through the door as the operator :data:`OPERATOR` (audited in the
    person's access history like any read)."""
    caller = Caller.operator(OPERATOR)
    patient = await records.read(caller, "Patient", patient_id)
    if patient is None:
        return []
    related: list[dict[str, Any]] = []
    consents: list[dict[str, Any]] = []
    if not hidden_from_representatives:
        related = await records.search(caller, "RelatedPerson", [("patient", patient_id)], limit=200)
        live = representing(patient, related, majority_age=majority_age, now_us=now_us)
        if live and kind in CONFIDENTIAL_KINDS:
            consents = await records.search(
                caller, "Consent", [("patient", patient_id), ("status", "active")], limit=500
            )
    return recipients(
        patient,
        related,
        consents,
        kind=kind,
        now_us=now_us,
        majority_age=majority_age,
        hidden_from_representatives=hidden_from_representatives,
    )


def portal_base(fhir_base: str) -> str:
    """The portal's public address from the FHIR base (``<base>/fhir``, ``config.py``)."""
    base = fhir_base.rstrip("/")
    return base[: -len("/fhir")] if base.endswith("/fhir") else base


async def tell(
    records: Records,
    outbox: Outbox,
    patient_id: str,
    kind: EventKind,
    key: str,
    *,
    now_us: int,
    majority_age: int = 18,
    base_url: str | None = None,
    hidden: bool = False,
    until: str | None = None,
    hours: int = 4,
) -> int:
    """Tell an event of ``kind`` (named ``key``) in ``patient_id``'s space to whoever the rule
    names: :func:`audience`, :func:`notices`, then the outbox. How many messages were queued."""
    told = await audience(
        records,
        patient_id,
        kind=kind,
        now_us=now_us,
        majority_age=majority_age,
        hidden_from_representatives=hidden,
    )
    return await enqueue(outbox, notices(kind, key, told, base_url=base_url, until=until, hours=hours))
