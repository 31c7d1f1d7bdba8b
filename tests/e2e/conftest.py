"""End-to-end fixtures: a real Hygie server, a static SMART app, and Debian's Chromium.

* ``hygie`` — a uvicorn server on a free loopback port over SQLite in ``tmp_path``, run in a
  thread with its own event loop; the runtime is opened *in that loop*, and the tests call its
  services through :meth:`LiveHygie.call`. It is seeded with two patients (one with an
  observation), a practitioner, and the public SMART client ``hygie-e2e-smart-app``.
* ``people`` — a professional account with TOTP and a citizen account linked to her Patient,
  new for each test (a TOTP step is accepted once per account, so tests never share one).
* ``smart_app`` — a static file server on another free port serving ``tests/e2e/smart_app/``
  and the official fhirclient browser build (``node_modules/fhirclient/build/fhir-client.js``).
* ``page`` — a Chromium page driven by Playwright; the browser is Debian's ``/usr/bin/chromium``
  (``scripts/setup --test`` installs it), started with a fresh profile for each test. Playwright
  never downloads a browser here.

CORS: the app and the FHIR server are different origins, as in real life: the browser relies on
the CORS policy of ``web/app.py`` (any origin, no credentials) for the discovery document, the
token endpoint and the FHIR API.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import os
import shutil
import socket
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest

from hygie.bootstrap import Runtime
from hygie.config import load_settings
from live_server import start_live_server

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = Path(__file__).resolve().parent / "smart_app"
FHIR_CLIENT_JS = ROOT / "node_modules" / "fhirclient" / "build" / "fhir-client.js"
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = os.environ.get("HYGIE_CHROMIUM", "/usr/bin/chromium")
CLIENT_ID = "hygie-e2e-smart-app"
PASSWORD = "Un mot de passe solide 42"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

PATIENT_DURAND: dict[str, Any] = {
    "resourceType": "Patient",
    "name": [{"use": "official", "family": "DURAND", "given": ["Léa"]}],
    "gender": "female",
    "birthDate": "1992-07-14",
}
PATIENT_MARTIN: dict[str, Any] = {
    "resourceType": "Patient",
    "name": [{"use": "official", "family": "MARTIN", "given": ["Claire"]}],
    "gender": "female",
    "birthDate": "1985-03-14",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveHygie:
    """A running Hygie server and the runtime behind it."""

    base: str
    runtime: Runtime
    loop: asyncio.AbstractEventLoop
    patients: dict[str, str] = field(default_factory=dict)  # "durand"/"martin" → Patient id
    practitioner: str = ""

    @property
    def fhir(self) -> str:
        return f"{self.base}/fhir"

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's event loop (where the stores were opened)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)


@dataclass(frozen=True)
class Person:
    login: str
    password: str
    totp_secret: str | None
    account_id: str


@dataclass(frozen=True)
class People:
    professional: Person
    citizen: Person


def _static_handler(directory: Path) -> type[http.server.SimpleHTTPRequestHandler]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        """The SMART app's files, plus the fhirclient build from node_modules."""

        def translate_path(self, path: str) -> str:
            if urlsplit(path).path == "/fhir-client.js":
                return str(FHIR_CLIENT_JS)
            return super().translate_path(path)

        def end_headers(self) -> None:
            self.send_header("Cache-Control", "no-store")
            super().end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return functools.partial(Handler, directory=str(directory))  # type: ignore[return-value]


@pytest.fixture(scope="module")
def smart_app() -> Iterator[str]:
    """The static SMART app on 127.0.0.1:<free port>; yields its origin."""
    if not FHIR_CLIENT_JS.is_file():
        pytest.fail(f"{FHIR_CLIENT_JS} is missing: run scripts/setup (npm ci)")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _static_handler(APP_DIR))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def hygie(smart_app: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHygie]:
    """A Hygie server on SQLite, seeded; the SMART app's origin may call it (CORS)."""
    data = tmp_path_factory.mktemp("hygie")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # the app store's apps run on the loopback in tests: its probes may reach it (never in production)
    settings = load_settings(
        data_dir=data,
        database_url=f"sqlite:///{data / 'hygie.sqlite3'}",
        base_url=base,
        store_probe_allow_private=True,
    )
    server = start_live_server(settings, port)
    live = LiveHygie(base, server.runtime, server.loop)
    _seed(live, smart_app)
    yield live
    server.stop()


async def create_resource(runtime: Runtime, resource: dict[str, Any]) -> str:
    """Store a resource through the FHIR service as an operator (as ``hygie import`` does): the
    seeding does not depend on the access policy of the HTTP API."""
    import orjson

    from hygie.domain.access import Caller
    from hygie.fhir.request import FhirRequest
    from hygie.fhir.router import route

    request = FhirRequest(
        "POST", resource["resourceType"], resource=resource, caller=Caller.operator("tests/e2e")
    )
    response = await route(runtime.service, request)
    assert response.status == 201, response.body
    body = orjson.loads(response.body) if isinstance(response.body, bytes) else response.body
    assert isinstance(body, dict)
    return str(body["id"])


def weight(patient_id: str, when: str, kg: float) -> dict[str, Any]:
    """A body weight (LOINC 29463-7, kg) of ``patient_id`` taken ``when``, as a device would send it."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}], "text": "Poids"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": kg, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
    }


def _seed(live: LiveHygie, app_origin: str) -> None:
    for key, patient in (("durand", PATIENT_DURAND), ("martin", PATIENT_MARTIN)):
        live.patients[key] = live.call(create_resource(live.runtime, patient))
    for i, kg in enumerate((61.5, 62.0)):
        live.call(create_resource(live.runtime, weight(live.patients["durand"], f"2026-01-0{i + 1}", kg)))
    live.practitioner = live.call(
        create_resource(
            live.runtime,
            {
                "resourceType": "Practitioner",
                "identifier": [
                    {
                        "system": "urn:oid:1.2.250.1.71.4.2.1",
                        "type": {
                            "coding": [
                                {
                                    "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203",
                                    "code": "IDNPS",
                                }
                            ]
                        },
                        "value": "810001234565",
                    }
                ],
                "name": [{"family": "BERNARD", "given": ["Paul"], "prefix": ["Dr"]}],
                # a doctor (TRE_G15 10): the profession × document-class matrix opens every class
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
            },
        )
    )
    # Dr Bernard is in Léa Durand's care team (and has no relation with Claire Martin): the access
    # policy lets him open her record, and only hers
    live.call(
        create_resource(
            live.runtime,
            {
                "resourceType": "CareTeam",
                "status": "active",
                "subject": {"reference": f"Patient/{live.patients['durand']}"},
                "participant": [{"member": {"reference": f"Practitioner/{live.practitioner}"}}],
            },
        )
    )
    assert live.runtime.auth is not None
    live.call(
        live.runtime.auth.clients.register(
            name="Appli SMART de test",
            scope="launch launch/patient openid fhirUser patient/*.rs",
            redirect_uris=[f"{app_origin}/index.html"],
            client_id=CLIENT_ID,
        )
    )


_counter = iter(range(1, 1_000_000))


@pytest.fixture
def people(hygie: LiveHygie) -> People:
    """A professional (password + TOTP) and a citizen (password) account, new for this test."""
    accounts = hygie.runtime.accounts
    assert accounts is not None
    n = next(_counter)
    pro, uri = hygie.call(
        accounts.create(
            "professional",
            f"dr.bernard.{n}@example.fr",
            PASSWORD,
            totp=True,
            practitioner_id=hygie.practitioner,
        )
    )
    assert uri is not None
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    citizen, _ = hygie.call(
        accounts.create(
            "citizen", f"claire.martin.{n}@example.fr", PASSWORD, patient_id=hygie.patients["martin"]
        )
    )
    return People(
        Person(pro.login, PASSWORD, secret, pro.id),
        Person(citizen.login, PASSWORD, None, citizen.id),
    )


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    """A page of a Chromium started for this test alone (fresh profile: no cookie, no storage).

    Playwright's driver lives only as long as the test: its sync API runs an event loop in this
    thread, which must not outlive the test (other tests call ``asyncio.run``)."""
    from playwright.sync_api import sync_playwright

    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup --test installs Debian's chromium")
    with sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            locale="fr-FR",
            viewport={"width": 1100, "height": 900},
        )
        context.set_default_timeout(20_000)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


@dataclass
class Citizen:
    """A patient of their own and the citizen account that signs in to their space."""

    patient_id: str
    login: str
    password: str
    account_id: str


def new_citizen(
    hygie: LiveHygie, *, family: str = "DUPONT", given: str = "Claire", birth_date: str = "1985-04-12"
) -> Citizen:
    """A new Patient and its citizen account (tests never share a space)."""
    n = next(_counter)
    patient_id = hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "Patient",
                "name": [{"use": "official", "family": family, "given": [given]}],
                "gender": "female",
                "birthDate": birth_date,
            },
        )
    )
    accounts = hygie.runtime.accounts
    assert accounts is not None
    account, _ = hygie.call(
        accounts.create(
            "citizen", f"{given.lower()}.{family.lower()}.{n}@example.fr", PASSWORD, patient_id=patient_id
        )
    )
    return Citizen(patient_id, account.login, PASSWORD, account.id)


@pytest.fixture
def citizen(hygie: LiveHygie) -> Citizen:
    return new_citizen(hygie)


@dataclass
class Family:
    """A minor with their own account, and two parents whose accounts act as their RelatedPersons
    (legal representatives): each parent's space switcher offers the child's space."""

    child: Citizen
    parents: tuple[Citizen, Citizen]
    related_ids: tuple[str, str]  # the parents' RelatedPerson ids, in the child's record


def new_family(hygie: LiveHygie, *, child_birth_date: str = "2011-09-21") -> Family:
    """A child Patient (an adolescent by default) with two parents' citizen accounts, each linked
    (``AccountService.link_related``) to the parent's RelatedPerson of the child."""
    child = new_citizen(hygie, family="BERNARD", given="Léa", birth_date=child_birth_date)
    accounts = hygie.runtime.accounts
    assert accounts is not None
    parents: list[Citizen] = []
    related: list[str] = []
    for given, code, gender in (("Sophie", "MTH", "female"), ("Marc", "FTH", "male")):
        parent = new_citizen(hygie, family="BERNARD", given=given, birth_date="1980-05-03")
        related_id = hygie.call(
            create_resource(
                hygie.runtime,
                {
                    "resourceType": "RelatedPerson",
                    "active": True,
                    "patient": {"reference": f"Patient/{child.patient_id}"},
                    "relationship": [
                        {
                            "coding": [
                                {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": code}
                            ]
                        }
                    ],
                    "name": [{"family": "BERNARD", "given": [given]}],
                    "gender": gender,
                },
            )
        )
        hygie.call(accounts.link_related(parent.account_id, related_id))
        parents.append(parent)
        related.append(related_id)
    return Family(child, (parents[0], parents[1]), (related[0], related[1]))


@pytest.fixture
def family(hygie: LiveHygie) -> Family:
    return new_family(hygie)


DEMO_SEED = 2026  # the seed of `hygie demo` (demo/loader.py)


@pytest.fixture(scope="module")
def directory(hygie: LiveHygie) -> Any:
    """The demo directory (``demo/directory.py``, with the Locations of its structures), stored
    once in this module's server; returns the built ``Directory``."""
    from hygie.demo.directory import build_directory, directory_bundle
    from hygie.domain.access import Caller
    from hygie.fhir.request import FhirRequest
    from hygie.fhir.router import route

    built = build_directory(DEMO_SEED)
    request = FhirRequest(
        "POST", "", resource=directory_bundle(built), caller=Caller.operator("tests/e2e directory")
    )
    response = hygie.call(route(hygie.runtime.service, request))
    assert response.status == 200
    return built
