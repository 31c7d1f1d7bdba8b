"""Demo content for a minor's space: Léa BERNARD's two parents run it.

* :func:`seed_demo` adds, for the demo child, her two legal representatives as ``RelatedPerson``
  (mother ``MTH`` and father ``FTH``: a parent is a legal representative until the child comes of
  age) and, when a practitioner is given, a paediatric care team — so that "Qui voit mon dossier"
  shows a care team and two delegations;
* :func:`create_family_accounts` creates the parents' citizen accounts
  (``parent1.bernard@demo.hygie.fr`` and ``parent2.bernard@demo.hygie.fr``, the demo password)
  and binds each to their RelatedPerson (``AccountService.link_related``): signed in, a parent
  opens Léa's space from the space switcher, as her legal representative.

Idempotent: the RelatedPersons and the care team are found again by their identifiers, and
existing accounts are linked again (which changes nothing).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from hygie.auth.accounts import AccountService, DuplicateLogin
from hygie.demo.accounts import DEMO_PASSWORD, DemoLogin, operator_call
from hygie.domain.access import Caller

if TYPE_CHECKING:
    from hygie.bootstrap import Runtime
    from hygie.fhir.interactions import FhirService

__all__ = ["LEA_INS", "PARENTS", "create_family_accounts", "parents_of", "seed_demo"]

CALLER = Caller.operator("hygie demo")
IDENTIFIER = "urn:hygie:demo:ens-family"
LEA_INS = "216096938305712"
ROLE_CODES = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
# (login, given name, v3-RoleCode, gender, phone)
PARENTS = (
    ("parent1.bernard@demo.hygie.fr", "Camille", "MTH", "female", "06 12 34 56 78"),
    ("parent2.bernard@demo.hygie.fr", "Thomas", "FTH", "male", "06 98 76 54 32"),
)


async def _find(service: FhirService, rtype: str, patient_id: str, key: str) -> dict[str, Any] | None:
    bundle = await operator_call(
        service, "GET", rtype, [("patient", patient_id), ("identifier", f"{IDENTIFIER}|{patient_id}:{key}")]
    )
    entries = [
        e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"
    ]
    return entries[0] if entries else None


async def parents_of(service: FhirService, patient_id: str) -> list[tuple[str, str, str]]:
    """The child's two parents as (login, RelatedPerson id, "Prénom NOM"), created if missing."""
    out = []
    for login, given, code, gender, phone in PARENTS:
        found = await _find(service, "RelatedPerson", patient_id, login)
        if found is None:
            found = await operator_call(
                service,
                "POST",
                "RelatedPerson",
                resource={
                    "resourceType": "RelatedPerson",
                    "identifier": [{"system": IDENTIFIER, "value": f"{patient_id}:{login}"}],
                    "active": True,
                    "patient": {"reference": f"Patient/{patient_id}"},
                    "relationship": [
                        {
                            "coding": [{"system": ROLE_CODES, "code": code}],
                            "text": "Mère" if code == "MTH" else "Père",
                        }
                    ],
                    "name": [{"use": "official", "family": "BERNARD", "given": [given]}],
                    "gender": gender,
                    "telecom": [
                        {"system": "phone", "value": phone, "use": "mobile"},
                        {"system": "email", "value": login},
                    ],
                },
                headers={"prefer": "return=representation"},
            )
        out.append((login, str(found["id"]), f"{given} BERNARD"))
    return out


async def seed_demo(runtime: Runtime, patient_id: str, practitioner_id: str | None) -> None:
    """The demo child's parents (legal representatives) and, given a practitioner, her care team."""
    service = runtime.service
    await parents_of(service, patient_id)
    if practitioner_id is None or await _find(service, "CareTeam", patient_id, "suivi-pediatrique"):
        return
    await operator_call(
        service,
        "POST",
        "CareTeam",
        resource={
            "resourceType": "CareTeam",
            "identifier": [{"system": IDENTIFIER, "value": f"{patient_id}:suivi-pediatrique"}],
            "status": "active",
            "name": "Suivi pédiatrique",
            "subject": {"reference": f"Patient/{patient_id}"},
            "participant": [{"member": {"reference": f"Practitioner/{practitioner_id}"}}],
        },
    )


async def create_family_accounts(
    service: FhirService, accounts: AccountService, patient_id: str
) -> list[DemoLogin]:
    """The parents' citizen accounts, each bound to their RelatedPerson of the child."""
    logins = []
    for login, related_id, name in await parents_of(service, patient_id):
        account = None
        with contextlib.suppress(DuplicateLogin):  # already created by an earlier run
            account, _ = await accounts.create("citizen", login, DEMO_PASSWORD)
        if account is None:
            account = await accounts.by_login(login)
        if account is None:
            continue
        await accounts.link_related(account.id, related_id)
        logins.append(DemoLogin(login, "citizen", f"{name}, parent de Léa BERNARD"))
    return logins
