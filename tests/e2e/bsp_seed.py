"""What the BSP browser tests seed and do as several professionals: physicians with an MSSanté
mailbox and a structure, care-team membership, signing in as a given practitioner (a new account
with its own TOTP each time: a TOTP step is accepted once per account), reading what was stored.
Shared by ``test_bsp_messages`` and ``test_bsp_agenda``.
"""

from __future__ import annotations

from typing import Any

from browser import fill_sign_in
from conftest import PASSWORD, LiveHygie, create_resource
from hygie.domain.access import Caller
from hygie.web.portal.door import Door

TRE_G15 = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
MAIL_TYPE = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type"
TRE_R256 = "https://mos.esante.gouv.fr/NOS/TRE_R256-TypeMessagerie/FHIR/TRE-R256-TypeMessagerie"

_n = iter(range(1, 1_000_000))


def unique() -> int:
    """A number no other seed of this run used (names and ids told apart across tests)."""
    return next(_n)


def doctor(hygie: LiveHygie, family: str, given: str, *, structure: str | None = None) -> str:
    """A physician with an MSSanté mailbox (and a role in ``structure``); her Practitioner id."""
    family = f"{family}{next(_n)}"
    address = f"{given.lower()}.{family.lower()}@medecin.mssante.fr"
    pid = hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "Practitioner",
                "active": True,
                "name": [{"use": "usual", "family": family, "given": [given], "prefix": ["Dr"]}],
                "telecom": [
                    {
                        "system": "email",
                        "value": address,
                        "extension": [
                            {"url": MAIL_TYPE, "valueCoding": {"system": TRE_R256, "code": "MSSANTE"}}
                        ],
                    }
                ],
                "qualification": [{"code": {"coding": [{"system": TRE_G15, "code": "10"}]}}],
            },
        )
    )
    if structure:
        org = hygie.call(
            create_resource(
                hygie.runtime, {"resourceType": "Organization", "active": True, "name": structure}
            )
        )
        hygie.call(
            create_resource(
                hygie.runtime,
                {
                    "resourceType": "PractitionerRole",
                    "active": True,
                    "practitioner": {"reference": f"Practitioner/{pid}"},
                    "organization": {"reference": f"Organization/{org}", "display": structure},
                },
            )
        )
    return str(pid)


def in_care_team(hygie: LiveHygie, patient_id: str, practitioner_id: str) -> None:
    hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "CareTeam",
                "status": "active",
                "subject": {"reference": f"Patient/{patient_id}"},
                "participant": [{"member": {"reference": f"Practitioner/{practitioner_id}"}}],
            },
        )
    )


def sign_in_as(page: Any, hygie: LiveHygie, practitioner_id: str, path: str = "/bsp") -> None:
    """A new professional account (password + TOTP) for the practitioner, signed in on ``path``."""
    from urllib.parse import parse_qs, urlsplit

    accounts = hygie.runtime.accounts
    assert accounts is not None
    account, uri = hygie.call(
        accounts.create(
            "professional",
            f"pro.{practitioner_id}.{next(_n)}@example.fr",
            PASSWORD,
            totp=True,
            practitioner_id=practitioner_id,
        )
    )
    assert uri is not None
    page.context.clear_cookies()
    page.goto(f"{hygie.base}{path}")
    fill_sign_in(page, account.login, PASSWORD, parse_qs(urlsplit(uri).query)["secret"][0])
    page.wait_for_url(f"{hygie.base}{path}")


def stored(hygie: LiveHygie, resource_type: str, rid: str) -> dict[str, Any]:
    found = hygie.call(Door(hygie.runtime.service).read(Caller.operator("tests"), resource_type, rid))
    assert found is not None
    return found
