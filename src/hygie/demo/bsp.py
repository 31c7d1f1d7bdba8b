"""The demo's professionals for the BSP: besides Claire's GP, a pharmacist of her region (who
dispenses her prescriptions from their QR code) and a cardiologist with no relation to her (who
must declare one, or open an emergency access, to read her record).

Both are professionals of the demo directory, in the hub of the GP's region (``demo/directory.py``),
found through the FHIR search as the operator; their accounts have a TOTP second factor like the
GP's, and the URI is printed by ``hygie demo``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from hygie.auth.accounts import AccountService, DuplicateLogin
from hygie.demo import codes
from hygie.demo.accounts import DEMO_PASSWORD, DOMAIN, first_resource, operator_call

if TYPE_CHECKING:
    from hygie.fhir.interactions import FhirService

__all__ = ["colleague_accounts"]


async def _colleague(
    service: FhirService, gp_id: str, params: list[tuple[str, str]]
) -> dict[str, Any] | None:
    """A PractitionerRole matching ``params`` in a structure of the GP's city (or anywhere)."""
    gp_role = await first_resource(service, "PractitionerRole", [("practitioner", f"Practitioner/{gp_id}")])
    city = ""
    if gp_role is not None:
        organization_of: Any = gp_role.get("organization") or {}
        org_ref = str(organization_of.get("reference", ""))
        organization: Any = await first_resource(service, org_ref, []) if org_ref else None
        addresses = (organization or {}).get("address") or [{}]
        city = str(addresses[0].get("city") or "")
    if city:
        bundle = await operator_call(
            service, "GET", "Organization", [("address-city", city), ("_count", "50")]
        )
        orgs = [str(e["resource"]["id"]) for e in bundle.get("entry", []) if e.get("resource")]
        if orgs:
            found = await first_resource(
                service,
                "PractitionerRole",
                [*params, ("organization", ",".join(f"Organization/{o}" for o in orgs))],
            )
            if found is not None:
                return dict(found)
    anywhere = await first_resource(service, "PractitionerRole", params)
    return dict(anywhere) if anywhere is not None else None


async def colleague_accounts(
    service: FhirService, accounts: AccountService, gp_id: str
) -> list[tuple[str, str, str | None]]:
    """Create (or find again) the pharmacist's and the cardiologist's accounts: (login, who, TOTP URI)."""
    out: list[tuple[str, str, str | None]] = []
    wanted = (
        ("pharmacien", [("role", codes.PHARMACIST.code)], "pharmacien(ne) d’officine"),
        (
            "cardiologue",
            [("specialty", codes.CARDIOLOGIST.specialty_code or "")],
            "cardiologue, sans relation avec Claire",
        ),
    )
    for local, params, what in wanted:
        role = await _colleague(service, gp_id, params)
        reference = str(((role or {}).get("practitioner") or {}).get("reference", ""))
        if not reference.startswith("Practitioner/"):
            continue
        practitioner_id = reference.split("/", 1)[1]
        login = f"{local}@{DOMAIN}"
        uri = None
        with contextlib.suppress(DuplicateLogin):
            _, uri = await accounts.create(
                "professional", login, DEMO_PASSWORD, totp=True, practitioner_id=practitioner_id
            )
        if uri is None:
            existing = await accounts.by_login(login)
            if existing is not None and existing.totp_secret:
                import pyotp  # noqa: PLC0415

                uri = pyotp.TOTP(existing.totp_secret).provisioning_uri(name=login, issuer_name="Hygie")
        display = str(((role or {}).get("practitioner") or {}).get("display") or "")
        out.append((login, f"{display}, {what}".strip(", "), uri))
    return out
