"""Demo sign-in accounts: one per demo citizen, and the general practitioner of the first one.

They are created once, after the demo data is loaded, linked to the loaded Patient (found by
its INS) and to the Practitioner of the directory. Demo passwords are public by design (they are
printed and listed in the README): a demo data folder is never production data.
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from hygie.auth.accounts import AccountService, DuplicateLogin
from hygie.domain.access import Caller
from hygie.fhir.interactions import FhirService
from hygie.fhir.request import FhirRequest
from hygie.fhir.router import route

__all__ = ["DEMO_PASSWORD", "DemoLogin", "create_demo_accounts"]

DEMO_PASSWORD = "Hygie-demo-2026"
DOMAIN = "demo.hygie.fr"


@dataclass(frozen=True, slots=True)
class DemoLogin:
    login: str
    kind: str
    who: str
    totp_uri: str | None = None

    def line(self) -> str:
        role = {
            "citizen": "citoyen",
            "professional": "professionnel",
            "publisher": "éditeur",
            "authority": "autorité",
        }.get(self.kind, self.kind)
        text = f"{self.login} / {DEMO_PASSWORD} ({role} : {self.who})"
        if self.totp_uri:
            text += f"\n      second facteur (TOTP) : {self.totp_uri}"
        return text


def _ascii(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if c.isascii()).lower().replace(" ", "-")


async def operator_call(
    service: FhirService, method: str, path: str, query: Sequence[tuple[str, str]] = (), **kw: Any
) -> Any:
    """One FHIR interaction as the demo's operator, audited; its JSON answer (or error outcome)."""
    request = FhirRequest(method, path, list(query), caller=Caller.operator("hygie demo"), **kw)
    response = await route(service, request)
    await service.flush_audit(request, response.status)
    body = response.body
    return orjson.loads(body) if isinstance(body, bytes) else orjson.loads(orjson.dumps(body))


async def first_resource(
    service: FhirService, path: str, query: list[tuple[str, str]]
) -> dict[str, object] | None:
    caller = Caller.operator("hygie demo")
    response = await route(service, FhirRequest("GET", path, query, caller=caller))
    body = response.body
    if isinstance(body, bytes):
        found: dict[str, object] = orjson.loads(body)
        return found
    if isinstance(body, dict):
        body = orjson.loads(orjson.dumps(body))  # entries hold raw JSON fragments
        entries = [e for e in body.get("entry", []) if e.get("search", {}).get("mode") == "match"]
        if entries:
            resource: dict[str, object] = entries[0]["resource"]
            return resource
    return None


async def create_demo_accounts(service: FhirService, accounts: AccountService) -> list[DemoLogin]:
    """Create (or find again) the demo accounts; returns their logins for printing."""
    from hygie.demo.generator import DEMO_CITIZENS  # noqa: PLC0415

    logins: list[DemoLogin] = []
    family: list[DemoLogin] = []
    gp_id: str | None = None
    for citizen in DEMO_CITIZENS:
        patient = await first_resource(service, "Patient", [("identifier", citizen.ins)])
        if patient is None:
            continue
        login = f"{_ascii(citizen.given)}.{_ascii(citizen.used_family or citizen.family)}@{DOMAIN}"
        who = f"{citizen.given} {citizen.used_family or citizen.family}"
        with contextlib.suppress(DuplicateLogin):  # already created by an earlier run
            await accounts.create("citizen", login, DEMO_PASSWORD, patient_id=str(patient["id"]))
        logins.append(DemoLogin(login, "citizen", who))
        if citizen.ins == "216096938305712":  # Léa BERNARD, a child: her parents run her space
            from hygie.demo.ens_family import create_family_accounts  # noqa: PLC0415

            family.extend(await create_family_accounts(service, accounts, str(patient["id"])))
        if gp_id is None:
            refs = patient.get("generalPractitioner") or []
            if isinstance(refs, list) and refs:
                reference = str(refs[0].get("reference", ""))
                if reference.startswith("Practitioner/"):
                    gp_id = reference.split("/", 1)[1]
    if gp_id is not None:
        practitioner = await first_resource(service, f"Practitioner/{gp_id}", [])
        if practitioner is not None:
            names = practitioner.get("name") or [{}]
            name = names[0] if isinstance(names, list) and names else {}
            who = f"Dr {' '.join(name.get('given', []))} {name.get('family', '')}".strip()
            login = f"medecin@{DOMAIN}"
            uri = None
            try:
                _, uri = await accounts.create(
                    "professional", login, DEMO_PASSWORD, totp=True, practitioner_id=gp_id
                )
            except DuplicateLogin:
                existing = await accounts.by_login(login)
                if existing is not None and existing.totp_secret:
                    import pyotp  # noqa: PLC0415

                    uri = pyotp.TOTP(existing.totp_secret).provisioning_uri(name=login, issuer_name="Hygie")
            logins.append(DemoLogin(login, "professional", f"{who}, médecin traitant", uri))
            from hygie.demo.bsp import colleague_accounts  # noqa: PLC0415

            for colleague, colleague_who, colleague_uri in await colleague_accounts(service, accounts, gp_id):
                logins.append(DemoLogin(colleague, "professional", colleague_who, colleague_uri))
    return logins + family
