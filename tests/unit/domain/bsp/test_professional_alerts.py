"""An authority's alert to professionals (``domain/bsp/alerts.py``): who the criteria designate —
by profession and where they practise — evaluated on a real in-memory FHIR service as the
operator, each alert readable by its professional alone; and ``hygie alerte diffuser
--professionnels``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hygie.domain.access import Caller
from hygie.domain.bsp import alerts as pa
from hygie.domain.ens.alerts import Alert
from hygie.domain.policy import Principal
from hygie.fhir.interactions import FhirService
from hygie.stores.binaries import BinaryOffloadingStore
from hygie.stores.files import MemoryBlobStore
from hygie.stores.memory import MemoryResourceStore
from hygie.web.portal.door import Door

OPERATOR = Caller.operator("tests")
TRE_G15 = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"


def practitioner(family: str, profession: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "name": [{"family": family}],
        "qualification": [{"code": {"coding": [{"system": TRE_G15, "code": profession}]}}],
        **extra,
    }


def test_professions_are_named_in_french_or_by_code() -> None:
    assert pa.profession_code("10") == "10"
    assert pa.profession_code("Médecin") == "10"
    assert pa.profession_code(" infirmière ") == "60"
    assert pa.profession_code("kiné") == "70"
    assert pa.profession_code("astronaute") is None
    assert pa.ProfessionalCriteria(("99",), ("00",), ("999",)).problems() == [
        "profession inconnue : 99",
        "région inconnue : 00",
        "département inconnu : 999",
    ]


def test_the_reasons_say_which_criteria_matched() -> None:
    both = pa.ProfessionalCriteria(professions=("10", "60"), regions=("53",))
    assert pa.reasons_for_professional("10", ["29"], both) == ["êtes médecin", "exercez en Bretagne"]
    assert pa.reasons_for_professional("21", ["29"], both) is None  # a pharmacist
    assert pa.reasons_for_professional("60", ["75"], both) is None  # in Paris
    assert pa.reasons_for_professional("60", ["75", "35"], both) == [
        "êtes infirmier(ère)",
        "exercez en Bretagne",
    ]  # one of their places is enough
    finistere = pa.ProfessionalCriteria(departments=("29",))
    assert pa.reasons_for_professional(None, ["29"], finistere) == [
        "exercez dans le département Finistère (29)"
    ]
    assert pa.reasons_for_professional("10", [], pa.ProfessionalCriteria()) == []


@pytest.fixture
def door() -> Door:
    return Door(
        FhirService(BinaryOffloadingStore(MemoryResourceStore(), MemoryBlobStore()), base_url="http://t/fhir")
    )


@pytest.mark.anyio
async def test_a_broadcast_reaches_the_professionals_designated_and_them_alone(door: Door) -> None:
    ids: dict[str, str] = {}
    rennes = await door.create(
        OPERATOR,
        {"resourceType": "Organization", "name": "CHU de Rennes", "address": [{"postalCode": "35000"}]},
    )
    paris = await door.create(
        OPERATOR, {"resourceType": "Organization", "name": "Hôpital", "address": [{"postalCode": "75013"}]}
    )
    for key, resource, org in (
        ("gp_rennes", practitioner("Rennes", "10"), rennes),
        ("nurse_rennes", practitioner("Infirmier", "60"), rennes),
        ("gp_paris", practitioner("Paris", "10"), paris),
        ("gp_brest_own_address", practitioner("Brest", "10", address=[{"postalCode": "29200"}]), None),
        ("gp_retired", practitioner("Retraite", "10", active=False), rennes),
    ):
        ids[key] = str((await door.create(OPERATOR, resource))["id"])
        if org is not None:
            await door.create(
                OPERATOR,
                {
                    "resourceType": "PractitionerRole",
                    "practitioner": {"reference": f"Practitioner/{ids[key]}"},
                    "organization": {"reference": f"Organization/{org['id']}"},
                },
            )
    alert = Alert("Canicule : patients fragiles", "Repérez vos patients isolés.", "canicule", "ARS Bretagne")
    criteria = pa.ProfessionalCriteria(professions=("10",), regions=("53",))
    dry = await pa.broadcast_to_professionals(
        door, OPERATOR, alert, criteria, broadcast_id="b0", now_us=1, dry_run=True
    )
    assert dry.matched == 2 and dry.sent == []
    report = await pa.broadcast_to_professionals(
        door, OPERATOR, alert, criteria, broadcast_id="b1", now_us=1_780_000_000_000_000
    )
    assert report.matched == 2 and len(report.sent) == 2
    for key, expected in (
        ("gp_rennes", 1),
        ("gp_brest_own_address", 1),
        ("nurse_rennes", 0),
        ("gp_paris", 0),
        ("gp_retired", 0),
    ):
        me = Caller.of(Principal("practitioner", f"Practitioner/{ids[key]}", profession="10"))
        received = await door.search(me, "Communication", [])
        assert len(received) == expected, key
        if expected:
            assert received[0]["reasonCode"][0]["text"] == (
                "Vous recevez ce message car : vous êtes médecin et exercez en Bretagne"
            )
            assert "subject" not in received[0]
    with pytest.raises(ValueError, match="profession inconnue"):
        await pa.broadcast_to_professionals(
            door, OPERATOR, alert, pa.ProfessionalCriteria(("99",)), broadcast_id="b2", now_us=1
        )


def test_the_command_alerts_professionals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from hygie.bootstrap import open_runtime
    from hygie.cli import app
    from hygie.config import load_settings

    monkeypatch.setenv("HYGIE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("HYGIE_DATABASE_URL", raising=False)

    async def seed() -> None:
        runtime = await open_runtime(load_settings())
        try:
            door = Door(runtime.service)
            await door.create(OPERATOR, practitioner("Rennes", "10", address=[{"postalCode": "35000"}]))
            await door.create(OPERATOR, practitioner("Soignant", "60", address=[{"postalCode": "35000"}]))
        finally:
            await runtime.close()

    asyncio.run(seed())
    runner = CliRunner()
    args = ["alerte", "diffuser", "--titre", "Canicule", "--message", "Hydratez vos patients.", "--theme"]
    args += ["canicule", "--professionnels", "--profession", "médecin", "--region", "Bretagne"]
    result = runner.invoke(app, [*args, "--simulation"])
    assert result.exit_code == 0, result.output
    assert "1 professionnel(s) concerné(s) ; 1 seraient destinataires" in result.output
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 ont reçu l’alerte" in result.output
    mixed = runner.invoke(app, [*args, "--age-min", "65"])
    assert mixed.exit_code != 0 and "désignent des patients" in mixed.output
    unknown = runner.invoke(app, [*args[:-4], "--profession", "astronaute"])
    assert unknown.exit_code != 0 and "profession inconnue" in unknown.output
    alone = runner.invoke(app, [*args[:8], "--profession", "médecin"])
    assert alone.exit_code != 0 and "professionnels" in alone.output
