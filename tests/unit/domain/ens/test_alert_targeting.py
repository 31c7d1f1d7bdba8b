"""Public-health alerts: who the criteria designate, why, and who opted out — evaluated on a real
in-memory FHIR service as the operator, and through the ``hygie alerte diffuser`` command."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hygie.domain.access import Caller
from hygie.domain.ens import alerts as al
from hygie.domain.policy import Principal
from hygie.fhir.interactions import FhirService
from hygie.stores.binaries import BinaryOffloadingStore
from hygie.stores.files import MemoryBlobStore
from hygie.stores.memory import MemoryResourceStore
from hygie.web.portal.door import Door

OPERATOR = Caller.operator("tests")
TODAY = date(2026, 7, 1)
INSEE = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code"
SNOMED_DIABETES = "http://snomed.info/sct|44054006"


def _patient(
    id: str, born: str, insee: str | None = None, postcode: str | None = None, **extra: Any
) -> dict[str, Any]:
    address: dict[str, Any] = {"use": "home", "country": "FR"}
    if insee:
        address["extension"] = [{"url": INSEE, "valueCoding": {"code": insee}}]
    if postcode:
        address["postalCode"] = postcode
    return {"resourceType": "Patient", "id": id, "birthDate": born, "address": [address], **extra}


def test_where_a_person_lives_comes_from_the_insee_code_or_the_postcode() -> None:
    assert al.department_of(_patient("a", "1950-01-01", insee="29232")) == "29"
    assert al.region_of(_patient("a", "1950-01-01", insee="29232")) == "53"
    assert al.department_of(_patient("b", "1950-01-01", insee="97411")) == "974"
    assert al.region_of(_patient("b", "1950-01-01", insee="97411")) == "04"
    assert al.department_of(_patient("c", "1950-01-01", insee="2A004")) == "2A"
    assert al.department_of(_patient("d", "1950-01-01", postcode="20200")) == "2B"
    assert al.department_of(_patient("e", "1950-01-01", postcode="35000")) == "35"
    assert al.region_of(_patient("f", "1950-01-01")) is None
    assert al.region_code("Bretagne") == al.region_code("bretagne") == al.region_code("53") == "53"
    assert al.region_code("Ile de France") == "11"
    assert al.region_code("Atlantide") is None


def test_the_reasons_say_which_criteria_matched() -> None:
    criteria = al.Criteria(age_min=65, regions=("53",))
    facts = al.Facts()
    old_breton = _patient("a", "1950-03-02", insee="29232")
    assert al.explain(al.reasons_for(old_breton, criteria, facts, TODAY) or []) == (
        "Vous recevez ce message car : vous avez 65 ans ou plus et habitez en Bretagne"
    )
    assert al.reasons_for(_patient("b", "1990-03-02", insee="29232"), criteria, facts, TODAY) is None
    assert al.reasons_for(_patient("c", "1950-03-02", insee="75056"), criteria, facts, TODAY) is None
    # the birthday decides, to the day
    assert al.reasons_for(_patient("d", "1961-07-01", insee="35238"), criteria, facts, TODAY) is not None
    assert al.reasons_for(_patient("e", "1961-07-02", insee="35238"), criteria, facts, TODAY) is None
    dead = _patient("f", "1940-01-01", insee="29232", deceasedBoolean=True)
    assert al.reasons_for(dead, criteria, facts, TODAY) is None
    screening = al.Criteria(age_min=50, age_max=74, departments=("974",))
    reunion = _patient("g", "1960-01-01", insee="97411")
    assert al.explain(al.reasons_for(reunion, screening, facts, TODAY) or []) == (
        "Vous recevez ce message car : vous avez entre 50 et 74 ans et habitez dans le département La Réunion (974)"
    )
    flu = al.Criteria(
        vaccines=("J07BB02",),
        vaccinated=False,
        vaccine_label="la grippe",
        conditions=(SNOMED_DIABETES,),
        condition_label="un diabète",
    )
    facts = al.Facts(conditions={"h", "i"}, vaccinated={"i"})
    assert al.explain(al.reasons_for(_patient("h", "1980-01-01"), flu, facts, TODAY) or []) == (
        "Vous recevez ce message car : vous êtes suivi(e) pour : un diabète "
        "et n’avez pas de vaccination enregistrée contre : la grippe"
    )
    assert al.reasons_for(_patient("i", "1980-01-01"), flu, facts, TODAY) is None  # vaccinated
    assert al.reasons_for(_patient("j", "1980-01-01"), flu, facts, TODAY) is None  # no diabetes


def test_criteria_that_make_no_sense_are_refused_in_french() -> None:
    assert al.Criteria(age_min=80, age_max=60).problems() == ["l’âge minimum dépasse l’âge maximum"]
    assert al.Criteria(regions=("99",)).problems() == ["région inconnue : 99"]
    assert al.Criteria(vaccinated=True).problems() == [
        "le statut vaccinal demande au moins un code de vaccin"
    ]


@pytest.fixture
def door() -> Door:
    store = BinaryOffloadingStore(MemoryResourceStore(), MemoryBlobStore())
    return Door(FhirService(store, base_url="http://test/fhir"))


async def _population(door: Door) -> dict[str, str]:
    ids = {}
    for key, patient in {
        "rennes70": _patient("x", "1956-02-01", insee="35238"),
        "brest80": _patient("x", "1946-02-01", insee="29019"),
        "paris70": _patient("x", "1956-02-01", insee="75056"),
        "rennes30": _patient("x", "1996-02-01", insee="35238"),
        "quimper75": _patient("x", "1951-02-01", insee="29232"),
    }.items():
        patient.pop("id")
        ids[key] = str((await door.create(OPERATOR, patient))["id"])
    # Brest's 80-year-old refuses heat-wave alerts
    consent = al.opt_out_consent(f"Patient/{ids['brest80']}", {"canicule"}, 1_780_000_000_000_000)
    await door.create(Caller.of(Principal("patient", f"Patient/{ids['brest80']}")), consent)
    # diabetes for Rennes and Quimper (Quimper's is resolved), a flu shot for Rennes
    for key, status in (("rennes70", "active"), ("quimper75", "resolved")):
        await door.create(
            OPERATOR,
            {
                "resourceType": "Condition",
                "clinicalStatus": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": status}
                    ]
                },
                "code": {
                    "coding": [{"system": "http://snomed.info/sct", "code": "44054006"}],
                    "text": "Diabète de type 2",
                },
                "subject": {"reference": f"Patient/{ids[key]}"},
            },
        )
    await door.create(
        OPERATOR,
        {
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": {
                "coding": [{"system": "https://smt.esante.gouv.fr/terminologie-atc", "code": "J07BB02"}]
            },
            "patient": {"reference": f"Patient/{ids['rennes70']}"},
            "occurrenceDateTime": "2025-10-20",
        },
    )
    return ids


@pytest.mark.anyio
async def test_a_broadcast_reaches_the_designated_people_except_those_who_opted_out(door: Door) -> None:
    ids = await _population(door)
    alert = al.Alert("Canicule : protégez-vous", "Buvez de l’eau régulièrement.", "canicule", "ARS Bretagne")
    report = await al.broadcast(
        door,
        OPERATOR,
        alert,
        al.Criteria(age_min=65, regions=("53",)),
        broadcast_id="b1",
        now_us=1_780_000_000_000_000,
        today=TODAY,
    )
    assert report.matched == 3 and report.opted_out == 1 and len(report.sent) == 2
    for key, expected in (("rennes70", 1), ("quimper75", 1), ("brest80", 0), ("paris70", 0), ("rennes30", 0)):
        patient = Caller.of(Principal("patient", f"Patient/{ids[key]}"))
        received = await door.search(patient, "Communication", [("subject", f"Patient/{ids[key]}")])
        assert len(received) == expected, key
        if expected:
            assert received[0]["reasonCode"][0]["text"] == (
                "Vous recevez ce message car : vous avez 65 ans ou plus et habitez en Bretagne"
            )
            assert received[0]["topic"]["text"] == "Canicule : protégez-vous"
            assert al.view_alert(received[0]).topic_label == "Canicule et fortes chaleurs"
    # the opt-out is for heat waves only
    vaccination = al.Alert("Grippe", "Faites-vous vacciner.", "vaccination")
    flu = al.Criteria(
        conditions=("http://snomed.info/sct|44054006",), vaccines=("J07BB02",), vaccinated=False
    )
    assert (
        await al.broadcast(
            door, OPERATOR, vaccination, flu, broadcast_id="b2", now_us=1, today=TODAY, dry_run=True
        )
    ).matched == 0
    diabetics = al.Criteria(conditions=("http://snomed.info/sct|44054006",), condition_label="un diabète")
    report = await al.broadcast(
        door, OPERATOR, vaccination, diabetics, broadcast_id="b3", now_us=1, today=TODAY
    )
    assert report.matched == 1  # Quimper's diabetes is resolved
    with pytest.raises(ValueError, match="thème inconnu"):
        await al.broadcast(
            door,
            OPERATOR,
            al.Alert("x", "y", "météo"),
            al.Criteria(),
            broadcast_id="b4",
            now_us=1,
            today=TODAY,
        )


def test_the_command_broadcasts_as_the_operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from hygie.bootstrap import open_runtime
    from hygie.cli import app
    from hygie.config import load_settings

    monkeypatch.setenv("HYGIE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("HYGIE_DATABASE_URL", raising=False)

    async def seed() -> str:
        runtime = await open_runtime(load_settings())
        try:
            created = await Door(runtime.service).create(
                OPERATOR, {k: v for k, v in _patient("x", "1950-01-01", insee="35238").items() if k != "id"}
            )
            return str(created["id"])
        finally:
            await runtime.close()

    asyncio.run(seed())
    runner = CliRunner()
    args = [
        "alerte",
        "diffuser",
        "--titre",
        "Canicule",
        "--message",
        "Buvez.",
        "--theme",
        "canicule",
        "--age-min",
        "65",
        "--region",
        "Bretagne",
    ]
    result = runner.invoke(app, [*args, "--simulation"])
    assert result.exit_code == 0, result.output
    assert "1 personne(s) concernée(s), 0 ont refusé ce thème ; 1 seraient destinataires" in result.output
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 ont reçu l’alerte" in result.output
    refused = runner.invoke(
        app,
        [
            "alerte",
            "diffuser",
            "--titre",
            "x",
            "--message",
            "y",
            "--theme",
            "canicule",
            "--region",
            "Atlantide",
        ],
    )
    assert refused.exit_code != 0
    assert "région inconnue" in refused.output
