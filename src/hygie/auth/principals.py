"""From a verified access token to the :class:`~hygie.domain.policy.Principal` the rules decide on.

The token says who signed in (``kind``, ``fhirUser``), through which app (``client_id``, scopes)
and for which patient (SMART launch context). The professional's profession and structure come
from the directory (the Practitioner's TRE_G15 qualification, its PractitionerRole's
organisation), read once per practitioner and kept for a minute.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from hygie.auth.tokens import AccessToken
from hygie.domain.policy import Principal

__all__ = ["PrincipalResolver", "profession_of"]

TRE_G15 = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"

# a first-party session token carries no app scopes: the portal is Hygie itself
FIRST_PARTY_CLIENTS = frozenset({"hygie-portal"})


def profession_of(practitioner: dict[str, Any]) -> str | None:
    """The TRE_G15 profession code of a (FR Core / Annuaire Santé) Practitioner."""
    for qualification in practitioner.get("qualification", []) or []:
        for coding in (qualification.get("code") or {}).get("coding", []) or []:
            if coding.get("system") == TRE_G15 and coding.get("code"):
                return str(coding["code"])
    return None


class PrincipalResolver:
    """Builds principals; ``read(type, id)`` returns a resource dict or None (through the store)."""

    def __init__(
        self, read: Callable[[str, str], Awaitable[dict[str, Any] | None]], *, ttl_s: float = 60.0
    ) -> None:
        self.read = read
        self.ttl_s = ttl_s
        self._professions: dict[str, tuple[float, str | None]] = {}

    async def _profession(self, practitioner_id: str) -> str | None:
        now = time.monotonic()
        hit = self._professions.get(practitioner_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        resource = await self.read("Practitioner", practitioner_id)
        profession = profession_of(resource) if resource else None
        if len(self._professions) > 50_000:
            self._professions.clear()
        self._professions[practitioner_id] = (now + self.ttl_s, profession)
        return profession

    async def principal(self, token: AccessToken, *, break_glass: frozenset[str] = frozenset()) -> Principal:
        scopes = None if token.client_id in FIRST_PARTY_CLIENTS else token.scopes
        fhir_user = token.fhir_user
        if token.kind == "system":
            return Principal("system", token.client_id, scopes=scopes)
        if token.kind == "operator":
            return Principal("operator", f"Operator/{token.subject}", scopes=scopes)
        if token.kind == "citizen":
            if fhir_user and fhir_user.startswith("RelatedPerson/"):
                return Principal("representative", fhir_user, scopes=scopes, launch_patient=token.patient)
            return Principal(
                "patient", fhir_user, scopes=scopes, launch_patient=token.patient or _id(fhir_user)
            )
        if token.kind == "professional" and fhir_user and fhir_user.startswith("Practitioner/"):
            profession = await self._profession(fhir_user.split("/", 1)[1])
            return Principal(
                "practitioner",
                fhir_user,
                profession=profession,
                scopes=scopes,
                launch_patient=token.patient,
                break_glass=break_glass,
            )
        return Principal("anonymous")


def _id(reference: str | None) -> str | None:
    if reference and "/" in reference:
        return reference.split("/", 1)[1]
    return None
