"""ENS "Mon espace" in a browser: the space's state, the preview of closing, closing (once), the
record shut to professionals, the portal reduced to this page, and reopening.

Every page state is checked with axe-core.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from bearer_tokens import bearer
from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import create_resource
from hygie.domain.access import Caller
from hygie.fhir.outcome import NotFound
from hygie.fhir.request import FhirRequest
from hygie.fhir.router import route

LiveHygie = Citizen = Any


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


def pro_headers(hygie: LiveHygie) -> dict[str, str]:
    return dict(
        hygie.call(
            bearer(
                hygie.runtime,
                kind="professional",
                scope="openid",
                fhir_user=f"Practitioner/{hygie.practitioner}",
                client_id="hygie-portal",
            )
        )
    )


async def operator_read(hygie: LiveHygie, path: str, query: list[tuple[str, str]] | None = None) -> Any:
    response = await route(
        hygie.runtime.service, FhirRequest("GET", path, query or [], caller=Caller.operator("tests"))
    )
    body = response.body
    return orjson.loads(body) if isinstance(body, bytes) else orjson.loads(orjson.dumps(body))


def test_close_the_space_after_a_preview_then_reopen_it(
    page: Any, hygie: LiveHygie, citizen: Citizen, shots: Path
) -> None:
    subject = {"reference": f"Patient/{citizen.patient_id}"}
    hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "CareTeam",
                "status": "active",
                "subject": subject,
                "participant": [{"member": {"reference": f"Practitioner/{hygie.practitioner}"}}],
            },
        )
    )
    document = hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "subject": subject,
                "description": "Compte rendu de consultation",
                "author": [{"reference": f"Practitioner/{hygie.practitioner}"}],
                "content": [{"attachment": {"contentType": "text/plain", "data": "Qm9uam91cg=="}}],
            },
        )
    )
    own_weight = hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}], "text": "Poids"},
                "subject": subject,
                "performer": [subject],
                "valueQuantity": {"value": 64, "unit": "kg"},
            },
        )
    )
    api = f"{hygie.fhir}/DocumentReference/{document}"
    assert httpx.get(api, headers=pro_headers(hygie)).status_code == 200

    page.goto(f"{hygie.base}/ens/mon-espace")
    fill_sign_in(page, citizen.login, citizen.password)
    page.wait_for_url(f"{hygie.base}/ens/mon-espace")
    assert "est ouvert" in page.locator("#etat-espace").inner_text()
    assert_accessible(page, "my space, open")

    # within the opt-out window: refusing the space, after its preview
    page.get_by_role("link", name="Refuser l’espace").click()
    page.wait_for_url(f"{hygie.base}/ens/mon-espace/fermer")
    assert "Documents : 1" in page.locator("#archive").inner_text()
    assert "Mesures que vous avez saisies : 1" in page.locator("#suppression").inner_text()
    assert page.get_by_role("link", name="Exporter mon dossier").count() == 1
    assert_accessible(page, "closing preview")
    page.screenshot(path=str(shots / "ens-fermeture.png"), full_page=True)
    page.locator("#confirmer-fermeture").click()
    page.wait_for_selector("#confirmation-erreur")
    assert_accessible(page, "closing preview with errors")

    csrf = page.locator("input[name=csrf]").first.input_value()
    jeton = page.locator("form[action='/ens/mon-espace/fermer'] input[name=jeton]").input_value()
    page.locator("label[for=confirmation]").click()
    page.locator("#confirmer-fermeture").click()
    page.wait_for_url(f"{hygie.base}/ens/mon-espace")
    assert "a été refusé" in page.locator("#etat-espace").inner_text()
    assert page.get_by_role("button", name="Rouvrir l’espace").count() == 1
    assert_accessible(page, "my space, closed")

    # the same form sent again closes nothing twice
    again = page.request.post(
        f"{hygie.base}/ens/mon-espace/fermer", form={"csrf": csrf, "jeton": jeton, "confirmation": "oui"}
    )
    assert again.ok
    consents = hygie.call(
        operator_read(
            hygie,
            "Consent",
            [
                ("patient", citizen.patient_id),
                ("category", "https://hygie.example/fhir/CodeSystem/consent-category|ens"),
            ],
        )
    )
    assert len(consents["entry"]) == 1
    assert consents["entry"][0]["resource"]["meta"]["versionId"] == "1"
    assert consents["entry"][0]["resource"]["provision"]["type"] == "deny"

    # professionals no longer read anything of the record; the person's own entries are gone
    headers = pro_headers(hygie)
    assert httpx.get(api, headers=headers).status_code == 404
    found = httpx.get(
        f"{hygie.fhir}/DocumentReference", params={"patient": citizen.patient_id}, headers=headers
    )
    assert found.status_code == 200 and not found.json().get("entry")
    # erased for good, as the page promised: no tombstone (404, not 410), no past version
    for path in (f"Observation/{own_weight}", f"Observation/{own_weight}/_history"):
        with pytest.raises(NotFound):
            hygie.call(operator_read(hygie, path))
    weights = hygie.call(operator_read(hygie, "Observation/_history", [("_count", "200")]))
    assert not [e for e in weights.get("entry", []) if e["fullUrl"].endswith(f"/Observation/{own_weight}")]
    # the closing is in the audit trail, as the person's own act (the Consent they created, and
    # the deletion of their entry, in one request)
    records = hygie.call(hygie.runtime.audit.list_for_patient(citizen.patient_id, count=200)).records
    mine = [r.entry for r in records if r.entry.agent == f"Patient/{citizen.patient_id}"]
    assert any(e.action == "C" and b"PatientCreate" in e.content for e in mine)
    erased = [e for e in mine if e.action == "D" and f"Observation/{own_weight}".encode() in e.content]
    assert len(erased) == 1 and b'"valueString":"_expunge=true"' in erased[0].content
    # the portal shows only this page
    page.goto(f"{hygie.base}/ens/controles")
    page.wait_for_url(f"{hygie.base}/ens/mon-espace")
    page.goto(f"{hygie.base}/ens/export/dossier.json")
    page.wait_for_url(f"{hygie.base}/ens/mon-espace")

    page.get_by_role("button", name="Rouvrir l’espace").click()
    page.wait_for_url(f"{hygie.base}/ens")
    assert "rouvert" in page.locator(".fr-alert").first.inner_text()
    assert httpx.get(api, headers=headers).status_code == 200
    page.goto(f"{hygie.base}/ens/mon-espace")
    assert "est ouvert" in page.locator("#etat-espace").inner_text()
    assert "rouvert le" in page.locator("#etat-espace").inner_text()
    assert_accessible(page, "my space, reopened")
