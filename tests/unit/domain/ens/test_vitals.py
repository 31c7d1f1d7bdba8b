"""The person's measures: entry checks in French, the Observation written, series read back with
their source, personal thresholds as a Goal, and which values cross them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from hygie.domain.ens import vitals as v

NOW = datetime(2026, 5, 12, 10, 0, tzinfo=UTC)  # 12:00 in Paris


def obs(code: str, value: float | None, when: str, **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": extra.pop("id", f"o-{code}-{when}"),
        "status": extra.pop("status", "final"),
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "effectiveDateTime": when,
        **extra,
    }
    if value is not None:
        resource["valueQuantity"] = {"value": value, "code": extra.get("unit", v.MEASURES["poids"].ucum)}
    return resource


@pytest.mark.parametrize(
    ("text", "expected"),
    [("72,5", 72.5), ("72.5", 72.5), (" 8 000 ", 8000.0), ("8\u202f000", 8000.0), ("-3", -3.0),
     ("abc", None), ("7,2,1", None), ("", None), ("1e3", None), ("nan", None)],
)  # fmt: skip
def test_french_decimals(text: str, expected: float | None) -> None:
    assert v.parse_decimal(text) == expected


def test_french_numbers_are_written_with_a_comma() -> None:
    assert v.fr_number(72.5) == "72,5"
    assert v.fr_number(74.0) == "74"
    assert v.fr_number(8000) == "8\u202f000"
    assert v.fr_number(0.5) == "0,5"


def test_a_weight_out_of_range_is_refused_in_plain_french() -> None:
    entry, errors = v.parse_entry(v.MEASURES["poids"], {"valeur": "500", "date": "2026-05-11"}, NOW)
    assert entry is None
    assert errors == {"valeur": "Le poids doit être compris entre 0,5 et 400 kg."}


def test_entry_errors_per_field() -> None:
    weight = v.MEASURES["poids"]
    _, errors = v.parse_entry(weight, {"valeur": "", "date": ""}, NOW)
    assert errors == {"valeur": "Indiquez le poids.", "date": "Indiquez la date de la mesure."}
    _, errors = v.parse_entry(weight, {"valeur": "72,555", "date": "2026-05-13"}, NOW)
    assert errors["valeur"].endswith("2 chiffre(s) après la virgule au plus.")
    assert errors["date"] == "La date ne peut pas être dans le futur."
    _, errors = v.parse_entry(weight, {"valeur": "72", "date": "2026-05-12", "heure": "18:00"}, NOW)
    assert errors == {"heure": "L’heure ne peut pas être dans le futur."}
    _, errors = v.parse_entry(weight, {"valeur": "72", "date": "12/05/2026"}, NOW)
    assert "date" in errors
    _, errors = v.parse_entry(v.MEASURES["pas"], {"valeur": "8000,5", "date": "2026-05-11"}, NOW)
    assert errors["valeur"] == "Le nombre de pas s’écrit sans virgule."


def test_blood_pressure_needs_two_values_in_order() -> None:
    bp = v.MEASURES["tension"]
    _, errors = v.parse_entry(bp, {"systolique": "80", "diastolique": "120", "date": "2026-05-11"}, NOW)
    assert errors == {"diastolique": "La pression diastolique doit être plus petite que la systolique."}
    _, errors = v.parse_entry(bp, {"systolique": "300", "diastolique": "", "date": "2026-05-11"}, NOW)
    assert errors["systolique"] == "La pression systolique doit être comprise entre 50 et 260 mm Hg."
    assert errors["diastolique"] == "Indiquez la pression diastolique."


def test_the_observation_of_an_entry() -> None:
    entry, _ = v.parse_entry(
        v.MEASURES["poids"], {"valeur": "72,5", "date": "2026-05-11", "heure": "08:30"}, NOW
    )
    assert entry is not None
    o = v.observation(entry, "Patient/p", "RelatedPerson/r")
    assert o["code"]["coding"] == [{"system": "http://loinc.org", "code": "29463-7"}]
    assert o["valueQuantity"] == {
        "value": 72.5,
        "unit": "kg",
        "system": "http://unitsofmeasure.org",
        "code": "kg",
    }
    assert o["effectiveDateTime"] == "2026-05-11T08:30:00+02:00"
    assert o["performer"] == [{"reference": "RelatedPerson/r"}]
    assert o["category"][0]["coding"][0]["code"] == "vital-signs"
    assert o["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]

    bp, _ = v.parse_entry(
        v.MEASURES["tension"], {"systolique": "128", "diastolique": "82", "date": "2026-05-11"}, NOW
    )
    assert bp is not None
    o = v.observation(bp, "Patient/p", "Patient/p")
    assert o["code"]["coding"][0]["code"] == "85354-9" and "valueQuantity" not in o
    assert [(c["code"]["coding"][0]["code"], c["valueQuantity"]["value"]) for c in o["component"]] == [
        ("8480-6", 128),
        ("8462-4", 82),
    ]
    assert o["component"][0]["valueQuantity"]["code"] == "mm[Hg]"

    steps, _ = v.parse_entry(v.MEASURES["pas"], {"valeur": "8 000", "date": "2026-05-11"}, NOW)
    assert steps is not None
    o = v.observation(steps, "Patient/p", "Patient/p")
    assert o["category"][0]["coding"][0]["code"] == "activity" and "meta" not in o
    assert o["valueQuantity"]["code"] == "1/(24.h)"


def test_series_with_their_source_and_units_converted() -> None:
    weight = v.MEASURES["poids"]
    observations = [
        obs("29463-7", 72.5, "2026-05-01T08:00:00+02:00", performer=[{"reference": "Patient/p"}]),
        obs(
            "29463-7",
            73.0,
            "2026-05-03",
            performer=[{"reference": "Practitioner/d", "display": "Dr Paul BERNARD"}],
        ),
        obs("29463-7", 73500, "2026-05-05T07:00:00Z", device={"reference": "Device/scale"}, unit="g"),
        obs("29463-7", 74, "2026-05-06T07:00:00Z"),
        obs("29463-7", 99, "2026-05-07T07:00:00Z", status="entered-in-error"),
        obs("29463-7", 160, "2026-05-08T07:00:00Z", unit="[stone_av]"),  # not a unit we convert
        obs("8302-2", 170, "2026-05-02"),
    ]
    series = v.readings(weight, observations, {"Patient/p": "vous"})
    assert [r.values[0] for r in series] == [72.5, 73.0, 73.5, 74]
    assert [(r.source.kind, r.source.label) for r in series] == [
        ("self", "vous"),
        ("professional", "Dr Paul BERNARD"),
        ("device", "appareil connecté"),
        ("app", "application"),
    ]
    glucose = v.MEASURES["glycemie"]
    mmol = obs("15074-8", 5.5, "2026-05-01", unit="mmol/L")
    assert v.readings(glucose, [mmol], {})[0].values == (99.09,)
    assert v.measure_of(mmol) is glucose


def test_a_value_an_app_sent_names_the_app_whatever_performer_it_claims() -> None:
    weight = v.MEASURES["poids"]
    source = {"source": "urn:hygie:app:balance"}
    sent = [
        obs("29463-7", 70.0, "2026-05-01", meta=source, performer=[{"reference": "Patient/p"}]),
        obs("29463-7", 71.0, "2026-05-02", meta=source, performer=[{"reference": "Practitioner/d"}]),
        obs("29463-7", 72.0, "2026-05-03", meta={"source": "urn:hygie:app:retiree"}),
        obs("29463-7", 73.0, "2026-05-04", meta={"source": "https://lab.example/lis"}),
    ]
    names = {"Patient/p": "vous", "urn:hygie:app:balance": "Balance connectée"}
    assert [(r.source.kind, r.source.label) for r in v.readings(weight, sent, names)] == [
        ("app", "application « Balance connectée »"),
        ("app", "application « Balance connectée »"),
        ("app", "une application"),  # no longer registered: no name to show
        ("app", "application"),  # another system's source is no app's provenance
    ]
    assert v.source_of(sent[0], {}) == v.Source("app", "une application")


def test_the_summary_stands_for_the_chart() -> None:
    weight = v.MEASURES["poids"]
    series = v.readings(weight, [obs("29463-7", 72.5, "2026-05-01"), obs("29463-7", 74, "2026-05-03")], {})
    assert v.summary(weight, series, "sur les 30 derniers jours") == (
        "Poids sur les 30 derniers jours : 2 mesures, de 72,5 à 74 kg ; la dernière : 74 kg le 03/05/2026."
    )
    assert v.summary(weight, [], "depuis le début") == "Poids depuis le début : aucune valeur."


def test_thresholds_are_checked_then_kept_in_a_goal() -> None:
    weight = v.MEASURES["poids"]
    ranges, errors = v.parse_thresholds(weight, {"bas-valeur": "80", "haut-valeur": "75,5"})
    assert ranges is None and errors == {
        "haut-valeur": "Le seuil haut doit être plus grand que le seuil bas."
    }
    ranges, errors = v.parse_thresholds(weight, {"bas-valeur": "", "haut-valeur": "900"})
    assert errors == {"haut-valeur": "Le seuil haut doit être compris entre 0,5 et 400 kg."}
    ranges, errors = v.parse_thresholds(weight, {"bas-valeur": "60", "haut-valeur": "75,5"})
    assert ranges == {"29463-7": (60.0, 75.5)} and errors == {}
    goal = v.goal(weight, ranges, "Patient/p", "Patient/p", date(2026, 5, 12))
    assert goal["lifecycleStatus"] == "active" and goal["startDate"] == "2026-05-12"
    assert goal["target"] == [
        {
            "measure": {
                "coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}],
                "text": "Poids",
            },
            "detailRange": {
                "low": {"value": 60, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
                "high": {"value": 75.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
            },
        }
    ]
    goal["id"] = "g1"
    read_back = v.thresholds_of([goal, {"resourceType": "Goal", "lifecycleStatus": "active"}])
    assert list(read_back) == ["poids"] and read_back["poids"][0] == {"29463-7": (60.0, 75.5)}
    # no threshold left: the Goal is cancelled
    cleared = v.goal(weight, {"29463-7": (None, None)}, "Patient/p", "Patient/p", date(2026, 5, 13), goal)
    assert cleared["lifecycleStatus"] == "cancelled" and "target" not in cleared and cleared["id"] == "g1"
    assert v.thresholds_of([cleared]) == {}


def test_crossings_say_which_side_in_french() -> None:
    bp = v.MEASURES["tension"]
    reading = v.Reading("o", "1", NOW, (150.0, 85.0), v.Source("app", "application"), "")
    ranges = {"8480-6": (None, 140.0), "8462-4": (60.0, 90.0)}
    [crossing] = v.crossings(bp, reading, ranges)
    assert crossing.side == "high" and crossing.bound == 140.0
    assert crossing.sentence() == (
        "Tension artérielle (systolique) : 150 mm Hg, au-dessus de votre seuil haut (140 mm Hg)."
    )
    low = v.Reading("o", "1", NOW, (100.0, 55.0), v.Source("app", "application"), "")
    assert [(c.field.loinc, c.side) for c in v.crossings(bp, low, ranges)] == [("8462-4", "low")]
    inside = v.Reading("o", "1", NOW, (140.0, 60.0), v.Source("app", "application"), "")
    assert v.crossings(bp, inside, ranges) == []
