#!/usr/bin/env python3
"""Deposit a PDF in a patient's shared record, from a practice-management program, through
Hygie's FHIR API with SMART Backend Services — an example for software publishers to copy.

What it does, in order:

1. reads the practice's configuration (FHIR base URL, client id, private key, the structure);
2. discovers the token endpoint (``<FHIR base>/.well-known/smart-configuration``) and gets an
   access token with ``client_credentials``, authenticated by a client assertion signed with the
   practice's private key (RS384 for an RSA key, ES384 for an EC P-384 key);
3. finds the patient by INS (``Patient?identifier=<INS system>|<matricule>``);
4. deposits the PDF as one transaction Bundle: the ``Binary`` (filed in the patient's record by
   its ``securityContext``) and its ``DocumentReference`` with the DMP metadata — LOINC type,
   TRE_A03 class, date, author (the professional, found by IdNat_PS, and the structure),
   custodian (the structure), visibility labels (TRE_A07), ``context.period`` (the act's date);
5. with ``--replaces <id>``, the new document replaces a previous one of the structure: the new
   one ``relatesTo`` it (``replaces``) and, in the same transaction, the old one becomes
   ``superseded`` (only if nobody changed it meanwhile: ``ifMatch`` on its version).

It prints what it did. Any refusal prints the server's OperationOutcome (text and the element at
fault) or OAuth error, and exits with status 1 (2 for a usage or configuration error).

Usage::

    python deposit_document.py --config cabinet.json --ins 285044523412351 \\
        --pdf compte-rendu.pdf --title "Compte rendu de consultation" \\
        [--type 11488-4] [--class 10] [--date 2026-11-23] [--visibility MASQUE_PS] \\
        [--replaces <DocumentReference id>]

The configuration (JSON; relative paths are relative to the file)::

    {
      "fhir_base": "http://127.0.0.1:8000/fhir",
      "client_id": "<printed by hygie client add>",
      "private_key_file": "cabinet.private.jwk.json",
      "organization": "Organization/<the structure the client is bound to>",
      "author_idnat_ps": "<IdNat_PS of the professional who wrote the document>",
      "ins_system": "urn:oid:1.2.250.1.213.1.4.8"
    }

Requires ``httpx`` and ``joserfc`` (``pip install httpx joserfc``).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import secrets
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey, import_key

# -- codes (digest of the DMP's metadata: PDSm / CI-SIS) -----------------------------------------
LOINC = "http://loinc.org"
TRE_A03 = "https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument"
TRE_A07 = (
    "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument"
)
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
IHE_FORMAT = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
IDNAT_PS = "urn:oid:1.2.250.1.71.4.2.1"
INS_NIR = "urn:oid:1.2.250.1.213.1.4.8"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# what the practice's software needs: find the patient and the author, deposit and replace documents
SCOPE = "system/Patient.rs system/Practitioner.rs system/DocumentReference.crus system/Binary.c"

# the French labels of a few common document types (JDV_J07) and classes (TRE_A03)
TYPES = {
    "11488-4": "Compte rendu de consultation",
    "11490-0": "Lettre de liaison à la sortie d'un établissement de soins",
    "11502-2": "Compte rendu d'examens biologiques",
    "18748-4": "Compte rendu d'imagerie médicale",
    "34133-9": "Synthèse d'épisode de soins",
    "57833-6": "Prescription de produits de santé",
    "60591-5": "Synthèse médicale",
}
CLASSES = {
    "10": "Compte rendu",
    "11": "Synthèse",
    "31": "Imagerie médicale",
    "42": "Prescription",
    "52": "Certificat, déclaration",
}
# TRE_A07 visibility: who must not see the document
VISIBILITY = ("MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX")


class Failure(Exception):
    """Something the server refused or the practice must fix; the message says what and why."""


@dataclass(frozen=True)
class Config:
    fhir_base: str
    client_id: str
    key: RSAKey | ECKey
    organization: str
    author_idnat_ps: str
    ins_system: str = INS_NIR
    scope: str = SCOPE

    @classmethod
    def load(cls, path: Path) -> Config:
        try:
            data = json.loads(path.read_text())
            key_file = Path(data["private_key_file"])
            if not key_file.is_absolute():
                key_file = path.parent / key_file
            key = import_key(json.loads(key_file.read_text()))
            fields = {
                name: str(data[name])
                for name in ("fhir_base", "client_id", "organization", "author_idnat_ps")
            }
        except (OSError, ValueError, KeyError, TypeError, JoseError) as exc:
            raise ConfigError(f"configuration {path}: {exc}") from exc
        if not isinstance(key, (RSAKey, ECKey)) or not key.is_private:
            raise ConfigError(f"configuration {path}: the key must be a private RSA or EC P-384 JWK")
        if not fields["organization"].startswith("Organization/"):
            raise ConfigError(f'configuration {path}: "organization" must be a reference Organization/<id>')
        return cls(
            fhir_base=fields["fhir_base"].rstrip("/"),
            client_id=fields["client_id"],
            key=key,
            organization=fields["organization"],
            author_idnat_ps=fields["author_idnat_ps"],
            ins_system=str(data.get("ins_system") or INS_NIR),
            scope=str(data.get("scope") or SCOPE),
        )


class ConfigError(Exception):
    """The configuration or the command line is wrong (exit status 2)."""


# -- errors as the server words them ---------------------------------------------------------------


def explain(response: httpx.Response) -> str:
    """The server's reason: an OperationOutcome's issues (with the element at fault) or an OAuth error."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        lines = []
        for issue in body.get("issue", []):
            text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or issue.get("code")
            where = ", ".join(issue.get("expression", []) or [])
            lines.append(
                f"{issue.get('severity', 'error')} {issue.get('code', '')}: {text}"
                + (f" (at {where})" if where else "")
            )
        return f"HTTP {response.status_code}: " + "; ".join(lines)
    if isinstance(body, dict) and "error" in body:  # OAuth 2.0 (RFC 6749 §5.2)
        return f"HTTP {response.status_code}: {body['error']}: {body.get('error_description', '')}".rstrip(
            ": "
        )
    return f"HTTP {response.status_code}: {json.dumps(body)[:300]}"


def check(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code >= 400:
        raise Failure(f"{what} refused — {explain(response)}")
    body: dict[str, Any] = response.json()
    return body


# -- SMART Backend Services ----------------------------------------------------------------------


def token_endpoint(http: httpx.Client, config: Config) -> str:
    """The token endpoint, from the server's SMART configuration."""
    smart = check(http.get(f"{config.fhir_base}/.well-known/smart-configuration"), "SMART discovery")
    if "private_key_jwt" not in smart.get("token_endpoint_auth_methods_supported", []):
        raise Failure("the server does not accept private_key_jwt client authentication")
    return str(smart["token_endpoint"])


def client_assertion(config: Config, audience: str) -> str:
    """A signed JWT that proves the client holds its private key (valid 5 minutes, used once)."""
    algorithm = "ES384" if isinstance(config.key, ECKey) else "RS384"
    now = int(time.time())
    claims = {
        "iss": config.client_id,
        "sub": config.client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 240,
        "jti": secrets.token_urlsafe(16),
    }
    header = {"alg": algorithm, "typ": "JWT", "kid": config.key.kid}
    return jwt.encode(header, claims, config.key, algorithms=[algorithm])


def access_token(http: httpx.Client, config: Config) -> str:
    endpoint = token_endpoint(http, config)
    response = http.post(
        endpoint,
        data={
            "grant_type": "client_credentials",
            "scope": config.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(config, endpoint),
        },
    )
    token = check(response, "token request")
    print(f"token: {token.get('scope')} for {token.get('expires_in')} s (client {config.client_id})")
    return str(token["access_token"])


# -- the FHIR API --------------------------------------------------------------------------------


def find_patient(http: httpx.Client, config: Config, ins: str) -> dict[str, Any]:
    """The patient with this INS, if the structure may reach their record."""
    bundle = check(
        http.get(f"{config.fhir_base}/Patient", params={"identifier": f"{config.ins_system}|{ins}"}),
        "patient search",
    )
    found = [
        e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"
    ]
    if not found:
        # Hygie answers "not found" alike for an unknown INS and for a record the client may not reach
        raise Failure(
            f"no patient with INS {ins} is reachable by this client: unknown INS, or no care relation "
            f"between {config.organization} and this patient (an encounter at the structure, a care team "
            "it belongs to, or the patient's grant to it), or the patient blocked it"
        )
    if len(found) > 1:
        raise Failure(f"INS {ins} matches {len(found)} patients: refusing to guess")
    patient: dict[str, Any] = found[0]
    print(f"patient: Patient/{patient['id']} (INS {ins})")
    return patient


@dataclass(frozen=True)
class Document:
    pdf: bytes
    title: str
    type_code: str
    class_code: str
    act_date: str  # YYYY-MM-DD: when the act took place (context.period.start)
    visibility: tuple[str, ...] = ()


def document_reference(
    config: Config, patient_id: str, doc: Document, binary_url: str, replaces: str | None
) -> dict[str, Any]:
    """The DocumentReference with the DMP's metadata (PDSm comprehensive document reference)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    labels = [{"coding": [{"system": CONFIDENTIALITY, "code": "N"}]}]
    labels += [{"coding": [{"system": TRE_A07, "code": code}]} for code in doc.visibility]
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        # the producer's unique id of the document (XDS uniqueId)
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
        "status": "current",
        "docStatus": "final",
        "type": {
            "coding": [{"system": LOINC, "code": doc.type_code, "display": TYPES.get(doc.type_code, "")}]
        },
        "category": [
            {
                "coding": [
                    {"system": TRE_A03, "code": doc.class_code, "display": CLASSES.get(doc.class_code, "")}
                ]
            }
        ],
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": now,
        # the professional (found by IdNat_PS when the transaction runs) and the structure: naming
        # the structure among the authors is what lets its software read and replace it later
        "author": [
            {"reference": f"Practitioner?identifier={IDNAT_PS}|{config.author_idnat_ps}"},
            {"reference": config.organization},
        ],
        "custodian": {"reference": config.organization},
        "description": doc.title,
        "securityLabel": labels,
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "language": "fr-FR",
                    "url": binary_url,
                    "size": len(doc.pdf),
                    # the XDS metadata's hash is SHA-1 (base64), a checksum, not a signature
                    "hash": base64.b64encode(hashlib.sha1(doc.pdf).digest()).decode("ascii"),
                    "title": doc.title,
                    "creation": now,
                },
                "format": {"system": IHE_FORMAT, "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient"},
            }
        ],
        "context": {"period": {"start": doc.act_date}},
    }
    if replaces is not None:
        resource["relatesTo"] = [
            {"code": "replaces", "target": {"reference": f"DocumentReference/{replaces}"}}
        ]
    return resource


def deposit(
    http: httpx.Client, config: Config, patient_id: str, doc: Document, replaces: str | None = None
) -> dict[str, str]:
    """One transaction: the Binary, its DocumentReference and, for a replacement, the previous
    version marked superseded. Returns the ids it created (and the one it superseded)."""
    binary_urn, document_urn = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    binary: dict[str, Any] = {
        "resourceType": "Binary",
        "contentType": "application/pdf",
        "securityContext": {"reference": f"Patient/{patient_id}"},
        "data": base64.b64encode(doc.pdf).decode("ascii"),
    }
    if "MASQUE_PS" in doc.visibility:  # the content is masked with its document
        binary["meta"] = {"security": [{"system": TRE_A07, "code": "MASQUE_PS"}]}
    entries: list[dict[str, Any]] = [
        {"fullUrl": binary_urn, "resource": binary, "request": {"method": "POST", "url": "Binary"}},
        {
            "fullUrl": document_urn,
            "resource": document_reference(config, patient_id, doc, binary_urn, replaces),
            "request": {"method": "POST", "url": "DocumentReference"},
        },
    ]
    if replaces is not None:
        previous = check(
            http.get(f"{config.fhir_base}/DocumentReference/{replaces}"),
            f"reading DocumentReference/{replaces}",
        )
        if previous.get("status") != "current":
            raise Failure(
                f"DocumentReference/{replaces} is {previous.get('status')}, not current: nothing to replace"
            )
        superseded = {k: v for k, v in previous.items() if k != "meta"}
        superseded["status"] = "superseded"
        entries.append(
            {
                "fullUrl": f"{config.fhir_base}/DocumentReference/{replaces}",
                "resource": superseded,
                "request": {
                    "method": "PUT",
                    "url": f"DocumentReference/{replaces}",
                    "ifMatch": f'W/"{previous["meta"]["versionId"]}"',
                },
            }
        )
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    result = check(http.post(config.fhir_base, json=bundle), "deposit")
    # the response's entries answer the request's, in order: Binary, DocumentReference (, the old one)
    answers = [str(e.get("response", {}).get("location", "")) for e in result.get("entry", [])]
    created = {
        "Binary": _id_in(answers[0], "Binary"),
        "DocumentReference": _id_in(answers[1], "DocumentReference"),
    }
    print(f"deposited: DocumentReference/{created['DocumentReference']} (content Binary/{created['Binary']})")
    if replaces is not None:
        print(
            f"superseded: DocumentReference/{replaces} (replaced by DocumentReference/{created['DocumentReference']})"
        )
        created["superseded"] = replaces
    return created


def _id_in(location: str, resource_type: str) -> str:
    """The id in a ``Location`` (``[base/]Type/id/_history/version``)."""
    parts = location.split("/")
    if resource_type not in parts[:-1]:
        raise Failure(f"unexpected location {location!r} for a {resource_type}")
    return parts[parts.index(resource_type) + 1]


# -- the command -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Deposit a PDF in a patient's shared record (Hygie, SMART Backend Services)."
    )
    parser.add_argument("--config", type=Path, required=True, help="the practice's JSON configuration")
    parser.add_argument("--ins", required=True, help="the patient's INS matricule (15 characters)")
    parser.add_argument("--pdf", type=Path, required=True, help="the PDF to deposit")
    parser.add_argument("--title", required=True, help="the document's title")
    parser.add_argument(
        "--type",
        dest="type_code",
        default="11488-4",
        help="LOINC type (default 11488-4, consultation report)",
    )
    parser.add_argument(
        "--class", dest="class_code", default="10", help="TRE_A03 class (default 10, compte rendu)"
    )
    parser.add_argument(
        "--date", dest="act_date", default=dt.date.today().isoformat(), help="the act's date, YYYY-MM-DD"
    )
    parser.add_argument(
        "--visibility",
        action="append",
        choices=VISIBILITY,
        default=[],
        help="hide the document from professionals (MASQUE_PS, at the patient's request), from the "
        "patient until an announcement (INVISIBLE_PATIENT), from a minor's legal representatives "
        "(INVISIBLE_REPRESENTANTS_LEGAUX); repeatable",
    )
    parser.add_argument(
        "--replaces", metavar="ID", help="id of the structure's DocumentReference this one replaces"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = Config.load(args.config)
        pdf = args.pdf.read_bytes()
        dt.date.fromisoformat(args.act_date)
    except (ConfigError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not pdf.startswith(b"%PDF-"):
        print(f"error: {args.pdf} is not a PDF", file=sys.stderr)
        return 2
    doc = Document(pdf, args.title, args.type_code, args.class_code, args.act_date, tuple(args.visibility))
    try:
        with httpx.Client(timeout=30, headers={"Accept": "application/fhir+json"}) as http:
            token = access_token(http, config)
            http.headers["Authorization"] = f"Bearer {token}"
            patient = find_patient(http, config, args.ins)
            deposit(http, config, str(patient["id"]), doc, args.replaces)
    except Failure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"error: cannot reach {config.fhir_base}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
