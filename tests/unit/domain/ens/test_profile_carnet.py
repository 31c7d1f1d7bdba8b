"""The profile's and the carnet's rules: what a person types becomes FHIR, or a French error per
field (future dates, empty required fields, codes outside the lists, files that are no PDF)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from hygie.domain.ens import carnet, profile
from hygie.domain.relations import relations_from
from hygie.fhir.targets import target_of_resource
from hygie.fhir.validation import validate_resource

TODAY = date(2026, 3, 1)
NOW = "2026-03-01T09:00:00+01:00"
ME = "Patient/claire"
HELPER = "RelatedPerson/aidant"


def build(kind: str, values: dict[str, str], actor: str = ME) -> tuple[dict[str, Any] | None, dict[str, str]]:
    return carnet.build(
        kind, values, patient_ref=ME, actor_ref=actor, today=TODAY, now=NOW, birth=date(1985, 4, 12)
    )


def valid(resource: dict[str, Any]) -> None:
    assert validate_resource({**resource, "id": "x"}) == []


# --------------------------------------------------------------------------- dates
@pytest.mark.parametrize(
    ("text", "expected"),
    [("2020-05-01", date(2020, 5, 1)), ("01/05/2020", date(2020, 5, 1)), ("1/5/2020", date(2020, 5, 1))],
)
def test_days_in_both_forms(text: str, expected: date) -> None:
    assert carnet.parse_day(text, today=TODAY) == (expected, None)


def test_bad_days_say_why() -> None:
    assert "futur" in (carnet.parse_day("2026-03-02", today=TODAY)[1] or "")
    assert "naissance" in (carnet.parse_day("1980-01-01", today=TODAY, birth=date(1985, 4, 12))[1] or "")
    assert "JJ/MM/AAAA" in (carnet.parse_day("31/02/2020", today=TODAY)[1] or "")
    assert "JJ/MM/AAAA" in (carnet.parse_day("hier", today=TODAY)[1] or "")
    assert carnet.parse_day("", today=TODAY) == (None, None)
    assert "obligatoire" in (carnet.parse_day(" ", today=TODAY, required=True, what="La date")[1] or "")


# --------------------------------------------------------------------------- carnet entries
def test_an_allergy_of_ones_own_names_its_author() -> None:
    resource, errors = build(
        "allergie",
        {
            "substance": "arachide",
            "type": "allergy",
            "gravite": "high",
            "reaction": "Urticaire",
            "debut": "2010-06-01",
        },
    )
    assert errors == {} and resource is not None
    valid(resource)
    assert resource["code"]["coding"][0] == {
        "system": carnet.SNOMED,
        "code": "762952008",
        "display": "Arachide",
    }
    assert resource["category"] == ["food"] and resource["onsetDateTime"] == "2010-06-01"
    assert resource["verificationStatus"]["coding"][0]["code"] == "unconfirmed"
    assert target_of_resource("AllergyIntolerance", "claire", resource).authors == {ME}
    # a relative acting for her is the author of what they add
    helped, _ = build("allergie", {"substance": "latex", "type": "allergy", "gravite": "low"}, actor=HELPER)
    assert helped is not None
    assert target_of_resource("AllergyIntolerance", "claire", helped).authors == {HELPER}


def test_an_allergy_form_with_everything_wrong() -> None:
    resource, errors = build(
        "allergie", {"substance": "kryptonite", "type": "peut-etre", "gravite": "", "debut": "2999-01-01"}
    )
    assert resource is None
    assert set(errors) == {"substance", "type", "gravite", "debut"}
    assert "dans la liste" in errors["substance"] and "futur" in errors["debut"]
    _, errors = build("allergie", {"substance": "autre", "type": "intolerance", "gravite": "low"})
    assert errors == {"autre": "Précisez ce que c’est."}
    resource, errors = build(
        "allergie",
        {"substance": "autre", "autre": "Kiwi", "categorie": "food", "type": "intolerance", "gravite": "low"},
    )
    assert errors == {} and resource is not None and resource["code"] == {"text": "Kiwi"}
    valid(resource)


def test_a_condition_cured_before_it_began_is_refused() -> None:
    _, errors = build(
        "antecedent", {"maladie": "asthme", "statut": "resolved", "debut": "2010-01-01", "fin": "2005-01-01"}
    )
    assert "avant la date de début" in errors["fin"]
    _, errors = build("antecedent", {"maladie": "asthme", "statut": "active", "fin": "2005-01-01"})
    assert "guérie" in errors["fin"]
    resource, errors = build(
        "antecedent", {"maladie": "asthme", "statut": "resolved", "debut": "1990-01-01", "fin": "2005-01-01"}
    )
    assert errors == {} and resource is not None
    valid(resource)
    assert {"system": "http://hl7.org/fhir/sid/icd-10", "code": "J45.9"} in resource["code"]["coding"]
    assert resource["abatementDateTime"] == "2005-01-01"


@pytest.mark.parametrize(
    ("kind", "values", "resource_type"),
    [
        ("chirurgie", {"operation": "cesarienne", "date": "2015-02-03", "lieu": "Maternité"}, "Procedure"),
        (
            "traitement",
            {
                "medicament": "Levothyrox 75",
                "posologie": "1 le matin",
                "statut": "active",
                "debut": "2020-01-01",
            },
            "MedicationStatement",
        ),
        ("vaccin", {"vaccin": "J07BB02", "date": "2025-10-20", "lot": "AB123"}, "Immunization"),
        ("groupe-sanguin", {"groupe": "O-"}, "Observation"),
    ],
)
def test_each_kind_makes_a_valid_resource_authored_by_the_person(
    kind: str, values: dict[str, str], resource_type: str
) -> None:
    resource, errors = build(kind, values)
    assert errors == {} and resource is not None
    assert resource["resourceType"] == resource_type == carnet.KINDS[kind].resource_type
    valid(resource)
    assert ME in target_of_resource(resource_type, "claire", resource).authors
    # and reading it back gives the form as typed
    back = carnet.form_values(kind, resource)
    assert {k: v for k, v in back.items() if v} == {k: v for k, v in values.items() if v}


@pytest.mark.parametrize(
    ("kind", "values", "field"),
    [
        ("chirurgie", {"operation": "cesarienne"}, "date"),
        ("traitement", {"medicament": " ", "statut": "active"}, "medicament"),
        ("vaccin", {"vaccin": "J99XX99", "date": "2020-01-01"}, "vaccin"),
        ("vaccin", {"vaccin": "J07BB02", "date": "2030-01-01"}, "date"),
        ("vaccin", {"vaccin": "J07BB02", "date": "1980-01-01"}, "date"),
        ("groupe-sanguin", {"groupe": "Z+"}, "groupe"),
        ("groupe-sanguin", {}, "groupe"),
    ],
)
def test_required_fields_unknown_codes_and_impossible_dates(
    kind: str, values: dict[str, str], field: str
) -> None:
    resource, errors = build(kind, values)
    assert resource is None and field in errors


def test_summaries_of_professional_entries() -> None:
    pro = {
        "resourceType": "MedicationRequest",
        "medicationCodeableConcept": {"text": "Amlodipine 5 mg"},
        "dosageInstruction": [{"text": "1 comprimé le matin"}],
        "authoredOn": "2025-01-02T10:00:00+01:00",
    }
    summary = carnet.summary("traitement", pro)
    assert (summary.title, summary.details, summary.day) == (
        "Amlodipine 5 mg",
        "1 comprimé le matin",
        "2025-01-02",
    )


# --------------------------------------------------------------------------- profile
def test_used_names_are_set_and_cleared() -> None:
    patient = {
        "resourceType": "Patient",
        "name": [{"use": "official", "family": "MARTIN", "given": ["Claire"]}],
    }
    changed, errors = profile.with_used_names(patient, {"nom_usage": "dupont", "prenom_utilise": "Clara"})
    assert errors == {}
    assert changed["name"][1] == {"use": "usual", "family": "DUPONT", "given": ["Clara"]}
    cleared, _ = profile.with_used_names(changed, {"nom_usage": "", "prenom_utilise": ""})
    assert cleared["name"] == patient["name"]
    _, errors = profile.with_used_names(patient, {"nom_usage": "R2D2"})
    assert "lettres" in errors["nom_usage"]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("06 12 34 56 78", "+33 6 12 34 56 78"),
        ("06.12.34.56.78", "+33 6 12 34 56 78"),
        ("+33612345678", "+33 6 12 34 56 78"),
        ("0033 6 12 34 56 78", "+33 6 12 34 56 78"),
        ("+262 692 12 34 56", "+262 6 92 12 34 56"),
        ("12 34", None),
        ("06 12 34 56 7", None),
    ],
)
def test_phone_numbers(typed: str, expected: str | None) -> None:
    assert profile.normalize_phone(typed) == expected


def test_contact_details_keep_other_contact_points() -> None:
    patient = {"resourceType": "Patient", "telecom": [{"system": "fax", "value": "01 00 00 00 00"}]}
    changed, errors = profile.with_contact(
        patient, {"telephone": "0612345678", "courriel": "Claire@Example.fr"}
    )
    assert errors == {}
    assert changed["telecom"] == [
        {"system": "fax", "value": "01 00 00 00 00"},
        {"system": "phone", "value": "+33 6 12 34 56 78", "use": "mobile"},
        {"system": "email", "value": "claire@example.fr", "use": "home"},
    ]
    _, errors = profile.with_contact(patient, {"telephone": "abc", "courriel": "claire@"})
    assert set(errors) == {"telephone", "courriel"}


def test_a_trusted_person_opens_no_access_unless_chosen() -> None:
    values = {"nom": "Rossi", "prenom": "Paul", "lien": "PRN", "telephone": "0611223344", "acces": "non"}
    person, errors = profile.trusted_person(values, patient_ref=ME, today=TODAY)
    assert errors == {} and person is not None
    valid(person)
    # a parent, named trusted person: neither representative nor aidant
    assert relations_from({**person, "id": "rp"}, majority_us=None) == []
    view = profile.related_view({**person, "id": "rp"}, majority_us=None, now_us=0)
    assert view.trusted and view.access is None and "Personne de confiance" in view.roles
    chosen, _ = profile.trusted_person({**values, "acces": "oui"}, patient_ref=ME, today=TODAY)
    assert chosen is not None
    assert [r.kind for r in relations_from({**chosen, "id": "rp"})] == ["aidant"]
    assert profile.related_view({**chosen, "id": "rp"}, majority_us=None, now_us=0).access == "aidant"


def test_a_trusted_person_form_with_errors() -> None:
    person, errors = profile.trusted_person({"lien": "ENEMY"}, patient_ref=ME, today=TODAY)
    assert person is None and set(errors) == {"nom", "prenom", "lien", "telephone"}


def test_civil_status_reads_the_ins_traits() -> None:
    from hygie.domain.identity.fr_core import EXT_BIRTH_LIST_GIVEN_NAME, EXT_IDENTITY_RELIABILITY

    patient = {
        "resourceType": "Patient",
        "extension": [
            {
                "url": EXT_IDENTITY_RELIABILITY,
                "extension": [
                    {
                        "url": "identityStatus",
                        "valueCoding": {
                            "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status",
                            "code": "QUAL",
                        },
                    }
                ],
            },
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
                "valueAddress": {"city": "Orléans", "postalCode": "45000"},
            },
        ],
        "identifier": [
            {"use": "official", "system": "urn:oid:1.2.250.1.213.1.4.8", "value": "285044523412351"}
        ],
        "name": [
            {
                "use": "official",
                "family": "MARTIN",
                "given": ["Claire"],
                "extension": [{"url": EXT_BIRTH_LIST_GIVEN_NAME, "valueString": "Claire Louise Anne"}],
            },
            {"use": "usual", "family": "DUPONT", "given": ["Claire"]},
        ],
        "gender": "female",
        "birthDate": "1985-04-12",
    }
    civil = profile.civil_status(patient)
    assert (civil.birth_name, civil.birth_given, civil.used_name) == (
        "MARTIN",
        "Claire Louise Anne",
        "DUPONT",
    )
    assert (
        civil.ins == "285044523412351" and civil.status == "QUAL" and civil.birth_place == "Orléans (45000)"
    )
    assert civil.birth_date == date(1985, 4, 12) and civil.sex == "Féminin"
    # a Patient without INS traits is shown as far as it goes
    bare = profile.civil_status({"resourceType": "Patient", "name": [{"family": "X"}]})
    assert bare.incomplete and bare.status == "PROV" and bare.ins is None


# --------------------------------------------------------------------------- wishes
def test_advance_directives_flag() -> None:
    flag, errors = profile.directive_flag({"redigees": "oui"}, patient_ref=ME, actor_ref=ME, now=NOW)
    assert flag is None and "lieu" in errors
    flag, errors = profile.directive_flag(
        {"redigees": "oui", "lieu": "domicile", "precision": "Tiroir"}, patient_ref=ME, actor_ref=ME, now=NOW
    )
    assert flag is not None
    valid(flag)
    assert profile.flag_of(flag) == profile.Flag(True, "domicile", "Tiroir", "2026-03-01")
    no, _ = profile.directive_flag(
        {"redigees": "non", "lieu": "domicile"}, patient_ref=ME, actor_ref=ME, now=NOW
    )
    assert no is not None and no["valueBoolean"] is False and "component" not in no


def real_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "Mes directives")
    return bytes(pdf.output())


def test_only_readable_pdfs_are_accepted() -> None:
    good = real_pdf()
    assert profile.check_pdf("d.pdf", "application/pdf", good) is None
    assert "vide" in (profile.check_pdf("d.pdf", "application/pdf", b"") or "")
    assert "PDF sont acceptés" in (profile.check_pdf("d.docx", "application/msword", good) or "")
    assert "n’est pas un PDF" in (profile.check_pdf("d.pdf", "application/pdf", b"GIF89a....") or "")
    assert "endommagé" in (profile.check_pdf("d.pdf", "application/pdf", b"%PDF-1.7\n garbage") or "")
    assert "endommagé" in (profile.check_pdf("d.pdf", "application/pdf", good[: len(good) // 3]) or "")
    assert "volumineux" in (profile.check_pdf("d.pdf", "application/pdf", good, max_bytes=100) or "")


def test_the_directive_document_carries_its_pdf() -> None:
    data = real_pdf()
    document = profile.directive_document(
        filename="d.pdf", data=data, patient_ref=ME, actor_ref=ME, now=NOW, title=""
    )
    valid(document)
    codes = {c["code"] for c in document["type"]["coding"]}
    assert codes == {"75320-2", "EXPPAT_3"}
    assert document["category"][0]["coding"][0]["code"] == "90"
    assert document["content"][0]["attachment"]["size"] == len(data)


def test_organ_donation_positions() -> None:
    consent, errors = profile.donation_consent(
        {"position": "refus-partiel"}, [], patient_ref=ME, actor_ref=ME, now=NOW
    )
    assert consent is None and "organes" in errors
    _, errors = profile.donation_consent(
        {"position": "refus-partiel"}, ["rate"], patient_ref=ME, actor_ref=ME, now=NOW
    )
    assert "dans la liste" in errors["organes"]
    _, errors = profile.donation_consent({"position": "peut-etre"}, [], patient_ref=ME, actor_ref=ME, now=NOW)
    assert "position" in errors
    for choice, organs, expected in (
        ("accepte", [], ("accepte", ())),
        ("refus", [], ("refus", ())),
        ("refus-partiel", ["cornees", "coeur"], ("refus-partiel", ("coeur", "cornees"))),
    ):
        consent, errors = profile.donation_consent(
            {"position": choice}, organs, patient_ref=ME, actor_ref=ME, now=NOW
        )
        assert consent is not None, errors
        valid(consent)
        donation = profile.donation_of(consent)
        assert (donation.choice, donation.organs) == expected
        # a statement of wishes: never an access rule
        assert relations_from({**consent, "id": "c"}) == []
