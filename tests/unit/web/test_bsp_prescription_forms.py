"""The professionals' e-prescription forms and the operations' Parameters: what a prescriber types
becomes ``$prescribe`` parts, each refusal goes back beside its field on the right row of the
form, a stored line prefills a renewal, and a pharmacist's line becomes ``$dispense``."""

from __future__ import annotations

from typing import Any

from hygie.domain.eprescription.medicines import catalogue
from hygie.web.bsp.pharmacy import dispense_parameters, opening_parameters, substitutes
from hygie.web.bsp.prescriptions import FORM_LINES, errors_of, line_values, prescription_parameters

DOLIPRANE = "3400935955838"
TAHOR = "3400939000145"


def _empty() -> dict[str, str]:
    values = {"debut": "", "fin": "", "renouvellement": ""}
    for i in range(FORM_LINES):
        for name in ("medicament", "dose", "prises", "duree", "consignes", "non-substituable"):
            values[f"l{i}-{name}"] = ""
        values[f"l{i}-renouvellements"] = "0"
    return values


def _concept(cip13: str) -> dict[str, Any]:
    medicine = catalogue().by_cip13(cip13)
    assert medicine is not None
    return medicine.codeable_concept()


def _parts(line: dict[str, Any]) -> dict[str, Any]:
    return {p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in line["part"]}


def test_typed_rows_become_lines_and_empty_rows_are_left_out() -> None:
    values = _empty()
    values.update(
        {
            "l1-medicament": "DOLIPRANE 1000 mg, comprimé",
            "l1-dose": "1/2",
            "l1-prises": "3",
            "l1-duree": "5",
            "l1-consignes": "si douleur",
            "l3-medicament": "TAHOR 20 mg, comprimé pelliculé",
            "l3-dose": "1,5",
            "l3-prises": "trois",
            "l3-renouvellements": "2",
            "l3-non-substituable": "oui",
            "fin": "2020-01-01",
            "renouvellement": "t1",
        }
    )
    parameters, rows = prescription_parameters("lea", values)
    assert rows == [1, 3]
    params = parameters["parameter"]
    assert params[0] == {"name": "patient", "valueString": "Patient/lea"}
    assert {"name": "end", "valueDate": "2020-01-01"} in params
    assert {"name": "renews", "valueString": "Task/t1"} in params
    first, second = (_parts(p) for p in params if p["name"] == "line")
    assert first == {
        "medication": "DOLIPRANE 1000 mg, comprimé",
        "dose": 0.5,
        "takes-per-day": 3,
        "duration-days": 5,
        "renewals": 0,
        "substitution-allowed": True,
        "instructions": "si douleur",
    }
    # what does not parse is sent as typed: the operation's rules say what is wrong with it
    assert second["dose"] == 1.5 and second["takes-per-day"] == "trois" and "duration-days" not in second
    assert second["renewals"] == 2 and second["substitution-allowed"] is False


def test_each_refusal_goes_beside_its_field_on_the_row_it_came_from() -> None:
    issues = [
        ("Parameters.parameter[line][1].part[dose]", "Dose impossible."),
        ("Parameters.parameter[line][0].part[medication]", "Médicament inconnu."),
        ("Parameters.parameter[line][0].part[medication]", "Encore."),
        ("Parameters.parameter[end]", "La date est passée."),
        ("Parameters.parameter[renews]", "Demande close."),
        (None, "Autre chose."),
    ]
    fields, summary = errors_of(issues, [1, 3], "l0-medicament")
    assert fields == {
        "l3-dose": "Dose impossible.",
        "l1-medicament": "Médicament inconnu. Encore.",
        "fin": "La date est passée.",
        "l0-medicament": "Demande close. Autre chose.",
    }
    assert summary[0] == ("l3-dose", "Ligne 4, dose : Dose impossible.")
    assert summary[3] == ("fin", "La date est passée.")


def test_a_stored_line_prefills_its_row() -> None:
    line = {
        "medicationCodeableConcept": _concept(TAHOR),
        "dosageInstruction": [
            {
                "timing": {"repeat": {"frequency": 2, "boundsDuration": {"value": 30}}},
                "doseAndRate": [{"doseQuantity": {"value": 0.5}}],
                "patientInstruction": "le soir",
            }
        ],
        "dispenseRequest": {"numberOfRepeatsAllowed": 2},
        "substitution": {"allowedBoolean": False},
    }
    assert line_values(2, line, catalogue()) == {
        "l2-medicament": "TAHOR 20 mg, comprimé pelliculé",
        "l2-dose": "0,5",
        "l2-prises": "2",
        "l2-duree": "30",
        "l2-renouvellements": "2",
        "l2-non-substituable": "oui",
        "l2-consignes": "le soir",
    }


def test_a_pharmacist_line_becomes_a_dispensing() -> None:
    by_code = {"code": "HYGIE-ORD1:X:Y"}
    assert opening_parameters(by_code) == [{"name": "code", "valueString": "HYGIE-ORD1:X:Y"}]
    assert opening_parameters({"number": "K7QF", "birthDate": "1980-02-01"}) == [
        {"name": "number", "valueString": "K7QF"},
        {"name": "birthDate", "valueDate": "1980-02-01"},
    ]
    handed = dispense_parameters(by_code, "l1", {"action": "delivrer", "quantite": "2", "generique": TAHOR})
    parts = _parts(handed["parameter"][1])
    assert parts["prescription"] == {"reference": "MedicationRequest/l1"}
    assert parts["quantity"] == 2 and parts["substitute"] == TAHOR
    refused = dispense_parameters(by_code, "l1", {"action": "non-delivre", "motif": "rupture de stock"})
    assert _parts(refused["parameter"][1]) == {
        "prescription": {"reference": "MedicationRequest/l1"},
        "not-delivered": "rupture de stock",
    }


def test_generics_are_offered_only_where_the_prescriber_allows_them() -> None:
    line: dict[str, Any] = {"medicationCodeableConcept": _concept(DOLIPRANE)}
    names = [m.name for m in substitutes(catalogue(), line)]
    assert "PARACETAMOL BIOGARAN 1000 mg, comprimé" in names
    assert "DOLIPRANE 1000 mg, comprimé" not in names and "DOLIPRANE 500 mg, comprimé" not in names
    line["substitution"] = {"allowedBoolean": False}
    assert substitutes(catalogue(), line) == []
