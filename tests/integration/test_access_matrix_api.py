"""The access matrix: actor × resource × interaction × relation, through the real FHIR API.

Every cell of the table of expected verdicts is asserted against the HTTP API (``/fhir``, real
signed tokens, the real ASGI app) on each store backend (memory, SQLite, PostgreSQL). The world is
seeded through a backend service, with real resources making the access relations
(``domain/relations.py``): a care team, a médecin traitant, a blocking consent and a grant limited
to summaries, two legal representatives of a child (one of whom she keeps her documents from) and
an aidant, an open break-glass access; SMART apps with ``patient/`` scopes launched on a patient;
backend clients bound to structures (a practice's software): one whose structure provided an
encounter and holds a grant limited to summaries, one whose structure the patient blocked, one
whose structure has no relation; professionals who work for a structure (an active
PractitionerRole), whose relations are theirs too, in searches as in reads: a doctor at the
practice the patient consulted, a doctor of her care team at the centre she blocked, a doctor at a
centre she granted her summaries only, and one she granted her reports at that same centre.

The matrix is data: :data:`READ_MATRIX` says, per actor, whether each kind of resource of their own
record (and of another patient's record, and reference data outside any record) may be read;
:data:`WRITE_MATRIX` gives the statuses of writes. Every other interaction follows from these two
tables by the rules written in :func:`read_status` and the cell functions below:

* ``Y`` allowed; ``N`` refused by the rules — an existing resource answers 404 exactly as an absent
  one (same OperationOutcome code), a search leaves the row out (totals included); ``S`` refused
  by the client's scopes — 403 whatever the id, existing or not; ``A`` no token — 401.
* search, ``_summary=count``, ``_include``/``_revinclude``, ``$everything`` and history return
  exactly the permitted rows; conditional create/update/delete never match a refused row (they
  create a new resource or delete nothing); a transaction is all or nothing.
* a refused change of a resource the actor may read is 403 (its existence is no secret to them).
  Deleting an id never used is 204 (FHIR), and PUT on a free id creates: a refused change of an
  existing resource (404) can be told apart from a free id: whether an id is taken is not hidden,
  what the resource holds is.

Each actor is one test (the world is seeded once per actor and backend); a failing test lists
every mismatching cell by its id, e.g. ``pro-no-relation-read-Observation-other``.
``markdown()`` renders the table of expected verdicts for ``docs/``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from bearer_tokens import bearer
from hygie.bootstrap import Runtime

pytestmark = pytest.mark.anyio

# -- codes --------------------------------------------------------------------------------------

MARK = "urn:hygie:access-matrix"  # identifier system of every seeded resource
LOINC = "http://loinc.org"
TRE_A03 = "https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument"
TRE_A07 = (
    "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument"
)
TRE_G15 = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

DOCTOR, PHARMACIST = "10", "21"
REPORT, SUMMARY = "10", "11"  # TRE_A03 classes: pharmacists read summaries (11), not reports (10)

# -- the world ----------------------------------------------------------------------------------

LEA, PAUL, ZOE = "lea", "paul", "zoe"  # zoe is a child: her mother represents her, an aidant helps
PATIENTS = (LEA, PAUL, ZOE)
NO_PATIENT = "nobody"  # a patient id that does not exist
AUTHOR = "Practitioner/dr-author"  # the professional who wrote the seeded documents…
CABINET = "Organization/org-cabinet"  # …but one, deposited by a practice's software in its own name
REFERENCE = (("Practitioner", "dr-author"), ("Organization", "org-chu"))  # outside any record

PRACTITIONERS = {
    "dr-author": DOCTOR,
    "dr-care": DOCTOR,  # in Léa's care team
    "dr-gp": DOCTOR,  # Léa's médecin traitant
    "ph-care": PHARMACIST,  # in Léa's care team
    "dr-blocked": DOCTOR,  # in Léa's care team, blocked by her consent
    "dr-grant": DOCTOR,  # granted by Léa's consent, summaries (class 11) only
    "dr-none": DOCTOR,  # no relation with anyone
    "dr-btg": DOCTOR,  # no relation, an open break-glass access to Léa's record
    "dr-app": DOCTOR,  # in Léa's and Paul's care teams, through a SMART app launched on Léa
    # professionals who work for a structure (a PractitionerRole): its relations are theirs too
    "dr-cabinet": DOCTOR,  # works at the practice Léa consulted: no relation of their own
    "dr-centre": DOCTOR,  # in Léa's care team, works at the centre she blocked
    "dr-partage": DOCTOR,  # works at a centre Léa granted her summaries: no relation of their own
    "dr-mixte": DOCTOR,  # granted Léa's reports, works at the centre granted her summaries
}
# practitioner → the structure they work for (an active PractitionerRole)
WORKS_AT = {
    "dr-cabinet": CABINET,
    "dr-centre": "Organization/org-blocked",
    "dr-partage": "Organization/org-partage",
    "dr-mixte": "Organization/org-partage",
}


@dataclass(frozen=True, slots=True)
class Slot:
    """A kind of resource present in every patient's record: one column of the read matrix."""

    key: str
    resource_type: str
    prefix: str = ""
    category: str | None = None
    label: str | None = None
    label_in_security_label: bool = False
    author: str = AUTHOR

    def id(self, patient: str) -> str:
        return patient if self.resource_type == "Patient" else f"{self.prefix}-{patient}"

    def ref(self, patient: str) -> str:
        return f"{self.resource_type}/{self.id(patient)}"


SLOTS = (
    Slot("Patient", "Patient"),
    Slot("Observation", "Observation", "obs"),
    Slot("report", "DocumentReference", "doc-report", REPORT),
    Slot("summary", "DocumentReference", "doc-summary", SUMMARY),
    Slot("INVISIBLE_PATIENT", "DocumentReference", "doc-invisible-patient", SUMMARY, "INVISIBLE_PATIENT"),
    Slot("MASQUE_PS", "DocumentReference", "doc-masque-ps", SUMMARY, "MASQUE_PS", True),
    Slot(
        "INVISIBLE_REPRESENTANTS_LEGAUX",
        "DocumentReference",
        "doc-invisible-representants",
        SUMMARY,
        "INVISIBLE_REPRESENTANTS_LEGAUX",
    ),
    Slot("by-structure", "DocumentReference", "doc-by-structure", REPORT, author=CABINET),
)
SLOT = {s.key: s for s in SLOTS}
OBSERVATION = SLOT["Observation"]
DERIVED_FROM = {LEA: PAUL, ZOE: PAUL, PAUL: LEA}  # obs-X.derivedFrom crosses records


def ident(value: str) -> list[dict[str, str]]:
    return [{"system": MARK, "value": value}]


def ref(reference: str) -> dict[str, str]:
    return {"reference": reference}


def observation(oid: str, patient: str, derived_from: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "identifier": ident(oid),
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}]},
        "subject": ref(f"Patient/{patient}"),
        "valueQuantity": {"value": 62, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
    }
    if derived_from:
        resource["derivedFrom"] = [ref(derived_from)]
    return resource


def document(
    did: str,
    patient: str,
    category: str | None,
    *,
    label: str | None = None,
    in_security_label: bool = False,
    author: str | None = AUTHOR,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": did,
        "identifier": ident(did),
        "status": "current",
        "type": {"coding": [{"system": LOINC, "code": "11488-4", "display": "Consult note"}]},
        "subject": ref(f"Patient/{patient}"),
        "date": "2026-01-15T10:00:00+01:00",
        "content": [{"attachment": {"contentType": "application/pdf", "url": "https://example.org/d.pdf"}}],
    }
    if category:
        resource["category"] = [{"coding": [{"system": TRE_A03, "code": category}]}]
    if author:
        resource["author"] = [ref(author)]
    if label and in_security_label:
        resource["securityLabel"] = [{"coding": [{"system": TRE_A07, "code": label}]}]
    elif label:
        resource["meta"] = {"security": [{"system": TRE_A07, "code": label}]}
    return resource


def slot_resource(slot: Slot, patient: str) -> dict[str, Any]:
    if slot.resource_type == "Patient":
        resource: dict[str, Any] = {
            "resourceType": "Patient",
            "id": patient,
            "identifier": ident(patient),
            "name": [{"family": patient.capitalize(), "given": ["Test"]}],
            "birthDate": "2015-03-02" if patient == ZOE else "1980-06-15",
        }
        if patient == LEA:
            resource["generalPractitioner"] = [ref("Practitioner/dr-gp")]  # médecin traitant
        return resource
    if slot.resource_type == "Observation":
        return observation(slot.id(patient), patient, OBSERVATION.ref(DERIVED_FROM[patient]))
    assert slot.category is not None
    return document(
        slot.id(patient),
        patient,
        slot.category,
        label=slot.label,
        in_security_label=slot.label_in_security_label,
        author=slot.author,
    )


def consent(cid: str, patient: str, provision: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "id": cid,
        "status": "active",
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
        "patient": ref(f"Patient/{patient}"),
        "provision": provision,
    }


def actor_of(reference: str) -> list[dict[str, Any]]:
    return [{"role": {"coding": [{"system": PARTICIPATION, "code": "IRCP"}]}, "reference": ref(reference)}]


def care_team(tid: str, patient: str, members: Iterable[str]) -> dict[str, Any]:
    return {
        "resourceType": "CareTeam",
        "id": tid,
        "status": "active",
        "subject": ref(f"Patient/{patient}"),
        "participant": [{"member": ref(f"Practitioner/{m}")} for m in members],
    }


def encounter(eid: str, patient: str, provider: str) -> dict[str, Any]:
    """A consultation the structure provided: its relation to the patient (no end: no expiry)."""
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": ref(f"Patient/{patient}"),
        "serviceProvider": ref(provider),
    }


def related_person(rid: str, patient: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "RelatedPerson",
        "id": rid,
        "active": True,
        "patient": ref(f"Patient/{patient}"),
        "relationship": [{"coding": [{"system": ROLE_CODE, "code": code}]}],
        "name": [{"family": "Martin", "given": [rid]}],
    }


def world() -> list[dict[str, Any]]:
    """Every seeded resource; the relations come from these, derived on write."""
    out: list[dict[str, Any]] = [
        {
            "resourceType": "Practitioner",
            "id": pid,
            "identifier": ident(pid),
            "name": [{"family": pid}],
            "qualification": [{"code": {"coding": [{"system": TRE_G15, "code": profession}]}}],
        }
        for pid, profession in PRACTITIONERS.items()
    ]
    out += [
        {"resourceType": "Organization", "id": oid, "identifier": ident(oid), "name": name}
        for oid, name in (
            ("org-chu", "CHU"),
            ("org-cabinet", "Cabinet médical"),
            ("org-blocked", "Centre bloqué"),
            ("org-none", "Centre sans relation"),
            ("org-partage", "Centre de partage"),
        )
    ]
    out += [
        {
            "resourceType": "PractitionerRole",
            "id": f"role-{pid}",
            "active": True,
            "practitioner": ref(f"Practitioner/{pid}"),
            "organization": ref(organization),
        }
        for pid, organization in WORKS_AT.items()
    ]
    out.extend(slot_resource(slot, patient) for patient in PATIENTS for slot in SLOTS)
    out += [
        care_team("ct-lea", LEA, ["dr-care", "ph-care", "dr-blocked", "dr-app", "dr-centre"]),
        care_team("ct-paul", PAUL, ["dr-app"]),
        consent("consent-lea-block", LEA, {"type": "deny", "actor": actor_of("Practitioner/dr-blocked")}),
        consent(
            "consent-lea-grant",
            LEA,
            {
                "type": "permit",
                "actor": actor_of("Practitioner/dr-grant"),
                "code": [{"coding": [{"system": TRE_A03, "code": SUMMARY}]}],
            },
        ),
        related_person("rp-mother", ZOE, "MTH"),  # legal representative
        related_person("rp-father", ZOE, "FTH"),  # legal representative…
        # …from whom Zoé keeps her documents (the adolescent's confidential mode)
        consent(
            "consent-zoe-confidential", ZOE, {"type": "deny", "actor": actor_of("RelatedPerson/rp-father")}
        ),
        related_person("rp-aidant", ZOE, "CAREGIVER"),  # aidant
        # the practice Léa consulted, which she also granted her summaries
        encounter("enc-lea-cabinet", LEA, CABINET),
        consent(
            "consent-lea-grant-cabinet",
            LEA,
            {
                "type": "permit",
                "actor": actor_of(CABINET),
                "code": [{"coding": [{"system": TRE_A03, "code": SUMMARY}]}],
            },
        ),
        # a centre Léa consulted, then blocked
        encounter("enc-lea-blocked", LEA, "Organization/org-blocked"),
        consent(
            "consent-lea-block-centre", LEA, {"type": "deny", "actor": actor_of("Organization/org-blocked")}
        ),
        # a centre Léa granted her summaries only (no encounter), and a doctor she granted her reports
        consent(
            "consent-lea-grant-partage",
            LEA,
            {
                "type": "permit",
                "actor": actor_of("Organization/org-partage"),
                "code": [{"coding": [{"system": TRE_A03, "code": SUMMARY}]}],
            },
        ),
        consent(
            "consent-lea-grant-mixte",
            LEA,
            {
                "type": "permit",
                "actor": actor_of("Practitioner/dr-mixte"),
                "code": [{"coding": [{"system": TRE_A03, "code": REPORT}]}],
            },
        ),
    ]
    return out


# -- the actors ---------------------------------------------------------------------------------

PORTAL = "hygie-portal"  # the first-party session: no app scopes, the rules alone apply


@dataclass(frozen=True, slots=True)
class Actor:
    name: str
    kind: str | None  # token kind (citizen, professional, system); None: no token at all
    fhir_user: str | None = None
    own: str = LEA  # whose record is "own" for this actor
    client_id: str = PORTAL
    scope: str = "openid fhirUser"
    launch: str | None = None
    break_glass: bool = False
    only_types: frozenset[str] | None = None  # the only types its scopes grant (None: every type)
    organization: str | None = None  # the structure a backend client is bound to

    @property
    def other(self) -> str:
        return PAUL

    @property
    def agent(self) -> str:
        """Who the audit trail names."""
        return self.fhir_user or self.client_id


ACTORS = (
    Actor("patient", "citizen", "Patient/lea"),
    Actor("representative", "citizen", "RelatedPerson/rp-mother", own=ZOE),
    Actor("representative-confidential", "citizen", "RelatedPerson/rp-father", own=ZOE),
    Actor("aidant", "citizen", "RelatedPerson/rp-aidant", own=ZOE),
    Actor("pro-care-team", "professional", "Practitioner/dr-care"),
    Actor("pro-medecin-traitant", "professional", "Practitioner/dr-gp"),
    Actor("pharmacist-care-team", "professional", "Practitioner/ph-care"),
    Actor("pro-grant-summaries", "professional", "Practitioner/dr-grant"),
    Actor("pro-blocked", "professional", "Practitioner/dr-blocked"),
    Actor("pro-no-relation", "professional", "Practitioner/dr-none"),
    Actor("break-glass", "professional", "Practitioner/dr-btg", break_glass=True),
    Actor("pro-structure-encounter", "professional", "Practitioner/dr-cabinet"),
    Actor("pro-structure-blocked", "professional", "Practitioner/dr-centre"),
    Actor("pro-structure-grant-summaries", "professional", "Practitioner/dr-partage"),
    Actor("pro-grant-reports-structure-summaries", "professional", "Practitioner/dr-mixte"),
    Actor(
        "app-patient",
        "citizen",
        "Patient/lea",
        client_id="carnet-app",
        scope="openid fhirUser launch/patient patient/*.cruds",
        launch=LEA,
    ),
    Actor(
        "app-pro",
        "professional",
        "Practitioner/dr-app",
        client_id="cabinet-app",
        scope="openid fhirUser launch patient/*.rs",
        launch=LEA,
    ),
    Actor(
        "app-pro-no-relation",
        "professional",
        "Practitioner/dr-none",
        client_id="cabinet-app",
        scope="openid fhirUser launch patient/*.rs",
        launch=LEA,
    ),
    Actor(
        "app-representative",
        "citizen",
        "RelatedPerson/rp-mother",
        own=ZOE,
        client_id="carnet-app",
        scope="openid fhirUser launch/patient patient/*.cruds",
        launch=ZOE,
    ),
    Actor("backend", "system", client_id="hygie-tests", scope="system/*.cruds"),
    Actor(
        "backend-observations",
        "system",
        client_id="labo-backend",
        scope="system/Observation.rs",
        only_types=frozenset({"Observation"}),
    ),
    Actor("structure", "system", client_id="logiciel-cabinet", scope="system/*.cruds", organization=CABINET),
    Actor(
        "structure-blocked",
        "system",
        client_id="logiciel-centre",
        scope="system/*.cruds",
        organization="Organization/org-blocked",
    ),
    Actor(
        "structure-no-relation",
        "system",
        client_id="logiciel-autre",
        scope="system/*.cruds",
        organization="Organization/org-none",
    ),
    Actor("anonymous", None, client_id="-"),
)
ACTOR = {a.name: a for a in ACTORS}

# -- the table of expected verdicts --------------------------------------------------------------

# Reading the own record (one column per kind of resource), another patient's record (every kind)
# and reference data outside any record. Y allowed, N refused by the rules, A no token.
# A type outside an app's or backend's scopes is S (403) whatever this table says.
READ_MATRIX = """
actor                       Patient Observation report summary INVISIBLE_PATIENT MASQUE_PS INVISIBLE_REPRESENTANTS_LEGAUX by-structure other reference
patient                     Y       Y           Y      Y       N                 Y         Y                              Y            N     Y
representative              Y       Y           Y      Y       N                 Y         N                              Y            N     Y
representative-confidential Y       Y           N      N       N                 N         N                              N            N     Y
aidant                      Y       Y           Y      Y       N                 Y         Y                              Y            N     Y
pro-care-team               Y       Y           Y      Y       Y                 N         Y                              Y            N     Y
pro-medecin-traitant        Y       Y           Y      Y       Y                 Y         Y                              Y            N     Y
pharmacist-care-team        Y       Y           N      Y       Y                 N         Y                              N            N     Y
pro-grant-summaries         Y       Y           N      Y       Y                 N         Y                              N            N     Y
pro-blocked                 N       N           N      N       N                 N         N                              N            N     Y
pro-no-relation             N       N           N      N       N                 N         N                              N            N     Y
break-glass                 Y       Y           Y      Y       Y                 N         Y                              Y            N     Y
pro-structure-encounter     Y       Y           Y      Y       Y                 N         Y                              Y            N     Y
pro-structure-blocked       N       N           N      N       N                 N         N                              N            N     Y
pro-structure-grant-summaries Y     Y           N      Y       Y                 N         Y                              N            N     Y
pro-grant-reports-structure-summaries Y Y       Y      Y       Y                 N         Y                              Y            N     Y
app-patient                 Y       Y           Y      Y       N                 Y         Y                              Y            N     Y
app-pro                     Y       Y           Y      Y       Y                 N         Y                              Y            N     Y
app-pro-no-relation         N       N           N      N       N                 N         N                              N            N     Y
app-representative          Y       Y           Y      Y       N                 Y         N                              Y            N     Y
backend                     Y       Y           Y      Y       Y                 Y         Y                              Y            Y     Y
backend-observations        Y       Y           Y      Y       Y                 Y         Y                              Y            Y     Y
structure                   Y       Y           N      Y       Y                 N         Y                              Y            N     Y
structure-blocked           N       N           N      N       N                 N         N                              N            N     Y
structure-no-relation       N       N           N      N       N                 N         N                              N            N     Y
anonymous                   A       A           A      A       A                 A         A                              A            A     A
"""

# HTTP statuses of writes. "own"/"other": an Observation in the own / another record; "pro-entry":
# a document of the own record written by a professional; "absent": POST for a patient that does
# not exist, PUT of a new id in the own record (an update-as-create), DELETE of an id never used.
WRITE_MATRIX = """
actor                       POST-own POST-other POST-absent PUT-own PUT-other PUT-pro-entry PUT-absent DELETE-own DELETE-other DELETE-pro-entry DELETE-absent
patient                     201      403        403         200     404       403           201        204        404          403              204
representative              201      403        403         200     404       403           201        204        404          403              204
representative-confidential 201      403        403         200     404       404           201        204        404          404              204
aidant                      201      403        403         200     404       403           201        204        404          403              204
pro-care-team               201      403        403         200     404       200           201        204        404          204              204
pro-medecin-traitant        201      403        403         200     404       200           201        204        404          204              204
pharmacist-care-team        201      403        403         200     404       200           201        204        404          204              204
pro-grant-summaries         201      403        403         200     404       200           201        204        404          204              204
pro-blocked                 403      403        403         404     404       404           403        404        404          404              204
pro-no-relation             403      403        403         404     404       404           403        404        404          404              204
break-glass                 201      403        403         200     404       200           201        204        404          204              204
pro-structure-encounter     201      403        403         200     404       200           201        204        404          204              204
pro-structure-blocked       403      403        403         404     404       404           403        404        404          404              204
pro-structure-grant-summaries 201    403        403         200     404       200           201        204        404          204              204
pro-grant-reports-structure-summaries 201 403   403         200     404       200           201        204        404          204              204
app-patient                 201      403        403         200     404       403           201        204        404          403              204
app-pro                     403      403        403         403     403       403           403        403        403          403              403
app-pro-no-relation         403      403        403         403     403       403           403        403        403          403              403
app-representative          201      403        403         200     404       403           201        204        404          403              204
backend                     201      201        201         200     200       200           201        204        204          204              204
backend-observations        403      403        403         403     403       403           403        403        403          403              403
structure                   201      403        403         200     404       403           201        204        404          403              204
structure-blocked           403      403        403         404     404       404           403        404        404          404              204
structure-no-relation       403      403        403         404     404       404           403        404        404          404              204
anonymous                   401      401        401         401     401       401           401        401        401          401              401
"""


# Cells where the implementation is known to differ from the rules, with the reason (none now):
# the test of that actor is then an expected failure once every other cell passed, and a gap
# that closes fails the test so that it is removed from here.
KNOWN_GAPS: dict[str, str] = {}


def parse(table: str) -> dict[str, dict[str, str]]:
    lines = [line.split() for line in table.strip().splitlines()]
    header = lines[0][1:]
    rows = {line[0]: dict(zip(header, line[1:], strict=True)) for line in lines[1:]}
    assert set(rows) == set(ACTOR), "every actor has one row"
    return rows


READS = parse(READ_MATRIX)
WRITES = parse(WRITE_MATRIX)


def verdict(actor: Actor, resource_type: str, column: str) -> str:
    """Y / N / S / A for reading ``resource_type`` in the given column of the read matrix."""
    value = READS[actor.name][column]
    if value in ("Y", "N") and actor.only_types is not None and resource_type not in actor.only_types:
        return "S"
    return value


def slot_verdict(actor: Actor, slot: Slot, patient: str) -> str:
    return verdict(actor, slot.resource_type, slot.key if patient == actor.own else "other")


def visible(actor: Actor, slot: Slot, patient: str) -> bool:
    return slot_verdict(actor, slot, patient) == "Y"


def read_status(value: str) -> int:
    """Read, vread, instance history, $everything, a transaction's GET entry."""
    return {"Y": 200, "N": 404, "S": 403, "A": 401}[value]


def absent_status(value: str) -> int:
    """The same interactions on an id that does not exist: as refused, 404."""
    return {"Y": 404, "N": 404, "S": 403, "A": 401}[value]


def markdown() -> str:
    """The table of expected verdicts (with scope refusals applied), for ``docs/``."""
    keys = [s.key for s in SLOTS]
    head = ["actor", *[f"own {k}" for k in keys], "other patient", "reference data"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for actor in ACTORS:
        cells = [slot_verdict(actor, s, actor.own) for s in SLOTS]
        other = {slot_verdict(actor, s, actor.other) for s in SLOTS}
        refs = {verdict(actor, t, "reference") for t, _ in REFERENCE}
        out.append(
            "| " + " | ".join([actor.name, *cells, "/".join(sorted(other)), "/".join(sorted(refs))]) + " |"
        )
    wkeys = list(next(iter(WRITES.values())))
    out += ["", "| actor | " + " | ".join(wkeys) + " |", "|" + "---|" * (len(wkeys) + 1)]
    out.extend("| " + " | ".join([a.name, *(WRITES[a.name][k] for k in wkeys)]) + " |" for a in ACTORS)
    return "\n".join(out)


# -- running the cells ---------------------------------------------------------------------------


@dataclass
class Run:
    """One actor's pass over the matrix: sends requests as the actor, collects mismatches."""

    actor: Actor
    client: httpx.AsyncClient
    runtime: Runtime
    auth: dict[str, str]
    mismatches: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)  # known gaps still open
    closed: list[str] = field(default_factory=list)  # known gaps that now pass
    cells: int = 0
    serial: int = 0

    async def send(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        request = self.client.build_request(
            method, url, json=json, params=params, headers={**self.auth, **(headers or {})}
        )
        if not self.auth:  # anonymous: no Authorization header at all
            del request.headers["Authorization"]
        return await self.client.send(request)

    async def backend(self, method: str, url: str, json: Any = None) -> httpx.Response:
        """The operator's view (the client's default token: a backend with system/*.cruds)."""
        return await self.client.request(method, url, json=json)

    def check(self, cell: str, expected: object, actual: object) -> None:
        self.cells += 1
        name = f"{self.actor.name}-{cell}"
        if name in KNOWN_GAPS:
            (self.gaps if expected != actual else self.closed).append(name)
        elif expected != actual:
            self.mismatches.append(f"{name}: expected {expected!r}, got {actual!r}")

    def fresh(self, what: str) -> str:
        self.serial += 1
        return f"{what}-{self.actor.name}-{self.serial}"

    async def seed(self, resource: dict[str, Any]) -> None:
        r = await self.backend("PUT", f"/fhir/{resource['resourceType']}/{resource['id']}", resource)
        assert r.status_code in (200, 201), r.text


def ids(bundle: dict[str, Any], mode: str | None = None) -> set[str]:
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if "resource" in e
        and e["resource"].get("resourceType") != "OperationOutcome"
        and (mode is None or e.get("search", {}).get("mode") == mode)
    }


UNIVERSE = {slot.ref(p) for p in PATIENTS for slot in SLOTS}


def outcome_code(r: httpx.Response) -> str | None:
    try:
        body = r.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return None
    return str(body["issue"][0]["code"])


async def reads(run: Run) -> None:
    """read, vread, instance history; the absent id answers like the refused one."""
    actor = run.actor
    for patient, relation in ((actor.own, "own"), (actor.other, "other")):
        for slot in SLOTS:
            value = slot_verdict(actor, slot, patient)
            where = f"{slot.key}-{relation}"
            r = await run.send("GET", f"/fhir/{slot.ref(patient)}")
            run.check(f"read-{where}", read_status(value), r.status_code)
            if value == "Y":
                run.check(f"read-{where}-id", slot.id(patient), r.json().get("id"))
            if value == "N":  # refused looks like absent: same status, same issue code
                run.check(f"read-{where}-outcome", "not-found", outcome_code(r))
            r = await run.send("GET", f"/fhir/{slot.ref(patient)}/_history/1")
            run.check(f"vread-{where}", read_status(value), r.status_code)
            r = await run.send("GET", f"/fhir/{slot.ref(patient)}/_history")
            run.check(f"history-{where}", read_status(value), r.status_code)
            if value == "Y":
                run.check(f"history-{where}-entries", {slot.ref(patient)}, ids(r.json()))
    for rtype, rid in REFERENCE:
        value = verdict(actor, rtype, "reference")
        r = await run.send("GET", f"/fhir/{rtype}/{rid}")
        run.check(f"read-{rtype}-reference", read_status(value), r.status_code)
    for rtype in ("Patient", "Observation", "DocumentReference", "Practitioner"):
        value = verdict(actor, rtype, "reference" if rtype == "Practitioner" else "Observation")
        r = await run.send("GET", f"/fhir/{rtype}/no-such-{rtype.lower()}")
        run.check(f"read-{rtype}-absent", absent_status(value), r.status_code)
        if r.status_code == 404:
            run.check(f"read-{rtype}-absent-outcome", "not-found", outcome_code(r))
        r = await run.send("GET", f"/fhir/{rtype}/no-such-{rtype.lower()}/_history")
        run.check(f"history-{rtype}-absent", absent_status(value), r.status_code)


def search_status(value: str) -> int:
    return {"Y": 200, "N": 200, "S": 403, "A": 401}[value]


async def searches(run: Run) -> None:
    """Rows present or absent, and totals that do not count refused rows."""
    actor = run.actor
    for patient, relation in ((actor.own, "own"), (actor.other, "other")):
        for slot in SLOTS:
            value = slot_verdict(actor, slot, patient)
            where = f"{slot.key}-{relation}"
            expected = {slot.ref(patient)} if value == "Y" else set()
            r = await run.send("GET", f"/fhir/{slot.resource_type}", params={"_id": slot.id(patient)})
            run.check(f"search-{where}", search_status(value), r.status_code)
            if r.status_code == 200:
                bundle = r.json()
                run.check(f"search-{where}-rows", expected, ids(bundle))
                run.check(f"search-{where}-total", len(expected), bundle.get("total", len(expected)))
            r = await run.send(
                "GET", f"/fhir/{slot.resource_type}", params={"_id": slot.id(patient), "_summary": "count"}
            )
            run.check(f"search-count-{where}", search_status(value), r.status_code)
            if r.status_code == 200:
                run.check(f"search-count-{where}-total", len(expected), r.json().get("total"))
        # by patient: exactly the permitted rows of the record, and a total that agrees
        for rtype, param in (("Observation", "patient"), ("DocumentReference", "patient")):
            slots = [s for s in SLOTS if s.resource_type == rtype]
            value = verdict(actor, rtype, "Observation")
            expected = {s.ref(patient) for s in slots if visible(actor, s, patient)}
            where = f"{rtype}-by-patient-{relation}"
            r = await run.send("GET", f"/fhir/{rtype}", params={param: patient, "_count": "100"})
            run.check(f"search-{where}", search_status(value), r.status_code)
            if r.status_code == 200:
                bundle = r.json()
                run.check(f"search-{where}-rows", expected, ids(bundle) & UNIVERSE)
                run.check(f"search-{where}-total", len(expected), bundle.get("total", len(expected)))
            r = await run.send("GET", f"/fhir/{rtype}", params={param: patient, "_summary": "count"})
            if r.status_code == 200:
                run.check(f"search-count-{where}-total", len(expected), r.json().get("total"))
    # whole types: every record at once
    for rtype in ("Patient", "Observation", "DocumentReference"):
        value = verdict(actor, rtype, "Observation")
        expected = {
            s.ref(p) for p in PATIENTS for s in SLOTS if s.resource_type == rtype and visible(actor, s, p)
        }
        r = await run.send("GET", f"/fhir/{rtype}", params={"_count": "200"})
        run.check(f"search-{rtype}-all", search_status(value), r.status_code)
        if r.status_code == 200:
            run.check(f"search-{rtype}-all-rows", expected, ids(r.json()) & UNIVERSE)
        r = await run.send(
            "GET", f"/fhir/{rtype}", params={"_summary": "count", "_security": "INVISIBLE_PATIENT"}
        )
        if r.status_code == 200:
            labelled = {x for x in expected if "invisible-patient" in x}
            run.check(f"search-count-{rtype}-labelled-all", len(labelled), r.json().get("total"))
        # the type's history mixes every record: refused versions are left out
        r = await run.send("GET", f"/fhir/{rtype}/_history", params={"_count": "200"})
        run.check(f"history-{rtype}-type", search_status(value), r.status_code)
        if r.status_code == 200:
            run.check(f"history-{rtype}-type-rows", expected, ids(r.json()) & UNIVERSE)


async def includes(run: Run) -> None:
    """_include / _revinclude and $everything never carry a refused row."""
    actor = run.actor
    docs = [s for s in SLOTS if s.resource_type == "DocumentReference"]
    # reference data → every record: the author's documents, where the actor may read them
    value = verdict(actor, "Practitioner", "reference")
    r = await run.send(
        "GET",
        "/fhir/Practitioner",
        params={"_id": "dr-author", "_revinclude": "DocumentReference:author"},
    )
    run.check("revinclude-DocumentReference-from-reference", search_status(value), r.status_code)
    if r.status_code == 200:
        expected = {s.ref(p) for p in PATIENTS for s in docs if s.author == AUTHOR and visible(actor, s, p)}
        run.check("revinclude-DocumentReference-from-reference-rows", expected, ids(r.json(), "include"))
    for patient, relation in ((actor.own, "own"), (actor.other, "other")):
        patient_slot = SLOT["Patient"]
        value = slot_verdict(actor, patient_slot, patient)
        # a Patient with its record revincluded
        r = await run.send(
            "GET",
            "/fhir/Patient",
            params={
                "_id": patient,
                "_revinclude": "Observation:subject",
                "_revinclude:iterate": "DocumentReference:subject",
            },
        )
        run.check(f"revinclude-record-{relation}", search_status(value), r.status_code)
        if r.status_code == 200:
            bundle = r.json()
            run.check(
                f"revinclude-record-{relation}-match",
                {f"Patient/{patient}"} if value == "Y" else set(),
                ids(bundle, "match"),
            )
            expected = (
                {s.ref(patient) for s in SLOTS if s.resource_type != "Patient" and visible(actor, s, patient)}
                if value == "Y"
                else set()
            )
            run.check(f"revinclude-record-{relation}-rows", expected, ids(bundle, "include") & UNIVERSE)
        # an Observation including another record's Observation (derivedFrom crosses records)
        value = slot_verdict(actor, OBSERVATION, patient)
        r = await run.send(
            "GET",
            "/fhir/Observation",
            params={"_id": OBSERVATION.id(patient), "_include": "Observation:derived-from"},
        )
        run.check(f"include-Observation-derived-from-{relation}", search_status(value), r.status_code)
        if r.status_code == 200:
            target = DERIVED_FROM[patient]
            expected = (
                {OBSERVATION.ref(target)} if value == "Y" and visible(actor, OBSERVATION, target) else set()
            )
            run.check(f"include-Observation-derived-from-{relation}-rows", expected, ids(r.json(), "include"))
        # $everything: the record as the actor may see it, and no other record's rows
        value = slot_verdict(actor, patient_slot, patient)
        r = await run.send("GET", f"/fhir/Patient/{patient}/$everything")
        run.check(f"everything-{relation}", read_status(value), r.status_code)
        if value == "N":
            run.check(f"everything-{relation}-outcome", "not-found", outcome_code(r))
        if r.status_code == 200:
            expected = {s.ref(patient) for s in SLOTS if visible(actor, s, patient)}
            target = DERIVED_FROM[patient]
            if visible(actor, OBSERVATION, patient) and visible(actor, OBSERVATION, target):
                expected.add(OBSERVATION.ref(target))  # referenced from the record
            run.check(f"everything-{relation}-rows", expected, ids(r.json()) & UNIVERSE)
    r = await run.send("GET", f"/fhir/Patient/{NO_PATIENT}/$everything")
    run.check("everything-absent", absent_status(verdict(actor, "Patient", "Patient")), r.status_code)


async def bundles(run: Run) -> None:
    """A transaction's entries are decided one by one; it fails whole when one is refused."""
    actor = run.actor
    for patient, relation in ((actor.own, "own"), (actor.other, "other"), (NO_PATIENT, "absent")):
        value = slot_verdict(actor, OBSERVATION, patient) if relation != "absent" else "Y"
        url = OBSERVATION.ref(patient) if relation != "absent" else "Observation/no-such-observation"
        get = {"request": {"method": "GET", "url": url}}
        r = await run.send(
            "POST", "/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [get]}
        )
        expected = (
            read_status(value)
            if relation != "absent"
            else absent_status(verdict(actor, "Observation", "Observation"))
        )
        run.check(f"transaction-GET-Observation-{relation}", expected, r.status_code)
        if r.status_code == 200:
            run.check(
                f"transaction-GET-Observation-{relation}-entry",
                "200",
                r.json()["entry"][0]["response"]["status"],
            )
        r = await run.send("POST", "/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": [get]})
        unauthenticated = verdict(actor, "Observation", "Observation") == "A"
        run.check(f"batch-GET-Observation-{relation}", 401 if unauthenticated else 200, r.status_code)
        if r.status_code == 200:
            run.check(
                f"batch-GET-Observation-{relation}-entry",
                str(expected),
                r.json()["entry"][0]["response"]["status"],
            )
    for patient, relation in ((actor.own, "own"), (actor.other, "other")):
        marker = run.fresh("tx")
        entry = {
            "fullUrl": "urn:uuid:4f1c2d9e-0000-4000-8000-000000000001",
            "resource": {k: v for k, v in observation(marker, patient).items() if k != "id"},
            "request": {"method": "POST", "url": "Observation"},
        }
        r = await run.send(
            "POST", "/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
        )
        expected = int(WRITES[actor.name][f"POST-{relation}"])
        run.check(
            f"transaction-POST-Observation-{relation}", 200 if expected == 201 else expected, r.status_code
        )
        if r.status_code == 200:
            run.check(
                f"transaction-POST-Observation-{relation}-entry",
                "201",
                r.json()["entry"][0]["response"]["status"],
            )
    # all or nothing: a permitted creation rolls back with a refused read
    marker = run.fresh("tx-rollback")
    entries = [
        {
            "resource": {k: v for k, v in observation(marker, actor.own).items() if k != "id"},
            "request": {"method": "POST", "url": "Observation"},
        },
        {"request": {"method": "GET", "url": OBSERVATION.ref(actor.other)}},
    ]
    r = await run.send(
        "POST", "/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": entries}
    )
    post = int(WRITES[actor.name]["POST-own"])
    other = slot_verdict(actor, OBSERVATION, actor.other)
    expected = post if post != 201 else read_status(other)
    run.check("transaction-POST-own-GET-other", expected, r.status_code)
    found = await run.backend("GET", f"/fhir/Observation?identifier={MARK}|{marker}&_summary=count")
    run.check("transaction-POST-own-GET-other-kept", 1 if expected == 200 else 0, found.json()["total"])


async def writes(run: Run) -> None:
    actor = run.actor
    row = WRITES[actor.name]
    records = {"own": actor.own, "other": actor.other, "absent": NO_PATIENT}
    # create
    for relation, patient in records.items():
        body = {k: v for k, v in observation(run.fresh("created"), patient).items() if k != "id"}
        r = await run.send("POST", "/fhir/Observation", json=body)
        run.check(f"create-Observation-{relation}", int(row[f"POST-{relation}"]), r.status_code)
    # update and delete of existing entries (fresh ones, seeded by the backend)
    for what in ("own", "other", "pro-entry"):
        for method in ("PUT", "DELETE"):
            rid = run.fresh(what)
            if what == "pro-entry":
                resource = document(rid, actor.own, SUMMARY)
            else:
                resource = observation(rid, records[what])
            await run.seed(resource)
            url = f"/fhir/{resource['resourceType']}/{rid}"
            changed = {**resource, "status": "amended" if what != "pro-entry" else "superseded"}
            r = await run.send(method, url, json=changed if method == "PUT" else None)
            expected = int(row[f"{method}-{what}"])
            run.check(
                f"{'update' if method == 'PUT' else 'delete'}-{resource['resourceType']}-{what}",
                expected,
                r.status_code,
            )
            if expected >= 400:
                run.check(
                    f"{method}-{what}-outcome",
                    "forbidden" if expected == 403 else ("not-found" if expected == 404 else "login"),
                    outcome_code(r),
                )
                after = await run.backend("GET", url)
                run.check(
                    f"{method}-{what}-unchanged",
                    (200, "1"),
                    (after.status_code, after.json()["meta"]["versionId"]),
                )
    # update-as-create of a new id, delete of an id never used
    rid = run.fresh("new")
    r = await run.send("PUT", f"/fhir/Observation/{rid}", json=observation(rid, actor.own))
    run.check("update-Observation-absent", int(row["PUT-absent"]), r.status_code)
    r = await run.send("DELETE", "/fhir/Observation/no-such-observation")
    run.check("delete-Observation-absent", int(row["DELETE-absent"]), r.status_code)


async def conditionals(run: Run) -> None:
    """Conditional matches see only what the actor may see: no leak through them."""
    actor = run.actor
    row = WRITES[actor.name]
    post_own = int(row["POST-own"])
    hidden = [
        (OBSERVATION, actor.other, "other"),
        (SLOT["INVISIBLE_PATIENT"], actor.own, "own"),
        (SLOT["MASQUE_PS"], actor.own, "own"),
        (SLOT["report"], actor.own, "own"),
    ]
    for slot, patient, relation in hidden:
        value = slot_verdict(actor, slot, patient)
        target = slot.id(patient)
        where = f"{slot.key}-{relation}"
        if slot.resource_type == "Observation":
            body = observation(run.fresh("cc"), actor.own)
        else:
            # creating it is a plain creation in the own record: a patient's own note (no
            # author: theirs), or a professional's report with the metadata the DMP requires
            professional = actor.kind == "professional" or actor.organization is not None
            author = (actor.fhir_user or actor.organization) if professional else None
            body = document(run.fresh("cc"), actor.own, "10" if professional else None, author=author)
        del body["id"]
        r = await run.send(
            "POST",
            f"/fhir/{slot.resource_type}",
            json=body,
            headers={"If-None-Exist": f"identifier={MARK}|{target}"},
        )
        # a conditional create is a create first (refused as POST is); then a match answers 200
        expected = post_own if post_own in (401, 403) else (200 if value == "Y" else 201)
        run.check(f"conditional-create-{where}", expected, r.status_code)
        if r.status_code in (200, 201):
            run.check(f"conditional-create-{where}-id", r.status_code == 200, r.json()["id"] == target)
    # conditional update and delete whose criteria match a resource of another record
    for method in ("PUT", "DELETE"):
        rid = run.fresh("cond")
        await run.seed(observation(rid, actor.other))
        value = slot_verdict(actor, OBSERVATION, actor.other)
        criteria = {"identifier": f"{MARK}|{rid}"}
        if method == "PUT":
            body = {**observation(run.fresh("cond-new"), actor.own)}
            del body["id"]
            r = await run.send("PUT", "/fhir/Observation", json=body, params=criteria)
            # a visible match is updated (moved to the own record); none: a creation
            expected = int(row["PUT-other"]) if value == "Y" else post_own
            run.check("conditional-update-Observation-other", expected, r.status_code)
            if r.status_code in (200, 201):
                run.check(
                    "conditional-update-Observation-other-id", r.status_code == 200, r.json()["id"] == rid
                )
        else:
            r = await run.send("DELETE", "/fhir/Observation", params=criteria)
            run.check("conditional-delete-Observation-other", int(row["DELETE-absent"]), r.status_code)
        after = await run.backend("GET", f"/fhir/Observation/{rid}")
        touched = value == "Y" and r.status_code < 300
        run.check(
            f"conditional-{method}-Observation-other-target",
            (410 if method == "DELETE" else 200) if touched else 200,
            after.status_code,
        )
        if not touched:
            run.check(
                f"conditional-{method}-Observation-other-version", "1", after.json()["meta"]["versionId"]
            )


async def audit(run: Run) -> None:
    """Granted and refused reads both leave a record in the patient's partition."""
    actor = run.actor
    for patient, relation in ((actor.own, "own"), (actor.other, "other")):
        value = slot_verdict(actor, OBSERVATION, patient)
        if value not in ("Y", "N"):
            continue
        page = await run.runtime.service.audit.list_for_patient(patient, count=10_000)
        outcomes = set()
        purposes = set()
        for record in page.records:
            event = record.entry.event()
            what = {e.get("what", {}).get("reference") for e in event.get("entity", [])}
            subtype = event["subtype"][0]["code"]
            if record.entry.agent == actor.agent and OBSERVATION.ref(patient) in what and subtype == "read":
                outcomes.add(record.entry.outcome)
                purposes.update((record.entry.purpose or "").split(","))
        run.check(f"audit-read-Observation-{relation}", {"0" if value == "Y" else "4"}, outcomes)
        if actor.break_glass and value == "Y":
            run.check(f"audit-read-Observation-{relation}-break-glass", True, "BTG" in purposes)


async def seed_world(client: httpx.AsyncClient, runtime: Runtime, actor: Actor) -> dict[str, str]:
    entries = [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in world()
    ]
    r = await client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": entries})
    assert r.status_code == 200, r.text
    if actor.break_glass:
        assert runtime.break_glass is not None and actor.fhir_user is not None
        await runtime.break_glass.open(
            practitioner=actor.fhir_user,
            organization=None,
            patient=actor.own,
            reason="URGENCE_VITALE",
            justification="Patient inconscient aux urgences",
            emergency_refused=False,
            notify=None,
        )
    if actor.kind is None:
        return {}
    return await bearer(
        runtime,
        kind=actor.kind,
        scope=actor.scope,
        fhir_user=actor.fhir_user,
        patient=actor.launch,
        client_id=actor.client_id,
        organization=actor.organization,
    )


@pytest.mark.parametrize("actor", ACTORS, ids=[a.name for a in ACTORS])
async def test_access_matrix(actor: Actor, client: httpx.AsyncClient, runtime: Runtime) -> None:
    auth = await seed_world(client, runtime, actor)
    run = Run(actor, client, runtime, auth)
    await reads(run)
    await searches(run)
    await includes(run)
    await audit(run)
    await bundles(run)
    await writes(run)
    await conditionals(run)
    assert run.cells > 100
    if run.mismatches:
        pytest.fail(
            f"{len(run.mismatches)} of {run.cells} cells differ:\n" + "\n".join(run.mismatches), pytrace=False
        )
    if run.closed:
        pytest.fail("known gaps now pass, remove them from KNOWN_GAPS:\n" + "\n".join(run.closed))
    if run.gaps:
        pytest.xfail("; ".join(sorted({KNOWN_GAPS[g] for g in run.gaps})))


async def test_anonymous_requests_need_a_token(client: httpx.AsyncClient, runtime: Runtime) -> None:
    """No header, an empty one, a malformed token, another scheme: 401; the capability statement is public."""
    run = Run(ACTOR["anonymous"], client, runtime, {})
    r = await run.send("GET", "/fhir/metadata")
    assert r.status_code == 200
    for header in ("", "Bearer", "Bearer not-a-token", "Basic dXNlcjpwYXNz"):
        r = await client.get("/fhir/Patient", headers={"Authorization": header})
        assert r.status_code == 401, header
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert outcome_code(r) == "login"


async def test_the_tables_cover_every_actor_and_column() -> None:
    assert list(next(iter(READS.values()))) == [*SLOT, "other", "reference"]
    assert all(set(row.values()) <= {"Y", "N", "A"} for row in READS.values())
    assert all(set(row.values()) <= {"200", "201", "204", "401", "403", "404"} for row in WRITES.values())
    table = markdown()
    assert all(f"| {a.name} |" in table for a in ACTORS)
