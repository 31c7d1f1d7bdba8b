"""From a verified access token to the :class:`~hygie.domain.policy.Principal` the rules decide on,
and to the :class:`~hygie.domain.access.Caller` the audit trail shows.

The token says who signed in (``kind``, ``fhirUser``), through which app (``client_id``, scopes),
for which patient (SMART launch context) and, for a backend client bound to a structure, as
which Organization (``organization``). The professional's profession, name, national
identifier (IdNat_PS) and structure come from the directory (the Practitioner's TRE_G15
qualification, its first PractitionerRole's organisation), read once per practitioner and kept
for a minute.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from hygie.auth.tokens import AccessToken, InvalidToken
from hygie.domain.access import FIRST_PARTY_CLIENTS, Caller
from hygie.domain.policy import Principal
from hygie.domain.relations import REPRESENTATIVE_CODES, TRUSTED_PERSON_CODE

__all__ = ["BearerAuthenticator", "PractitionerFacts", "PrincipalResolver", "profession_of"]

TRE_G15 = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
IDNAT_PS = "urn:oid:1.2.250.1.71.4.2.1"
# purpose of use (v3-ActReason) of a first-party access: care for professionals, the patient's own
_PURPOSES = {
    "practitioner": ("TREAT",),
    "patient": ("PATRQT",),
    "representative": ("PATRQT",),
    "aidant": ("PATRQT",),
}

# a first-party session token carries no app scopes: the portal is Hygie itself


def profession_of(practitioner: dict[str, Any]) -> str | None:
    """The TRE_G15 profession code of a (FR Core / Annuaire Santé) Practitioner."""
    for qualification in practitioner.get("qualification", []) or []:
        for coding in (qualification.get("code") or {}).get("coding", []) or []:
            if coding.get("system") == TRE_G15 and coding.get("code"):
                return str(coding["code"])
    return None


def _name(resource: dict[str, Any]) -> str | None:
    for name in resource.get("name", []) or []:
        if not isinstance(name, dict):
            continue
        if name.get("text"):
            return str(name["text"])
        parts = [*(name.get("prefix") or []), *(name.get("given") or []), name.get("family") or ""]
        text = " ".join(str(p) for p in parts if p).strip()
        if text:
            return text
    return None


def _identifier(resource: dict[str, Any], system: str) -> str | None:
    for identifier in resource.get("identifier", []) or []:
        if isinstance(identifier, dict) and identifier.get("system") == system and identifier.get("value"):
            return str(identifier["value"])
    return None


@dataclass(frozen=True, slots=True)
class PractitionerFacts:
    profession: str | None = None
    name: str | None = None
    idnat: str | None = None
    organization: str | None = None  # Organization/…


class PrincipalResolver:
    """Builds principals; ``read(type, id)`` returns a resource dict or None and ``roles(id)`` the
    practitioner's PractitionerRoles (both through the store, outside any patient record)."""

    def __init__(
        self,
        read: Callable[[str, str], Awaitable[dict[str, Any] | None]],
        *,
        roles: Callable[[str], Awaitable[list[dict[str, Any]]]] | None = None,
        ttl_s: float = 60.0,
    ) -> None:
        self.read = read
        self.roles = roles
        self.ttl_s = ttl_s
        self._facts: dict[str, tuple[float, PractitionerFacts]] = {}
        self._related: dict[str, tuple[float, Literal["representative", "aidant"]]] = {}

    async def practitioner(self, practitioner_id: str) -> PractitionerFacts:
        now = time.monotonic()
        hit = self._facts.get(practitioner_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        resource = await self.read("Practitioner", practitioner_id)
        organization = None
        if resource is not None and self.roles is not None:
            for role in await self.roles(practitioner_id):
                ref = (role.get("organization") or {}).get("reference")
                if isinstance(ref, str) and role.get("active", True):
                    organization = ref
                    break
        facts = (
            PractitionerFacts(
                profession_of(resource), _name(resource), _identifier(resource, IDNAT_PS), organization
            )
            if resource
            else PractitionerFacts()
        )
        if len(self._facts) > 50_000:
            self._facts.clear()
        self._facts[practitioner_id] = (now + self.ttl_s, facts)
        return facts

    async def related_kind(self, related_id: str) -> Literal["representative", "aidant"]:
        """A parent or guardian is a legal representative; anyone else a helper (aidant)."""
        now = time.monotonic()
        hit = self._related.get(related_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        resource = await self.read("RelatedPerson", related_id) or {}
        codes = {
            str(c.get("code"))
            for concept in resource.get("relationship", []) or []
            for c in (concept.get("coding", []) if isinstance(concept, dict) else [])
            if isinstance(c, dict)
        }
        kind: Literal["representative", "aidant"] = (
            # a trusted person acts as an aidant (when the patient gave access), even a parent
            "representative"
            if codes & REPRESENTATIVE_CODES and TRUSTED_PERSON_CODE not in codes
            else "aidant"
        )
        if len(self._related) > 50_000:
            self._related.clear()
        self._related[related_id] = (now + self.ttl_s, kind)
        return kind

    async def caller(
        self, token: AccessToken, *, break_glass: frozenset[str] = frozenset(), address: str | None = None
    ) -> Caller:
        """The caller behind a token: its principal, and how the audit trail names it."""
        principal = await self.principal(token, break_glass=break_glass)
        display = identifier = None
        if principal.kind == "practitioner" and principal.subject:
            facts = await self.practitioner(principal.subject.split("/", 1)[1])
            display, identifier = facts.name, facts.idnat
        return Caller.of(
            principal,
            client_id=token.client_id or None,
            display=display,
            identifier=identifier,
            identifier_system=IDNAT_PS if identifier else None,
            purpose=_PURPOSES.get(principal.kind, ()),
            address=address,
        )

    async def principal(self, token: AccessToken, *, break_glass: frozenset[str] = frozenset()) -> Principal:
        scopes = None if token.client_id in FIRST_PARTY_CLIENTS else token.scopes
        fhir_user = token.fhir_user
        if token.kind == "system":
            # bound to a structure at registration: it acts as that Organization (domain/policy.py)
            return Principal("system", token.client_id, organization=token.organization, scopes=scopes)
        if token.kind == "operator":
            return Principal("operator", f"Operator/{token.subject}", scopes=scopes)
        if token.kind == "citizen":
            if fhir_user and fhir_user.startswith("RelatedPerson/"):
                kind = await self.related_kind(fhir_user.split("/", 1)[1])
                return Principal(kind, fhir_user, scopes=scopes, launch_patient=token.patient)
            return Principal(
                "patient", fhir_user, scopes=scopes, launch_patient=token.patient or _id(fhir_user)
            )
        if token.kind == "professional" and fhir_user and fhir_user.startswith("Practitioner/"):
            facts = await self.practitioner(fhir_user.split("/", 1)[1])
            return Principal(
                "practitioner",
                fhir_user,
                profession=facts.profession,
                organization=facts.organization,
                scopes=scopes,
                launch_patient=token.patient,
                break_glass=break_glass,
            )
        return Principal("anonymous")


def _id(reference: str | None) -> str | None:
    if reference and "/" in reference:
        return reference.split("/", 1)[1]
    return None


class BearerAuthenticator:
    """``Authorization: Bearer`` → :class:`Caller` for the FHIR API (RFC 6750 errors otherwise).

    A professional's open break-glass accesses are read at every request, so that an emergency
    access applies at once and ends exactly when it expires.
    """

    def __init__(
        self,
        verify: Callable[[str | None], Awaitable[AccessToken]],
        resolver: PrincipalResolver,
        break_glass: Callable[[str], Awaitable[frozenset[str]]] | None = None,
    ) -> None:
        self.verify = verify
        self.resolver = resolver
        self.break_glass = break_glass
        # callers of tokens that carry no per-request state (all but professionals', whose
        # break-glass accesses are read every time): token id -> caller, until the token expires
        self._callers: dict[str, tuple[int, Caller]] = {}

    async def __call__(self, headers: dict[str, str], address: str | None) -> Caller:
        from hygie.fhir.outcome import Unauthorized  # noqa: PLC0415

        authorization = headers.get("authorization")
        if not authorization:
            raise Unauthorized("an access token is required (Authorization: Bearer …)")
        try:
            token = await self.verify(authorization)
        except InvalidToken as exc:
            raise Unauthorized(str(exc), error="invalid_token") from exc
        if token.kind == "professional":
            emergency: frozenset[str] = frozenset()
            if self.break_glass is not None and token.fhir_user:
                emergency = await self.break_glass(token.fhir_user)
            return await self.resolver.caller(token, break_glass=emergency, address=address)
        known = self._callers.get(token.jti)
        if known is None or known[0] != token.expires:
            if len(self._callers) >= 50_000:
                self._callers.clear()
            known = (token.expires, await self.resolver.caller(token))
            self._callers[token.jti] = known
        return replace(known[1], address=address)
