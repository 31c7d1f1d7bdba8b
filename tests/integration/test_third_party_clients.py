"""Real third-party FHIR clients, unchanged, against a real Hygie server on a loopback port.

``fhirpy`` (async and sync) and SMART's Python ``fhirclient`` talk HTTP to a uvicorn server
started in a background thread, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from hygie.config import load_settings
from live_server import start_live_server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Backend:
    """A running server and a SMART backend service registered on it (private_key_jwt)."""

    base: str  # the FHIR base URL
    client_id: str
    key: RSAKey

    def assertion(self) -> str:
        """A signed client assertion for the token endpoint (SMART Backend Services)."""
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.base.removesuffix("/fhir") + "/oauth/token",
            "exp": now + 240,
            "jti": secrets.token_hex(12),
        }
        return jwt.encode(
            {"alg": "RS384", "kid": self.key.kid, "typ": "JWT"}, claims, self.key, algorithms=["RS384"]
        )

    def token(self) -> str:
        """An access token, through the real token endpoint."""
        r = httpx.post(
            self.base.removesuffix("/fhir") + "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "scope": SCOPE,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": self.assertion(),
            },
        )
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])


SCOPE = "system/Patient.cruds system/Observation.cruds system/Organization.cruds"


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A Hygie server on 127.0.0.1:<free port> with a registered backend client."""
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
    live = start_live_server(settings, port)
    key = RSAKey.generate_key(2048, parameters={"kid": "lgc-1", "alg": "RS384"})
    assert live.runtime.auth is not None
    client, _ = live.call(
        live.runtime.auth.clients.register(
            name="Logiciel de cabinet", scope=SCOPE, jwks={"keys": [key.as_dict(private=False)]}
        )
    )
    yield Backend(f"{base}/fhir", client.client_id, key)
    live.stop()


def test_requests_without_a_valid_token_are_refused(server: Backend) -> None:
    """RFC 6750: no token, a tampered one, an unsigned one: 401 with a challenge; metadata stays open."""
    with httpx.Client() as raw:
        assert raw.get(f"{server.base}/metadata").status_code == 200
        r = raw.get(f"{server.base}/Patient")
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["issue"][0]["code"] == "login"
        token = server.token()
        head, body, signature = token.split(".")
        tampered = f"{head}.{body}.{signature[:-4]}AAAA"
        r = raw.get(f"{server.base}/Patient", headers={"Authorization": f"Bearer {tampered}"})
        assert r.status_code == 401
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
        unsigned = base64url(b'{"alg":"none","typ":"JWT"}') + "." + body + "."
        r = raw.get(f"{server.base}/Patient", headers={"Authorization": f"Bearer {unsigned}"})
        assert r.status_code == 401
        r = raw.get(f"{server.base}/Patient", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        # scopes narrow: this backend may not read Encounters
        r = raw.get(f"{server.base}/Encounter", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 403


def base64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_fhirpy_async_client_crud_search_and_paging(server: Backend) -> None:
    from fhirpy import AsyncFHIRClient

    token = server.token()

    async def scenario() -> None:
        client = AsyncFHIRClient(server.base, authorization=f"Bearer {token}")
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


def test_fhirpy_sync_client(server: Backend) -> None:
    from fhirpy import SyncFHIRClient

    client = SyncFHIRClient(server.base, authorization=f"Bearer {server.token()}")
    org = client.resource("Organization", name="Centre hospitalier de Dax")
    org.save()
    assert client.resources("Organization").search(name="centre").count() == 1
    fetched = client.reference("Organization", org["id"]).to_resource()
    assert fetched["name"] == "Centre hospitalier de Dax"


def test_smart_python_fhirclient(server: Backend) -> None:
    """SMART's Python client as a backend service: it reads the token endpoint from the
    capability statement and obtains its token with a signed client assertion."""
    from fhirclient import client
    from fhirclient.models.humanname import HumanName
    from fhirclient.models.patient import Patient

    smart = client.FHIRClient(
        settings={
            "app_id": server.client_id,
            "api_base": server.base,
            "jwt_token": server.assertion(),
            "scope": "system/Patient.cruds",
        }
    )
    smart.prepare()
    smart.authorize()
    assert smart.server.auth.access_token
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
        assert raw.get(f"{server.base}/Patient/{pid}").status_code == 401
        bearer = {"Authorization": f"Bearer {smart.server.auth.access_token}"}
        assert raw.get(f"{server.base}/Patient/{pid}", headers=bearer).status_code == 200
