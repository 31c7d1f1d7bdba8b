"""The directory search (``domain/directory_search.py``) on the demo directory, through a real
FHIR service and the portal's door, and its small rules (words, label, mailboxes, form)."""

from __future__ import annotations

from typing import Any

import pytest

from hygie.demo.directory import (
    Directory,
    build_directory,
    directory_bundle,
)
from hygie.demo.directory import (
    has_digital_label as demo_label,
)
from hygie.domain.access import Caller
from hygie.domain.directory_search import (
    DIGITAL_LABEL_URL,
    DirectoryQuery,
    DirectorySearch,
    Entry,
    has_digital_label,
    mssante_addresses,
    parse_query,
    profession_code,
    specialty_words,
)
from hygie.domain.geo import haversine_km, load_gazetteer
from hygie.fhir.interactions import FhirService
from hygie.stores.memory import MemoryResourceStore
from hygie.web.portal.door import Door

pytestmark = pytest.mark.anyio
OPERATOR = Caller.operator("tests")


def test_words_people_use_for_professions_and_specialties() -> None:
    assert profession_code("Infirmière") == "60"
    assert profession_code("kiné") == "70"
    assert profession_code("Sage-femme") == "50"
    assert profession_code("dentiste") == "40"
    assert profession_code("Martin") is None
    assert specialty_words("cardiologue") == "cardiologie"
    assert specialty_words("Pédiatre") == "pediatrie"
    assert specialty_words("généraliste") == "medecine generale"
    assert specialty_words("dermatologie") == "dermatologie"
    assert specialty_words("Dupont") is None


def test_the_label_and_the_mailboxes() -> None:
    labelled = {
        "resourceType": "Practitioner",
        "extension": [{"url": DIGITAL_LABEL_URL, "valueBoolean": True}],
    }
    assert has_digital_label(labelled)
    assert not has_digital_label({"extension": [{"url": DIGITAL_LABEL_URL, "valueBoolean": False}]})
    assert not has_digital_label(labelled, "https://example.org/autre-label")
    assert has_digital_label(
        {"extension": [{"url": "https://example.org/label", "valueBoolean": True}]},
        "https://example.org/label",
    )
    typed = {
        "system": "email",
        "value": "cabinet@exemple.fr",
        "extension": [
            {
                "url": "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type",
                "valueCoding": {"code": "MSSANTE"},
            }
        ],
    }
    plain = {"system": "email", "value": "contact@exemple.fr"}
    by_domain = {"system": "email", "value": "a.b@medecin.mssante.fr"}
    assert mssante_addresses({"telecom": [typed, plain, by_domain]}, {"telecom": [by_domain]}) == (
        "cabinet@exemple.fr",
        "a.b@medecin.mssante.fr",
    )


def test_the_form_keeps_what_was_typed_and_names_its_errors() -> None:
    query, errors = parse_query({"qui": "  Dr   Martin ", "ou": "Lyon", "rayon": "5", "messages": "1"})
    assert (query.who, query.where, query.radius_km, query.accepts_messages, errors) == (
        "Dr Martin",
        "Lyon",
        5.0,
        True,
        {},
    )
    _, errors = parse_query({"rayon": "beaucoup", "type": "tout", "profession": "99", "qui": "x" * 101})
    assert set(errors) == {"rayon", "type", "profession", "qui"}
    assert parse_query({"rayon": "0"})[1] == {"rayon": "Choisissez un rayon entre 1 et 200 km."}
    assert parse_query({})[0].empty


def test_distances_are_written_the_french_way() -> None:
    def entry(km: float | None) -> Entry:
        return Entry(
            "structure", "Organization/x", "", None, None, "", (), "", (), None, (), False, False, km
        )

    assert [entry(k).distance_text for k in (0.004, 0.84, 1.26, 12.4, None)] == [
        "10 m",
        "840 m",
        "1,3 km",
        "12 km",
        "",
    ]
    assert entry(None).phone_display == ""


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def demo() -> tuple[DirectorySearch, Directory]:
    service = FhirService(MemoryResourceStore(), base_url="http://test/fhir")
    door = Door(service)
    directory = build_directory(2026)
    await door.call(OPERATOR, "POST", "", resource=directory_bundle(directory))
    gazetteer = load_gazetteer()  # the package's extract: Lyon and its arrondissements are there
    return DirectorySearch(door, lambda: gazetteer), directory


async def _search(demo: tuple[DirectorySearch, Directory], **kwargs: Any) -> list[Entry]:
    result = await demo[0].search(OPERATOR, DirectoryQuery(**kwargs))
    assert result.errors == {}
    return list(result.entries)


async def test_around_a_commune_nearest_first_within_the_radius(
    demo: tuple[DirectorySearch, Directory],
) -> None:
    search, directory = demo
    result = await search.search(OPERATOR, DirectoryQuery(where="Lyon", radius_km=20))
    assert result.centre is not None and result.centre.name == "Lyon"
    lyon = [c for c in directory.local if c.commune.city == "Lyon"]
    assert len(result.entries) == sum(len(c.structures) + len(c.professionals) for c in lyon)
    distances = [e.distance_km for e in result.entries]
    assert all(d is not None and d <= 20 for d in distances)
    assert distances == sorted(distances)  # type: ignore[type-var]
    # the distance is the one from the centre to the structure's position
    centre = result.centre
    for entry in result.entries:
        assert entry.distance_km == pytest.approx(
            haversine_km(centre.lat, centre.lng, *_position(directory, entry))
        )
    # the region's hub is 50 km away: a larger radius brings it, after Lyon
    wider = await _search(demo, where="Lyon", radius_km=60)
    assert len(wider) > len(result.entries)
    assert [e.reference for e in wider[: len(result.entries)]] == [e.reference for e in result.entries]


def _position(directory: Directory, entry: Entry) -> tuple[float, float]:
    from hygie.demo.directory import structure_position

    structure = next(s for s in directory.structures if f"Organization/{s.id}" == entry.organization)
    return structure_position(structure)


async def test_by_profession_specialty_and_name(demo: tuple[DirectorySearch, Directory]) -> None:
    _, directory = demo
    nurses = await _search(demo, who="infirmière", where="Lyon 3e", radius_km=2)
    assert nurses and all(e.kind == "professionnel" and e.profession == "Infirmier" for e in nurses)
    cardiologists = await _search(demo, who="cardiologue")
    assert len(cardiologists) == len(directory.hubs)  # one in each hub's hospital
    assert all("Cardiologie" in e.specialties[0] for e in cardiologists)
    someone = directory.local[0].professionals[0]
    found = await _search(demo, who=f"{someone.given} {someone.family}")
    assert f"PractitionerRole/{someone.role_id}" in [e.reference for e in found]
    mine = next(e for e in found if e.reference == f"PractitionerRole/{someone.role_id}")
    assert mine.practitioner == f"Practitioner/{someone.id}"
    assert mine.mssante == (someone.email,)
    assert mine.digital == demo_label(someone)
    assert mine.phone == someone.phone and mine.structure == someone.structure.name
    assert mine.address[-1].endswith(someone.structure.address.commune.city)
    pharmacies = await _search(demo, who="pharmacie", where="Lyon", radius_km=10)
    assert pharmacies and all(e.kind == "structure" and "Pharmacie" in e.name for e in pharmacies)


async def test_only_those_who_accept_messages_and_kinds(demo: tuple[DirectorySearch, Directory]) -> None:
    everyone = await _search(demo, where="Lyon", radius_km=20)
    accepting = await _search(demo, where="Lyon", radius_km=20, accepts_messages=True)
    assert accepting and len(accepting) < len(everyone)
    assert all(e.accepts_messages for e in accepting)
    assert {e.kind for e in await _search(demo, where="Lyon", kind="structures")} == {"structure"}
    assert {e.kind for e in await _search(demo, where="Lyon", kind="professionnels")} == {"professionnel"}


async def test_the_label_url_is_the_deployment_s(demo: tuple[DirectorySearch, Directory]) -> None:
    search, _ = demo
    other = DirectorySearch(search.reads, search.gazetteer, digital_label_url="https://example.org/label")
    entries = (await other.search(OPERATOR, DirectoryQuery(where="Lyon"))).entries
    assert entries and not any(e.digital for e in entries)
    assert any(e.digital for e in await _search(demo, where="Lyon"))


async def test_an_unknown_place_and_an_empty_query(demo: tuple[DirectorySearch, Directory]) -> None:
    search, _ = demo
    result = await search.search(OPERATOR, DirectoryQuery(who="infirmier", where="Lyonn"))
    assert result.errors == {
        "ou": "Commune inconnue : « Lyonn ». Indiquez le nom d’une commune, son code postal ou son code INSEE."
    }
    assert result.entries == () and result.searched
    assert not (await search.search(OPERATOR, DirectoryQuery())).searched
