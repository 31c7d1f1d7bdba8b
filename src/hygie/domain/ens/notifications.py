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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "NOTIFY_URL",
    "Channel",
    "Choice",
    "apply_choice",
    "choice_of",
    "destinations",
    "email_text",
    "mobile_of",
    "notification_patient",
    "sms_text",
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


def email_text(portal_url: str) -> str:
    return (
        "Bonjour,\n\n"
        "Vous avez un nouveau message dans votre espace santé.\n\n"
        f"Pour le lire, connectez-vous à votre espace santé : {portal_url}\n\n"
        "Par sécurité, ce courriel ne contient aucune information sur votre santé. "
        "Merci de ne pas y répondre.\n\n"
        "Pour ne plus recevoir ces courriels, choisissez « Être prévenu(e) » dans votre messagerie.\n"
    )


def sms_text() -> str:
    return "Hygie : vous avez un nouveau message dans votre espace santé. Connectez-vous pour le lire."


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
