"""The publisher example (``examples/practice_software/``), run exactly as its README says, against
a real Hygie server on a loopback port, on SQLite and PostgreSQL.

The practice generates its key pair (``generate_key.py``), the operator registers its software
with ``hygie client add --organization`` (a backend client bound to the practice), and
``deposit_document.py`` — a separate process, talking HTTP only — gets a token with SMART Backend
Services, finds the patient by INS and deposits a PDF, then replaces it. The server is then
asked, through the API and its audit trail, whether what the example printed is true; and the
same software is refused for a patient of the practice's own doctor with whom the practice itself
has no relation (a structure does not borrow its professionals' relations).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from fpdf import FPDF

from bearer_tokens import bearer
from hygie.config import load_settings
from hygie.domain.access import Caller
from hygie.fhir.request import FhirRequest
from hygie.fhir.router import route
from live_server import LiveServer, start_live_server

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "practice_software"
HYGIE = Path(sys.executable).parent / "hygie"

INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"
CLAIRE_INS, PAUL_INS = "285044523412351", "148032A00400416"
IDNAT_PS = "urn:oid:1.2.250.1.71.4.2.1"
GP_IDNAT = "810001234565"
CABINET = "Organization/org-cabinet"
TRE_G15 = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
SCOPE = "system/Patient.rs system/Practitioner.rs system/DocumentReference.crus system/Binary.c"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def world() -> list[dict[str, Any]]:
    """A practice, its GP (the médecin traitant of both patients), and one consultation with Claire
    declared at the practice — the practice's only relation; Paul never consulted there."""
    return [
        {"resourceType": "Organization", "id": "org-cabinet", "name": "Cabinet médical des Tilleuls"},
        {
            "resourceType": "Practitioner",
            "id": "dr-gp",
            "identifier": [{"system": IDNAT_PS, "value": GP_IDNAT}],
            "name": [{"family": "MARTIN", "given": ["Hélène"], "prefix": ["Dr"]}],
            "qualification": [{"code": {"coding": [{"system": TRE_G15, "code": "10"}]}}],
        },
        {
            "resourceType": "PractitionerRole",
            "id": "role-gp",
            "active": True,
            "practitioner": {"reference": "Practitioner/dr-gp"},
            "organization": {"reference": CABINET},
        },
        *(
            {
                "resourceType": "Patient",
                "id": pid,
                "identifier": [{"system": INS_SYSTEM, "value": ins}],
                "name": [{"family": family, "given": [given]}],
                "generalPractitioner": [{"reference": "Practitioner/dr-gp"}],
            }
            for pid, ins, family, given in (
                ("claire", CLAIRE_INS, "DUPONT", "Claire"),
                ("paul", PAUL_INS, "ROSSI", "Paul"),
            )
        ),
        {
            "resourceType": "Encounter",
            "id": "enc-claire",
            "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": "Patient/claire"},
            "participant": [{"individual": {"reference": "Practitioner/dr-gp"}}],
            "period": {"start": "2026-01-05T09:00:00+01:00"},
            "serviceProvider": {"reference": CABINET},
        },
    ]


@dataclass
class Practice:
    live: LiveServer
    fhir_base: str
    folder: Path
    config: Path
    client_id: str
    env: dict[str, str]

    def example(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``deposit_document.py`` as a publisher would: a separate process, HTTP only."""
        return subprocess.run(
            [sys.executable, str(EXAMPLE / "deposit_document.py"), "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def read(self, path: str) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            response = await route(
                self.live.runtime.service, FhirRequest("GET", path, caller=Caller.operator())
            )
            body = response.body
            loaded: dict[str, Any] = json.loads(body if isinstance(body, bytes) else json.dumps(body))
            return loaded

        return self.live.call(run())


@pytest.fixture(params=["sqlite", "postgres"])
def practice(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Practice]:
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
    live = start_live_server(load_settings(data_dir=tmp_path, database_url=database_url, base_url=base), port)
    try:
        for resource in world():
            request_ = FhirRequest(
                "PUT",
                f"{resource['resourceType']}/{resource['id']}",
                resource=resource,
                caller=Caller.operator(),
            )
            assert live.call(route(live.runtime.service, request_)).status in (200, 201)
        folder = tmp_path / "cabinet"
        folder.mkdir()
        # the README's steps: the practice's key pair, then the operator registers the software
        subprocess.run(
            [sys.executable, str(EXAMPLE / "generate_key.py"), "--out", str(folder)], check=True, timeout=60
        )
        env = {**os.environ, "HYGIE_DATA_DIR": str(tmp_path), "HYGIE_DATABASE_URL": database_url}
        added = subprocess.run(
            [
                str(HYGIE),
                *("client", "add", "--name", "Logiciel du cabinet des Tilleuls", "--scope", SCOPE),
                *("--jwks-file", str(folder / "cabinet.jwks.json"), "--organization", CABINET),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert added.returncode == 0, added.stdout + added.stderr
        client = json.loads(added.stdout)
        assert client["organization"] == CABINET
        assert client["token_endpoint_auth_method"] == "private_key_jwt"
        config = folder / "cabinet.json"
        config.write_text(
            json.dumps(
                {
                    "fhir_base": f"{base}/fhir",
                    "client_id": client["client_id"],
                    "private_key_file": "cabinet.private.jwk.json",
                    "organization": CABINET,
                    "author_idnat_ps": GP_IDNAT,
                    "ins_system": INS_SYSTEM,
                }
            )
        )
        yield Practice(live, f"{base}/fhir", folder, config, client["client_id"], env)
    finally:
        live.stop()


def pdf(path: Path, text: str) -> Path:
    document = FPDF()
    document.add_page()
    document.set_font("helvetica", size=14)
    document.cell(text=text)
    document.output(str(path))
    return path


def printed_id(output: str, label: str) -> str:
    """The id after ``<label>: DocumentReference/`` in the example's output."""
    for line in output.splitlines():
        if line.startswith(f"{label}: DocumentReference/"):
            return line.split("DocumentReference/", 1)[1].split()[0]
    raise AssertionError(f"no {label!r} line in:\n{output}")


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deposit_document", EXAMPLE / "deposit_document.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def gp_headers(practice: Practice) -> dict[str, str]:
    """The patient's médecin traitant, signed in (a professional's first-party token)."""
    return practice.live.call(
        bearer(
            practice.live.runtime,
            kind="professional",
            scope="openid fhirUser",
            fhir_user="Practitioner/dr-gp",
            client_id="hygie-portal",
        )
    )


def audit_of(practice: Practice, patient: str) -> list[Any]:
    assert practice.live.runtime.service.audit is not None
    page = practice.live.call(practice.live.runtime.service.audit.list_for_patient(patient, count=10_000))
    return list(page.records)


def test_the_example_deposits_a_document_the_gp_reads_then_replaces_it(practice: Practice) -> None:
    first = pdf(practice.folder / "cr.pdf", "Compte rendu de consultation")
    run = practice.example(
        *("--ins", CLAIRE_INS, "--pdf", str(first), "--title", "Compte rendu de consultation"),
        *("--date", "2026-01-05", "--visibility", "INVISIBLE_REPRESENTANTS_LEGAUX"),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "patient: Patient/claire" in run.stdout
    doc_id = printed_id(run.stdout, "deposited")

    # stored, with the DMP's metadata the example wrote
    stored = practice.read(f"DocumentReference/{doc_id}")
    assert stored["status"] == "current"
    assert stored["subject"] == {"reference": "Patient/claire"}
    assert {a["reference"] for a in stored["author"]} == {"Practitioner/dr-gp", CABINET}  # by IdNat_PS
    assert stored["custodian"] == {"reference": CABINET}
    assert stored["type"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "11488-4",
        "display": "Compte rendu de consultation",
    }
    assert stored["category"][0]["coding"][0]["code"] == "10"
    assert stored["context"]["period"] == {"start": "2026-01-05"}
    labels = {c["code"] for label in stored["securityLabel"] for c in label["coding"]}
    assert labels == {"N", "INVISIBLE_REPRESENTANTS_LEGAUX"}
    binary_ref = stored["content"][0]["attachment"]["url"]
    assert binary_ref.startswith("Binary/")

    # readable by the patient's GP through the API, content included
    with httpx.Client(base_url=practice.fhir_base, headers=gp_headers(practice)) as gp:
        r = gp.get(f"/DocumentReference/{doc_id}")
        assert r.status_code == 200, r.text
        r = gp.get(f"/{binary_ref}", headers={"Accept": "application/fhir+json"})
        assert r.status_code == 200
        assert base64.b64decode(r.json()["data"]) == first.read_bytes()
        found = gp.get("/DocumentReference", params={"patient": "claire"}).json()
        assert doc_id in {e["resource"]["id"] for e in found.get("entry", [])}

    # audited in Claire's chain: the transaction's two creations (the Binary, the DocumentReference),
    # with the software as agent and the practice as its structure
    created = [
        record.entry
        for record in audit_of(practice, "claire")
        if record.entry.agent == practice.client_id and record.entry.action == "C"
    ]
    assert [(e.structure, e.outcome) for e in created] == [(CABINET, "0")] * 2
    assert all(
        {"reference": "Patient/claire"} in [x.get("what") for x in e.event()["entity"]] for e in created
    )

    # a corrected version replaces it: the new one relates to it, the old one is superseded
    second = pdf(practice.folder / "cr-v2.pdf", "Compte rendu de consultation (corrigé)")
    run = practice.example(
        *("--ins", CLAIRE_INS, "--pdf", str(second), "--title", "Compte rendu (corrigé)"),
        *("--replaces", doc_id),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    new_id = printed_id(run.stdout, "deposited")
    assert printed_id(run.stdout, "superseded") == doc_id
    assert practice.read(f"DocumentReference/{doc_id}")["status"] == "superseded"
    replacing = practice.read(f"DocumentReference/{new_id}")
    assert replacing["relatesTo"] == [
        {"code": "replaces", "target": {"reference": f"DocumentReference/{doc_id}"}}
    ]
    with httpx.Client(base_url=practice.fhir_base, headers=gp_headers(practice)) as gp:
        current = gp.get("/DocumentReference", params={"patient": "claire", "status": "current"}).json()
        assert {e["resource"]["id"] for e in current.get("entry", [])} == {new_id}

    # replacing it again is refused: the old version is no longer current
    run = practice.example(
        *("--ins", CLAIRE_INS, "--pdf", str(second), "--title", "encore"), *("--replaces", doc_id)
    )
    assert run.returncode == 1
    assert f"DocumentReference/{doc_id} is superseded, not current" in run.stderr


def test_the_software_is_refused_for_a_patient_its_structure_has_no_relation_with(practice: Practice) -> None:
    """Paul's médecin traitant works at the practice, but the practice itself never saw him: the
    example exits non-zero with the reason, and a direct deposit is refused and audited."""
    document = pdf(practice.folder / "cr.pdf", "Compte rendu")
    run = practice.example("--ins", PAUL_INS, "--pdf", str(document), "--title", "Compte rendu")
    assert run.returncode == 1
    assert f"no patient with INS {PAUL_INS} is reachable by this client" in run.stderr
    assert f"no care relation between {CABINET} and this patient" in run.stderr
    assert "deposited" not in run.stdout

    example = load_example()
    config = example.Config.load(practice.config)
    with httpx.Client(timeout=30) as http:
        token = example.access_token(http, config)
        # the token carries the binding; introspection tells it to the client
        endpoint = example.token_endpoint(http, config)
        smart = http.get(f"{practice.fhir_base}/.well-known/smart-configuration").json()
        introspected = http.post(
            smart["introspection_endpoint"],
            data={
                "token": token,
                "client_assertion_type": example.ASSERTION_TYPE,
                "client_assertion": example.client_assertion(config, endpoint),
            },
        ).json()
        assert introspected["active"] and introspected["organization"] == CABINET
        headers = {"Authorization": f"Bearer {token}"}
        # Paul's record does not exist for this client…
        r = http.get(f"{practice.fhir_base}/Patient/paul", headers=headers)
        assert r.status_code == 404
        # …and a deposit into it, naming him directly, is refused with the reason
        deposit = {
            "resourceType": "DocumentReference",
            "status": "current",
            "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
            "category": [{"coding": [{"system": example.TRE_A03, "code": "10"}]}],
            "date": "2026-01-05T10:00:00+01:00",
            "subject": {"reference": "Patient/paul"},
            "author": [{"reference": CABINET}],
            "content": [
                {"attachment": {"contentType": "application/pdf", "url": "https://example.org/cr.pdf"}}
            ],
        }
        r = http.post(f"{practice.fhir_base}/DocumentReference", json=deposit, headers=headers)
        assert r.status_code == 403, r.text
        assert "no care relationship between this structure and the patient" in r.text
        # while Claire's record, where the practice declared a consultation, is open to it
        assert http.get(f"{practice.fhir_base}/Patient/claire", headers=headers).status_code == 200
    refused = [
        record.entry
        for record in audit_of(practice, "paul")
        if record.entry.agent == practice.client_id and record.entry.action == "C"
    ]
    assert [(e.structure, e.outcome) for e in refused] == [(CABINET, "4")]


def test_a_structure_must_be_in_the_directory_to_bind_a_client(practice: Practice) -> None:
    added = subprocess.run(
        [
            str(HYGIE),
            "client",
            "add",
            "--name",
            "x",
            "--scope",
            SCOPE,
            "--organization",
            "Organization/nowhere",
        ],
        capture_output=True,
        text=True,
        env=practice.env,
        timeout=120,
        check=False,
    )
    assert added.returncode == 2
    assert "Organization/nowhere is not in the directory" in added.stdout + added.stderr
