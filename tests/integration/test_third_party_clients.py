"""Real third-party FHIR clients, unchanged, against a real Hygie server on a loopback port.

``fhirpy`` (async and sync) and SMART's Python ``fhirclient`` talk HTTP to a uvicorn server
started in a background thread, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from hygie.config import load_settings
from hygie.web.app import create_app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A Hygie server on 127.0.0.1:<free port>; yields the FHIR base URL."""
    if request.param == "postgres":
        database_url = request.getfixturevalue("pg_database")
        import psycopg

        from hygie.stores.sql import STORE_TABLES

        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"TRUNCATE {', '.join(STORE_TABLES)} RESTART IDENTITY")
    else:
        database_url = f"sqlite:///{tmp_path / 'hygie.sqlite3'}"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = load_settings(data_dir=tmp_path, database_url=database_url, base_url=base)
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the Hygie server did not start")
        time.sleep(0.05)
    yield f"{base}/fhir"
    server.should_exit = True
    thread.join(timeout=10)


def test_fhirpy_async_client_crud_search_and_paging(server: str) -> None:
    from fhirpy import AsyncFHIRClient

    async def scenario() -> None:
        client = AsyncFHIRClient(server)
        patient = client.resource(
            "Patient",
            name=[{"family": "Durand", "given": ["Léa"]}],
            gender="female",
            birthDate="1992-07-14",
            identifier=[{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "292077511300198"}],
        )
        await patient.save()
        assert patient["id"]
        assert patient["meta"]["versionId"] == "1"
        patient["gender"] = "other"
        await patient.save()
        fetched = await client.reference("Patient", patient["id"]).to_resource()
        assert fetched["gender"] == "other"
        assert fetched["meta"]["versionId"] == "2"
        for i in range(25):
            await client.resource(
                "Observation",
                status="final",
                code={"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                subject=patient.to_reference(),
                effectiveDateTime=f"2024-01-{i + 1:02d}",
                valueQuantity={
                    "value": 60 + i,
                    "unit": "kg",
                    "system": "http://unitsofmeasure.org",
                    "code": "kg",
                },
            ).save()
        search = (
            client.resources("Observation").search(subject=patient.to_reference().reference).sort("-date")
        )
        assert await search.count() == 25
        everything = await search.limit(10).fetch_all()
        assert len(everything) == 25
        assert everything[0]["effectiveDateTime"] == "2024-01-25"
        found = await client.resources("Patient").search(family="durand").fetch()
        assert [p["id"] for p in found] == [patient["id"]]
        by_ins = await client.resources("Patient").search(identifier="292077511300198").first()
        assert by_ins is not None
        assert by_ins["id"] == patient["id"]
        await fetched.delete()
        assert await client.resources("Patient").search(family="durand").count() == 0

    asyncio.run(scenario())


def test_fhirpy_sync_client(server: str) -> None:
    from fhirpy import SyncFHIRClient

    client = SyncFHIRClient(server)
    org = client.resource("Organization", name="Centre hospitalier de Dax")
    org.save()
    assert client.resources("Organization").search(name="centre").count() == 1
    fetched = client.reference("Organization", org["id"]).to_resource()
    assert fetched["name"] == "Centre hospitalier de Dax"


def test_smart_python_fhirclient(server: str) -> None:
    from fhirclient import client
    from fhirclient.models.humanname import HumanName
    from fhirclient.models.patient import Patient

    smart = client.FHIRClient(settings={"app_id": "hygie-tests", "api_base": server})
    patient = Patient({"gender": "male", "birthDate": "1970-01-01"})
    name = HumanName()
    name.family = "Petit"
    name.given = ["Hugo"]
    patient.name = [name]
    created = patient.create(smart.server)
    assert created is not None
    pid = created["id"]
    read = Patient.read(pid, smart.server)
    assert read.name[0].family == "Petit"
    assert read.birthDate.isostring == "1970-01-01"
    results = list(Patient.where(struct={"family": "petit"}).perform_resources_iter(smart.server))
    assert [p.id for p in results] == [pid]
    # the capability statement parses as an R4 CapabilityStatement model
    from fhirclient.models.capabilitystatement import CapabilityStatement

    statement = CapabilityStatement.read_from("metadata", smart.server)
    assert statement.fhirVersion == "4.0.1"
    with httpx.Client() as raw:
        assert raw.get(f"{server}/Patient/{pid}").status_code == 200
