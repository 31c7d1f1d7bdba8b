"""A person's authorisation of an app, as a FHIR ``Consent`` in their record (CNNum 13).

When a citizen accepts the consent screen — the same screen for every app — the grant becomes two
things at once: a SMART authorisation (the authorisation server's token family) and a FHIR
``Consent`` in the person's record, written through the access policy as the person (or the
legal representative acting for them), so that it is in their audit trail and in their export:

* ``scope`` patient-privacy, ``category`` Hygie's ``app`` code (an app authorisation — it opens no
  access relation to anyone: ``domain/relations.py`` leaves it out; what the app may do is its
  token's scopes, under the policy of the person who authorised it) and LOINC 59284-0;
* ``identifier`` the grant (``urn:hygie:oauth-grant``), ``provision.actor`` the app by its
  client identifier (``urn:hygie:client``), ``provision.period`` from now to the end the person
  chose, ``provision.action`` ``access`` (read) and ``collect`` (write), ``provision.class`` the
  resource types the accepted scopes reach;
* withdrawn from "Mes contrôles": the token family is revoked and the Consent becomes
  ``inactive`` with its period ended — the record keeps what was authorised, and until when.

If the Consent cannot be written the person sees an error and no code is issued: there is never
an authorisation without its Consent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from hygie.auth.scopes import ScopeSet
from hygie.domain.access import Caller
from hygie.domain.relations import APP_CATEGORY, SPACE_CATEGORY_SYSTEM

__all__ = ["CLIENT_SYSTEM", "GRANT_SYSTEM", "AppConsents", "app_consent"]

GRANT_SYSTEM = "urn:hygie:oauth-grant"
CLIENT_SYSTEM = "urn:hygie:client"
_RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"

CallerFor = Callable[[str, str], Awaitable[Caller | None]]  # (account id, patient id) -> caller


def _instant(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def app_consent(
    *,
    patient: str,
    performer: str,
    client_id: str,
    app_name: str,
    scopes: ScopeSet,
    family: str,
    now_us: int,
    until_us: int | None,
) -> dict[str, Any]:
    """The Consent of one app authorisation (see the module's description)."""
    types = sorted({s.resource_type for s in scopes.resources if s.context == "patient"})
    reads = any({"r", "s"} & s.permissions for s in scopes.resources)
    writes = any({"c", "u", "d"} & s.permissions for s in scopes.resources)
    actions = []
    if reads:
        actions.append(
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}]}
        )
    if writes:
        actions.append(
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "collect"}]}
        )
    period: dict[str, str] = {"start": _instant(now_us)}
    if until_us:
        period["end"] = _instant(until_us)
    provision: dict[str, Any] = {
        "type": "permit",
        "period": period,
        "actor": [
            {
                "role": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "IRCP",
                        }
                    ]
                },
                "reference": {
                    "identifier": {"system": CLIENT_SYSTEM, "value": client_id},
                    "display": app_name,
                },
            }
        ],
    }
    if actions:
        provision["action"] = actions
    if types:
        provision["class"] = [{"system": _RESOURCE_TYPES, "code": t} for t in types if t != "*"] or [
            {"system": _RESOURCE_TYPES, "code": "Resource"}
        ]
    return {
        "resourceType": "Consent",
        "status": "active",
        "identifier": [{"system": GRANT_SYSTEM, "value": family}],
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": SPACE_CATEGORY_SYSTEM,
                        "code": APP_CATEGORY,
                        "display": "Autorisation d’une application",
                    }
                ]
            },
            {"coding": [{"system": "http://loinc.org", "code": "59284-0"}]},
        ],
        "patient": {"reference": f"Patient/{patient}"},
        "dateTime": _instant(now_us),
        "performer": [{"reference": performer}],
        "policyRule": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]
        },
        "provision": provision,
    }


class AppConsents:
    """Writes and withdraws the Consent of a citizen's app authorisation, through the door."""

    def __init__(self, door: Any, caller_for: CallerFor, clock: Callable[[], int]) -> None:
        self.door = door  # hygie.web.portal.door.Door
        self.caller_for = caller_for
        self.clock = clock

    async def record(
        self,
        *,
        account_id: str,
        patient: str,
        client_id: str,
        app_name: str,
        scopes: ScopeSet,
        family: str,
        until_us: int | None,
    ) -> str:
        """The Consent of a grant the person just gave; returns its id. Raises
        ``PortalError`` (from the door) when it cannot be written."""
        caller = await self.caller_for(account_id, patient)
        if caller is None:
            from hygie.web.portal.door import PortalError  # noqa: PLC0415

            raise PortalError(403, "Vous n’agissez pas pour ce patient.")
        # the person, or the RelatedPerson (a parent) acting for them
        subject = caller.subject or ""
        performer = subject if subject.startswith(("Patient/", "RelatedPerson/")) else f"Patient/{patient}"
        consent = app_consent(
            patient=patient,
            performer=performer,
            client_id=client_id,
            app_name=app_name,
            scopes=scopes,
            family=family,
            now_us=self.clock(),
            until_us=until_us,
        )
        from hygie.web.portal.door import as_json  # noqa: PLC0415

        return str(
            as_json((await self.door.call(caller, "POST", "Consent", resource=consent)).body).get("id", "")
        )

    async def withdraw(self, account_id: str, patient: str, family: str) -> bool:
        """The Consent of a withdrawn grant becomes inactive, its period ended now."""
        caller = await self.caller_for(account_id, patient)
        if caller is None:
            return False
        found = await self.door.search(
            caller, "Consent", [("patient", patient), ("identifier", f"{GRANT_SYSTEM}|{family}")], limit=5
        )
        for consent in found:
            if consent.get("status") != "active":
                continue
            provision = dict(consent.get("provision") or {})
            provision["period"] = {**(provision.get("period") or {}), "end": _instant(self.clock())}
            changed = {**consent, "status": "inactive", "provision": provision}
            changed.pop("meta", None)
            await self.door.call(caller, "PUT", f"Consent/{consent['id']}", resource=changed)
        return bool(found)


# the durations a person may choose on the consent screen (days, words), up to the app's maximum
DURATIONS = ((30, "1 mois"), (90, "3 mois"), (180, "6 mois"), (365, "1 an"), (730, "2 ans"), (1825, "5 ans"))
UNLISTED_MAX_DAYS = 365  # an app registered outside the store (the operator's own)


def durations(max_days: int) -> list[tuple[int, str]]:
    """The choices for an app that may be authorised ``max_days`` at most (never none)."""
    found = [(d, words) for d, words in DURATIONS if d <= max_days]
    return found or [(max_days, f"{max_days} jour{'s' if max_days > 1 else ''}")]


def default_days(max_days: int) -> int:
    """The duration preselected: three months, or less when the app may not have that long."""
    choices = durations(max_days)
    return choices[min(1, len(choices) - 1)][0]


class ConsentScreen:
    """What the one consent screen shows of an app and does once the person accepts: the store's
    record of the app (publisher, category, evaluation status, purpose, longest duration) and the
    Consent of the grant (``web/oauth.py`` calls it)."""

    def __init__(self, store: Any, consents: AppConsents) -> None:
        self.store = store  # hygie.store.service.StoreService
        self.consents = consents

    async def describe(self, client_id: str) -> dict[str, Any]:
        app = await self.store.app_of_client(client_id)
        if app is None:
            return {
                "listed": False,
                "purpose": "",
                "publisher": "",
                "status": "Application de l’opérateur, hors catalogue",
                "category": "",
                "app_id": "",
                "durations": durations(UNLISTED_MAX_DAYS),
                "default_days": default_days(UNLISTED_MAX_DAYS),
            }
        publisher = await self.store.publisher(app.publisher_id)
        return {
            "listed": True,
            "purpose": app.purpose,
            "publisher": publisher.name if publisher else "",
            "status": app.state_label,
            "category": app.category_label,
            "app_id": app.id,
            "durations": durations(app.max_days),
            "default_days": default_days(app.max_days),
        }
