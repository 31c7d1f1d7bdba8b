"""E-prescription rules without I/O: the medicine list, numbers and QR payloads, what a prescriber
may write, and what a pharmacy may still hand over."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from hygie.domain.eprescription import dispensing, numbers
from hygie.domain.eprescription.document import qr_png, render_prescription
from hygie.domain.eprescription.medicines import Catalogue, Medicine, catalogue, ean13_key, is_cip13
from hygie.domain.eprescription.records import Issuer, PatientBanner, issuer_of, medication_request
from hygie.domain.eprescription.rules import (
    LineRequest,
    PrescriptionRefused,
    check_prescription,
    config_from,
)

TODAY = date(2026, 5, 12)
DOLIPRANE = "3400935955838"  # 1000 mg, 4 a day at most, boxes of 8
XANAX = "3400932644551"  # 0.50 mg scored, 84 days at most


# -- the medicine list -----------------------------------------------------------------------------


def test_the_demo_list_has_thirty_valid_medicines_findable_by_code_and_name() -> None:
    medicines = catalogue()
    assert len(medicines) >= 30
    for medicine in medicines.medicines:
        assert is_cip13(medicine.cip13), medicine.name
        assert medicine.max_daily_dose > 0 and medicine.pack_size > 0
    assert catalogue() is medicines  # read once
    doliprane = medicines.by_cip13(DOLIPRANE)
    assert doliprane is not None and doliprane.atc == "N02BE01"
    assert medicines.find("doliprane 1000 MG,  COMPRIME") is doliprane  # case, accents, spaces
    assert medicines.find("Doliprane") is None  # a name is exact: no guessing between strengths
    assert medicines.find("3400935955839") is None


def test_cip13_needs_its_prefix_and_its_ean13_key() -> None:
    assert ean13_key("340093595583") == "8"
    assert is_cip13("3400935955838")
    assert not is_cip13("3400935955837")  # wrong key
    assert not is_cip13("3500935955835")  # not a French medicine code
    assert not is_cip13("340093595583")


def test_a_list_with_a_bad_code_is_refused_when_loaded() -> None:
    with pytest.raises(ValueError, match="not a CIP13"):
        Catalogue.from_json(
            b'{"medicines": [{"name": "X", "cip13": "123", "atc": "A", "inn": "x", "form": "f",'
            b' "strength": "1 mg", "unit": "comprim\xc3\xa9", "max_daily_dose": 1, "pack_size": 10}]}'
        )


# -- numbers and QR payloads -------------------------------------------------------------------------


def test_a_number_carries_its_check_character_and_reads_back_printed() -> None:
    number = numbers.new_number()
    assert len(number) == 13 and set(number) <= set(numbers.ALPHABET)
    printed = numbers.display_number(number)
    assert printed.count("-") == 3
    assert numbers.normalise_number(printed) == number
    assert numbers.normalise_number(f"  {printed.lower()} ") == number
    assert numbers.new_number() != number


def test_every_single_mistyped_character_and_adjacent_swap_is_caught() -> None:
    number = numbers.new_number()
    for i, char in enumerate(number):
        for other in numbers.ALPHABET:
            if other == char:
                continue
            with pytest.raises(numbers.NumberError):
                numbers.normalise_number(number[:i] + other + number[i + 1 :])
    swaps_caught = 0
    swaps = 0
    for i in range(len(number) - 1):
        if number[i] == number[i + 1]:
            continue
        swaps += 1
        swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
        try:
            numbers.normalise_number(swapped)
        except numbers.NumberError:
            swaps_caught += 1
    # Luhn mod N misses one pair of characters per alphabet: at most a swap or two slips through
    assert swaps_caught >= swaps - 2


def test_crockford_reading_forgives_o_i_and_l() -> None:
    body = "0123456789AB"
    number = body + numbers.check_character(body)
    assert numbers.normalise_number(number.replace("0", "O").replace("1", "l", 1)) == number
    with pytest.raises(numbers.NumberError, match="13 caractères"):
        numbers.normalise_number("ABC")
    with pytest.raises(numbers.NumberError, match="impossible"):
        numbers.normalise_number("U" * 13)


def test_the_qr_payload_round_trips_and_only_its_secret_matches_the_stored_hash() -> None:
    number, secret = numbers.new_number(), numbers.new_secret()
    text = numbers.payload(number, secret)
    assert numbers.parse_payload(text) == (number, secret)
    stored = numbers.secret_hash(secret)
    assert secret not in stored
    assert numbers.secret_matches(secret, stored)
    assert not numbers.secret_matches(numbers.new_secret(), stored)
    for broken in ("HYGIE-PARTAGE:ABC", f"HYGIE-ORD1:{number}", f"HYGIE-ORD1:{number}:{secret[:-1]}"):
        with pytest.raises(numbers.NumberError):
            numbers.parse_payload(broken)


def test_the_qr_code_matrix_encodes_the_payload() -> None:
    """segno's matrix, read back with a real decoder (zxing-cpp, offline)."""
    import zxingcpp
    from PIL import Image

    text = numbers.payload(numbers.new_number(), numbers.new_secret())
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr_png(text))))
    assert [d.text for d in decoded] == [text]


# -- what a prescriber may write -------------------------------------------------------------------


def line(**values: object) -> LineRequest:
    base: dict[str, object] = {
        "medicine": DOLIPRANE,
        "dose": 1,
        "takes_per_day": 3,
        "duration_days": 5,
        "renewals": 0,
        "substitution_allowed": True,
        "instructions": "si douleur",
    }
    base.update(values)
    return LineRequest(**base)


def refusal(lines: list[LineRequest], **kwargs: object) -> list[tuple[int | None, str, str]]:
    with pytest.raises(PrescriptionRefused) as caught:
        check_prescription(lines, today=TODAY, catalogue=catalogue(), **kwargs)  # type: ignore[arg-type]
    return [(p.line, p.field, p.message) for p in caught.value.problems]


def test_a_sound_prescription_gives_quantities_and_validity() -> None:
    prescription = check_prescription(
        [
            line(),
            line(
                medicine="XANAX 0,50 mg, comprimé sécable",
                dose="0,5",
                takes_per_day=2,
                duration_days=28,
                renewals=2,
            ),
        ],
        today=TODAY,
        catalogue=catalogue(),
    )
    doliprane, xanax = prescription.lines
    assert doliprane.packs_per_delivery == 2  # 15 tablets, boxes of 8
    assert doliprane.dosage_text() == "1 comprimé 3 fois par jour pendant 5 jours. Si douleur"
    assert xanax.dose == 0.5 and xanax.medicine.units(0.5) == "1/2 comprimé"
    assert xanax.renewal_text() == "À renouveler 2 fois"
    assert prescription.start == TODAY
    assert prescription.end == TODAY + timedelta(days=89)  # three months for the first delivery


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"medicine": "3400000000000"}, "medication", "Médicament inconnu"),
        ({"medicine": "Aspirine magique"}, "medication", "Médicament inconnu"),
        ({"medicine": None}, "medication", "Indiquez le médicament"),
        ({"dose": 0}, "dose", "supérieur à zéro"),
        ({"dose": -1}, "dose", "supérieur à zéro"),
        ({"dose": "beaucoup"}, "dose", "supérieur à zéro"),
        ({"dose": 0.5}, "dose", "ne se fractionne pas"),
        ({"dose": 5, "takes_per_day": 1}, "dose", "dépasse la dose maximale"),
        ({"dose": 2, "takes_per_day": 3}, "dose", "6 comprimés par jour"),
        ({"takes_per_day": 0}, "takes-per-day", "de 1 à 12"),
        ({"takes_per_day": 2.5}, "takes-per-day", "de 1 à 12"),
        ({"takes_per_day": 48}, "takes-per-day", "de 1 à 12"),
        ({"takes_per_day": None}, "takes-per-day", "Indiquez le nombre de prises"),
        ({"duration_days": 0}, "duration-days", "de 1 à 365"),
        ({"duration_days": 400}, "duration-days", "de 1 à 365"),
        ({"renewals": 12}, "renewals", "de 0 à 11"),
        ({"renewals": -1}, "renewals", "de 0 à 11"),
        ({"duration_days": 90, "renewals": 5}, "renewals", "12 mois"),
        ({"substitution_allowed": "peut-être"}, "substitution-allowed", "substitution"),
        ({"instructions": "x" * 501}, "instructions", "500 caractères"),
        (
            {"medicine": XANAX, "dose": 0.5, "takes_per_day": 1, "duration_days": 30, "renewals": 2},
            "renewals",
            "limitée à 84 jours",
        ),
        ({"medicine": XANAX, "dose": 0.3, "takes_per_day": 1}, "dose", "se dose par 1/2"),
    ],
)
def test_each_line_refusal_names_its_line_and_field_in_french(
    values: dict[str, object], field: str, words: str
) -> None:
    problems = refusal([line(), line(**values)])
    assert [(index, name) for index, name, _ in problems] == [(1, field)], problems
    assert words in problems[0][2]


def test_an_empty_prescription_and_the_same_medicine_twice_are_refused() -> None:
    assert refusal([]) == [(None, "line", "L'ordonnance ne contient aucune ligne.")]
    twice = refusal([line(), line(dose=2, takes_per_day=2)])
    assert twice[0][:2] == (1, "medication") and "ligne 1" in twice[0][2]


def test_dates_cannot_be_in_the_past_or_backwards() -> None:
    yesterday = (TODAY - timedelta(days=1)).isoformat()
    assert refusal([line()], start=yesterday)[0][:2] == (None, "start")
    assert refusal([line()], end=yesterday)[0][:2] == (None, "end")
    assert "passée" in refusal([line()], end=yesterday)[0][2]
    backwards = refusal([line()], start=(TODAY + timedelta(days=10)).isoformat(), end=TODAY.isoformat())
    assert backwards[0][:2] == (None, "end")
    assert refusal([line()], start="demain")[0][:2] == (None, "start")
    chosen = check_prescription([line()], today=TODAY, catalogue=catalogue(), end=TODAY.isoformat())
    assert chosen.end == TODAY


def test_every_problem_is_reported_at_once() -> None:
    problems = refusal([line(dose=0, duration_days=0), line(medicine="inconnu")], end="2000-01-01")
    assert {(i, f) for i, f, _ in problems} == {
        (None, "end"),
        (0, "dose"),
        (0, "duration-days"),
        (1, "medication"),
    }


def test_the_configuration_reads_the_unverified_facts_from_the_environment() -> None:
    assert config_from({}).number_system.startswith("https://")
    config = config_from(
        {
            "HYGIE_EPRESCRIPTION_NUMBER_SYSTEM": "urn:oid:1.2.3",
            "HYGIE_EPRESCRIPTION_PRESCRIBERS": "10, 50",
            "HYGIE_EPRESCRIPTION_FIRST_DELIVERY_DAYS": "30",
        }
    )
    assert config.number_system == "urn:oid:1.2.3"
    assert config.prescribers == frozenset({"10", "50"})
    assert config.first_delivery_days == 30
    with pytest.raises(ValueError, match="integer"):
        config_from({"HYGIE_EPRESCRIPTION_FIRST_DELIVERY_DAYS": "trois mois"})


# -- the FHIR resources and the printout -----------------------------------------------------------


def _issuer() -> Issuer:
    practitioner = {
        "resourceType": "Practitioner",
        "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "810001234565"}],
        "name": [{"family": "Bernard", "given": ["Marie"], "prefix": ["Dr"]}],
        "qualification": [
            {
                "code": {
                    "coding": [
                        {
                            "system": "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante",
                            "code": "10",
                        }
                    ]
                }
            }
        ],
    }
    organization = {
        "name": "Cabinet du Parc",
        "address": [{"line": ["3 rue du Parc"], "postalCode": "69003", "city": "Lyon"}],
    }
    return issuer_of("Practitioner/gp", practitioner, "Organization/cab", organization)


def test_the_prescriber_comes_from_the_directory() -> None:
    issuer = _issuer()
    assert (issuer.name, issuer.rpps, issuer.idnat, issuer.profession) == (
        "Dr Marie Bernard",
        "10001234565",
        "810001234565",
        "Médecin",
    )
    assert issuer.address == ("3 rue du Parc", "69003 Lyon") and issuer.city == "Lyon"


def test_a_line_becomes_a_medication_request_of_the_group() -> None:
    prescription = check_prescription(
        [line(renewals=2, substitution_allowed=False)], today=TODAY, catalogue=catalogue()
    )
    request = medication_request(
        prescription.lines[0],
        prescription,
        number="0123456789ABX",
        number_system="urn:test",
        code_hash="sha256:00",
        patient_ref="Patient/p",
        issuer=_issuer(),
        authored_on="2026-05-12T10:00:00+02:00",
    )
    assert request["groupIdentifier"] == {"system": "urn:test", "value": "0123-4567-89AB-X"}
    assert request["identifier"] == [request["groupIdentifier"]]
    assert request["intent"] == "order" and request["status"] == "active"
    assert [c["code"] for c in request["medicationCodeableConcept"]["coding"]] == [DOLIPRANE, "N02BE01"]
    supply = request["dispenseRequest"]
    assert supply["numberOfRepeatsAllowed"] == 2 and supply["quantity"] == {"value": 2, "unit": "boîte"}
    assert supply["expectedSupplyDuration"]["value"] == 5
    assert request["substitution"] == {"allowedBoolean": False}
    assert request["dosageInstruction"][0]["timing"]["repeat"]["frequency"] == 3


def test_the_printout_is_a_pdf_with_the_number_and_the_lines() -> None:
    import pypdf

    prescription = check_prescription([line(renewals=1)], today=TODAY, catalogue=catalogue())
    number = numbers.new_number()
    pdf = render_prescription(
        prescription,
        number=number,
        qr_payload=numbers.payload(number, numbers.new_secret()),
        issuer=_issuer(),
        patient=PatientBanner("Léa Durand", date(1980, 2, 1)),
        created=datetime(2026, 5, 12, 10, 0),
    )
    assert pdf.startswith(b"%PDF")
    text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    for words in (numbers.display_number(number), "Dr Marie Bernard", "RPPS : 10001234565", "Léa Durand",
                  "01/02/1980", "DOLIPRANE 1000 mg", "À renouveler 1 fois", "Lyon, le 12 mai 2026"):  # fmt: skip
        assert words in text, words


# -- what a pharmacy may still hand over -----------------------------------------------------------


def test_partial_deliveries_add_up_to_full_ones_within_the_renewals() -> None:
    progress = dispensing.LineProgress(per_delivery=3, deliveries_allowed=2)  # à renouveler 1 fois
    assert (progress.lacking, progress.renewals_remaining, progress.deliveries_remaining) == (3, 1, 2)
    part = dispensing.plan_fill(progress, 1, 30)
    assert (part.status, part.fill_type, part.days_supply) == ("in-progress", "FFP", 10)
    progress = dispensing.LineProgress(3, 2, 1)
    assert progress.lacking == 2 and progress.full_deliveries == 0
    with pytest.raises(dispensing.DispenseRefused, match="il reste 2"):
        dispensing.plan_fill(progress, 3, 30)
    rest = dispensing.plan_fill(progress, 2, 30)
    assert (rest.status, rest.fill_type) == ("completed", "FFC")
    progress = dispensing.LineProgress(3, 2, 3)
    assert (progress.full_deliveries, progress.renewals_remaining, progress.lacking) == (1, 1, 3)
    renewal = dispensing.plan_fill(progress, 3, 30)
    assert (renewal.status, renewal.fill_type, renewal.days_supply) == ("completed", "RF", 30)
    done = dispensing.LineProgress(3, 2, 6)
    assert done.exhausted and done.lacking == 0 and done.renewals_remaining == 0
    with pytest.raises(dispensing.DispenseRefused, match="entièrement délivrée"):
        dispensing.plan_fill(done, 1, 30)


@pytest.mark.parametrize("quantity", [0, -1, 1.5, "2", True, None])
def test_a_quantity_is_a_positive_whole_number_of_packs(quantity: object) -> None:
    with pytest.raises(dispensing.DispenseRefused):
        dispensing.plan_fill(dispensing.LineProgress(3, 1), quantity, 30)


def test_only_completed_and_partial_dispenses_count() -> None:
    dispenses: list[dict[str, Any]] = [
        {"status": "completed", "quantity": {"value": 2}},
        {"status": "in-progress", "quantity": {"value": 1}},
        {"status": "declined"},
        {"status": "entered-in-error", "quantity": {"value": 5}},
    ]
    assert dispensing.handed_over(dispenses) == 3
    line = {"dispenseRequest": {"quantity": {"value": 2}, "numberOfRepeatsAllowed": 1}}
    progress = dispensing.progress_of(line, dispenses)
    assert (progress.full_deliveries, progress.in_current, progress.lacking) == (1, 1, 1)


def test_a_generic_replaces_the_prescribed_medicine_unless_forbidden() -> None:
    medicines = catalogue()
    prescribed = medicines.by_name("TAHOR 20 mg, comprimé pelliculé")
    generic = medicines.by_name("ATORVASTATINE BIOGARAN 20 mg, comprimé pelliculé")
    assert prescribed is not None and generic is not None
    line = {
        "medicationCodeableConcept": prescribed.codeable_concept(),
        "substitution": {"allowedBoolean": True},
    }
    assert dispensing.check_substitute(medicines, line, generic.cip13) == generic
    with pytest.raises(dispensing.DispenseRefused, match="pas substituable"):
        dispensing.check_substitute(medicines, line, DOLIPRANE)
    with pytest.raises(dispensing.DispenseRefused, match="médicament prescrit"):
        dispensing.check_substitute(medicines, line, prescribed.cip13)
    locked = {**line, "substitution": {"allowedBoolean": False}}
    with pytest.raises(dispensing.DispenseRefused, match="non substituable"):
        dispensing.check_substitute(medicines, locked, generic.cip13)


def test_a_dispense_records_the_pharmacy_first_and_the_substitution() -> None:
    generic = catalogue().by_name("ATORVASTATINE BIOGARAN 20 mg, comprimé pelliculé")
    assert isinstance(generic, Medicine)
    request = {
        "id": "l1",
        "subject": {"reference": "Patient/p"},
        "medicationCodeableConcept": {"text": "TAHOR"},
        "dispenseRequest": {"quantity": {"value": 1, "unit": "boîte"}},
    }
    fill = dispensing.plan_fill(dispensing.LineProgress(1, 1), 1, 30)
    resource = dispensing.dispense_resource(
        request,
        fill=fill,
        handed_at="2026-05-12T10:00:00+02:00",
        pharmacist={"reference": "Practitioner/ph", "display": "Pharmacien"},
        pharmacy={"reference": "Organization/pharma", "display": "Pharmacie du Marché"},
        medication=generic.codeable_concept(),
        substitution_reason="générique",
    )
    assert resource["status"] == "completed"
    assert resource["performer"][0]["actor"]["display"] == "Pharmacie du Marché"
    assert resource["authorizingPrescription"] == [{"reference": "MedicationRequest/l1"}]
    assert resource["substitution"]["wasSubstituted"] is True
    assert resource["substitution"]["type"]["coding"][0]["code"] == "G"
    assert resource["medicationCodeableConcept"]["text"] == generic.name
    declined = dispensing.dispense_resource(
        request,
        fill=None,
        handed_at="x",
        pharmacist={"reference": "Practitioner/ph"},
        pharmacy=None,
        not_delivered="rupture",
    )
    assert declined["status"] == "declined" and declined["statusReasonCodeableConcept"] == {"text": "rupture"}
    assert "quantity" not in declined


def test_validity_is_the_narrowest_of_the_lines() -> None:
    lines = [
        {"dispenseRequest": {"validityPeriod": {"start": "2026-05-01", "end": "2026-08-01"}}},
        {"dispenseRequest": {"validityPeriod": {"start": "2026-05-01", "end": "2026-07-01"}}},
    ]
    assert dispensing.validity_of(lines) == (date(2026, 5, 1), date(2026, 7, 1))
