"""Demo content for the ENS "Mon profil" and "Carnet de santé" sections, for one demo citizen.

The generated population already holds the professionals' allergies, conditions, prescriptions
and immunizations. This adds what the person states herself, built by the same rules as the
portal's forms (:mod:`hygie.domain.ens.profile`, :mod:`hygie.domain.ens.carnet`):

* a trusted person (a sister), without access to the record;
* the answer "advance directives written, kept by the médecin traitant";
* her position on organ donation (no objection);
* a treatment she takes on her own (magnesium) and an old surgery (appendectomy);
* her blood group — recorded by her médecin traitant when one is given (a professional's entry,
  read-only for her), else by herself.

Idempotent: a second run finds the trusted person and adds nothing.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from hygie.demo.accounts import operator_call
from hygie.domain.access import Caller
from hygie.domain.ens import carnet, profile
from hygie.domain.relations import TRUSTED_PERSON_CODE

if TYPE_CHECKING:
    from hygie.bootstrap import Runtime
    from hygie.fhir.interactions import FhirService

__all__ = ["seed_demo"]

CALLER = Caller.operator("hygie demo")
NOW = "2026-01-15T10:00:00+01:00"
TODAY = date(2026, 1, 15)


async def _create(service: FhirService, resource: dict[str, Any]) -> None:
    await operator_call(service, "POST", resource["resourceType"], resource=resource)


async def seed_demo(runtime: Runtime, patient_id: str, practitioner_id: str | None) -> None:
    service = runtime.service
    patient_ref = f"Patient/{patient_id}"
    bundle = await operator_call(service, "GET", "RelatedPerson", [("patient", patient_id)])
    for entry in bundle.get("entry", []):
        codes = {
            c.get("code")
            for concept in entry.get("resource", {}).get("relationship", []) or []
            for c in concept.get("coding", []) or []
        }
        if TRUSTED_PERSON_CODE in codes:
            return  # already seeded
    trusted, errors = profile.trusted_person(
        {
            "nom": "Martin",
            "prenom": "Sophie",
            "lien": "SIB",
            "telephone": "06 45 12 78 90",
            "courriel": "sophie.martin@courriel.example",
            "acces": "non",
        },
        patient_ref=patient_ref,
        today=TODAY,
    )
    assert trusted is not None, errors
    await _create(service, trusted)

    flag, errors = profile.directive_flag(
        {"redigees": "oui", "lieu": "medecin", "precision": "Une copie chez ma sœur Sophie"},
        patient_ref=patient_ref,
        actor_ref=patient_ref,
        now=NOW,
    )
    assert flag is not None, errors
    await _create(service, flag)

    donation, errors = profile.donation_consent(
        {"position": "accepte"}, [], patient_ref=patient_ref, actor_ref=patient_ref, now=NOW
    )
    assert donation is not None, errors
    await _create(service, donation)

    for kind, values in (
        (
            "traitement",
            {"medicament": "Magnésium 300 mg", "posologie": "1 gélule le soir", "statut": "active"},
        ),
        ("chirurgie", {"operation": "appendicectomie", "date": "1998-07-14", "lieu": "Hôpital de la ville"}),
    ):
        resource, errors = carnet.build(
            kind, values, patient_ref=patient_ref, actor_ref=patient_ref, today=TODAY, now=NOW
        )
        assert resource is not None, errors
        await _create(service, resource)

    recorder = f"Practitioner/{practitioner_id}" if practitioner_id else patient_ref
    blood, errors = carnet.build(
        "groupe-sanguin", {"groupe": "A+"}, patient_ref=patient_ref, actor_ref=recorder, today=TODAY, now=NOW
    )
    assert blood is not None, errors
    await _create(service, blood)
