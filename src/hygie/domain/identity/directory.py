"""Load the national health-professional directory (RPPS open extraction, ANS FHIR examples) as FHIR.

**RPPS open extraction.** The ANS publishes ``PS_LibreAcces_Personne_activite``: one line per
professional *activity* (a professional working in two structures has two lines), ``|``-separated,
52 named columns each followed by ``|`` (so 53 fields, the last one empty), with the header
:data:`PS_LIBREACCES_HEADER` first. :func:`parse_rpps_extract` turns lines into
:class:`DirectoryRow` values; a malformed line is reported as a :class:`RowProblem` (line number and
reason, in French) and skipped, never fatal. :func:`rows_to_fhir` turns rows into FR Core resources:

* one ``Practitioner`` per professional (id ``pra-<RPPS>``, or ``pra-adeli-<ADELI>``): IdNat_PS and
  RPPS (or ADELI) identifiers, exercise name, TRE_G15 profession (+ TRE_R09 category) and TRE_R38
  ordinal specialty as qualifications;
* one ``Organization`` per structure (id ``org-<FINESS site>``, else ``org-<SIRET>``, else
  ``org-<technical id>``): IdNat_Struct, FINESS (``FINEG`` site, ``FINEJ`` legal entity) and SIRET
  identifiers, TRE_R02 sector, phone and e-mail, address with the INSEE commune code;
* one ``PractitionerRole`` per professional and structure (``prr-<RPPS>-<structure key>``): TRE_R23
  practice mode and TRE_G15 profession codes, TRE_R38 specialties, structure phone and e-mail. An
  e-mail on an ``mssante.fr`` domain is typed as an MSSanté mailbox (*design note*: the extraction
  does not say which addresses are MSSanté ones).

Numbers with a wrong key are reported and not loaded: a row whose RPPS fails Luhn is skipped; a FINESS
or SIRET that fails is dropped from its structure (which keeps its other identifiers).

**ANS examples.** :func:`load_ans_examples` reads the official FHIR examples of the Annuaire Santé
IG (Practitioner, PractitionerRole, Organization JSON files) into a transaction Bundle of PUTs.

Parsing and conversion are pure; only :func:`load_ans_examples` reads files (it is the loader's
adapter, used by the CLI and tests).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from hygie.domain.identity.luhn import (
    is_valid_finess,
    is_valid_rpps,
    is_valid_siret,
)
from hygie.domain.identity.nos import (
    IDENTIFIER_TYPE_SYSTEM,
    TRE_G15_PROFESSION,
    TRE_R02_SECTOR,
    TRE_R09_CATEGORY,
    TRE_R13_COMMUNE,
    TRE_R23_PRACTICE_MODE,
    TRE_R38_SPECIALTY,
    TRE_R256_MAIL_TYPE,
)
from hygie.domain.identity.status import IdentityError

__all__ = [
    "ADELI_SYSTEM",
    "FINESS_SYSTEM",
    "IDENTIFIER_TYPE_SYSTEM",
    "IDNAT_PS_SYSTEM",
    "IDNAT_STRUCT_SYSTEM",
    "PS_LIBREACCES_HEADER",
    "RPPS_SYSTEM",
    "SIRENE_SYSTEM",
    "DirectoryRow",
    "ExtractFormatError",
    "RowProblem",
    "load_ans_examples",
    "parse_rpps_extract",
    "rows_to_fhir",
    "transaction_bundle",
]

PS_LIBREACCES_HEADER: Final = (
    "Type d'identifiant PP|Identifiant PP|Identification nationale PP|Code civilité d'exercice|"
    "Libellé civilité d'exercice|Code civilité|Libellé civilité|Nom d'exercice|Prénom d'exercice|"
    "Code profession|Libellé profession|Code catégorie professionnelle|Libellé catégorie professionnelle|"
    "Code type savoir-faire|Libellé type savoir-faire|Code savoir-faire|Libellé savoir-faire|"
    "Code mode exercice|Libellé mode exercice|Numéro SIRET site|Numéro SIREN site|Numéro FINESS site|"
    "Numéro FINESS établissement juridique|Identifiant technique de la structure|Raison sociale site|"
    "Enseigne commerciale site|Complément destinataire (coord. structure)|"
    "Complément point géographique (coord. structure)|Numéro Voie (coord. structure)|"
    "Indice répétition voie (coord. structure)|Code type de voie (coord. structure)|"
    "Libellé type de voie (coord. structure)|Libellé Voie (coord. structure)|"
    "Mention distribution (coord. structure)|Bureau cedex (coord. structure)|"
    "Code postal (coord. structure)|Code commune (coord. structure)|Libellé commune (coord. structure)|"
    "Code pays (coord. structure)|Libellé pays (coord. structure)|Téléphone (coord. structure)|"
    "Téléphone 2 (coord. structure)|Télécopie (coord. structure)|Adresse e-mail (coord. structure)|"
    "Code Département (structure)|Libellé Département (structure)|Ancien identifiant de la structure|"
    "Autorité d'enregistrement|Code secteur d'activité|Libellé secteur d'activité|"
    "Code section tableau pharmaciens|Libellé section tableau pharmaciens|"
)
"""Header of ``PS_LibreAcces_Personne_activite`` (``shared/data/fr/rpps/…-header.txt``), 52 names + ``|``."""

_FIELD_COUNT: Final = 53

FR_CORE_SD: Final = "https://hl7.fr/ig/fhir/core/StructureDefinition/"
PROFILE_PRACTITIONER: Final = FR_CORE_SD + "fr-core-practitioner"
PROFILE_PRACTITIONER_ROLE: Final = FR_CORE_SD + "fr-core-practitioner-role"
PROFILE_ORGANIZATION: Final = FR_CORE_SD + "fr-core-organization"
EXT_INSEE_CODE: Final = FR_CORE_SD + "fr-core-address-insee-code"
EXT_EMAIL_TYPE: Final = FR_CORE_SD + "fr-core-contact-point-email-type"
IDNAT_PS_SYSTEM: Final = "urn:oid:1.2.250.1.71.4.2.1"
IDNAT_STRUCT_SYSTEM: Final = "urn:oid:1.2.250.1.71.4.2.2"
RPPS_SYSTEM: Final = "https://rpps.esante.gouv.fr"
ADELI_SYSTEM: Final = "https://adeli.esante.gouv.fr"
FINESS_SYSTEM: Final = "https://finess.esante.gouv.fr"
SIRENE_SYSTEM: Final = "https://sirene.fr"


_RPPS_TYPE: Final = "8"
_ADELI_TYPE: Final = "0"
_ORDINAL_SPECIALTY: Final = "S"


class ExtractFormatError(IdentityError):
    """A file that is not an RPPS open extraction at all (wrong or missing header)."""

    code = "bad-extract-header"


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A line of the extraction that was not loaded, with its 1-based line number and a French reason."""

    line: int
    reason: str
    code: str


@dataclass(frozen=True, slots=True)
class DirectoryRow:
    """One activity line of ``PS_LibreAcces_Personne_activite``; fields in the column order, as text.

    ``line`` is the 1-based line number in the file (the header is line 1).
    """

    line: int
    id_type: str
    identifier: str
    idnat_ps: str
    exercise_title_code: str
    exercise_title_label: str
    civility_code: str
    civility_label: str
    family: str
    given: str
    profession_code: str
    profession_label: str
    category_code: str
    category_label: str
    skill_type_code: str
    skill_type_label: str
    skill_code: str
    skill_label: str
    practice_mode_code: str
    practice_mode_label: str
    siret: str
    siren: str
    finess_site: str
    finess_legal: str
    structure_id: str
    structure_name: str
    structure_brand: str
    address_recipient: str
    address_place: str
    street_number: str
    street_repetition: str
    street_type_code: str
    street_type_label: str
    street_name: str
    distribution: str
    cedex: str
    postal_code: str
    commune_code: str
    commune_label: str
    country_code: str
    country_label: str
    phone: str
    phone2: str
    fax: str
    email: str
    department_code: str
    department_label: str
    former_structure_id: str
    registrar: str
    sector_code: str
    sector_label: str
    pharmacist_section_code: str
    pharmacist_section_label: str

    @property
    def structure_key(self) -> str | None:
        """The structure's stable key: FINESS site, else SIRET, else the technical id (None if none)."""
        return self.finess_site or self.siret or self.structure_id or None


def parse_rpps_extract(
    lines: Iterable[str], problems: list[RowProblem] | None = None
) -> Iterator[DirectoryRow]:
    """The rows of an open-extraction file, given its lines (header first).

    Raises :class:`ExtractFormatError` if the first line is not :data:`PS_LIBREACCES_HEADER` (a UTF-8
    BOM and line ends are tolerated). Malformed rows (wrong number of fields, no identifier, no name,
    unknown identifier type) are appended to ``problems`` and skipped; blank lines are ignored.
    """
    found = problems if problems is not None else []
    iterator = iter(lines)
    header = next(iterator, None)
    if header is None or header.lstrip("\ufeff").rstrip("\r\n") != PS_LIBREACCES_HEADER:
        raise ExtractFormatError(
            "Ce fichier n'est pas une extraction PS_LibreAcces_Personne_activite : l'en-tête ne correspond pas."
        )
    for number, raw in enumerate(iterator, start=2):
        text = raw.rstrip("\r\n")
        if not text.strip():
            continue
        values = text.split("|")
        if len(values) == _FIELD_COUNT - 1:
            values.append("")  # a line without the trailing separator
        if len(values) != _FIELD_COUNT:
            found.append(
                RowProblem(number, f"{_FIELD_COUNT} champs attendus, {len(values)} trouvés.", "field-count")
            )
            continue
        row = DirectoryRow(number, *(v.strip() for v in values[: _FIELD_COUNT - 1]))
        if row.id_type not in (_RPPS_TYPE, _ADELI_TYPE):
            found.append(
                RowProblem(
                    number, f"Type d'identifiant {row.id_type!r} inconnu (8 RPPS, 0 ADELI).", "id-type"
                )
            )
        elif not row.identifier:
            found.append(RowProblem(number, "Identifiant du professionnel absent.", "missing-identifier"))
        elif not row.family:
            found.append(RowProblem(number, "Nom d'exercice absent.", "missing-name"))
        else:
            yield row


# --------------------------------------------------------------------------- FHIR
def _identifier(type_code: str, system: str, value: str) -> dict[str, Any]:
    return {
        "use": "official",
        "type": {"coding": [{"system": IDENTIFIER_TYPE_SYSTEM, "code": type_code}]},
        "system": system,
        "value": value,
    }


def _coding(system: str, code: str, display: str) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _email(address: str) -> dict[str, Any]:
    telecom: dict[str, Any] = {"system": "email", "value": address, "use": "work"}
    if address.lower().rsplit("@", 1)[-1].endswith("mssante.fr"):
        telecom["extension"] = [
            {"url": EXT_EMAIL_TYPE, "valueCoding": {"system": TRE_R256_MAIL_TYPE, "code": "MSSANTE"}}
        ]
    return telecom


def _telecoms(row: DirectoryRow) -> list[dict[str, Any]]:
    telecoms = [{"system": "phone", "value": p, "use": "work"} for p in (row.phone, row.phone2) if p]
    if row.fax:
        telecoms.append({"system": "fax", "value": row.fax, "use": "work"})
    if row.email:
        telecoms.append(_email(row.email))
    return telecoms


def _address(row: DirectoryRow) -> dict[str, Any] | None:
    street = " ".join(
        part
        for part in (row.street_number, row.street_repetition, row.street_type_label, row.street_name)
        if part
    )
    lines = [part for part in (row.address_recipient, row.address_place, street, row.distribution) if part]
    address: dict[str, Any] = {}
    if row.commune_code:
        address["extension"] = [
            {"url": EXT_INSEE_CODE, "valueCoding": {"system": TRE_R13_COMMUNE, "code": row.commune_code}}
        ]
    address["use"] = "work"
    if lines:
        address["line"] = lines
    if row.commune_label:
        address["city"] = row.commune_label
    if row.department_label:
        address["district"] = row.department_label
    if row.postal_code:
        address["postalCode"] = row.postal_code
    address["country"] = row.country_label or "FR"
    return address if len(address) > 2 else None


def _practitioner_id(row: DirectoryRow) -> str:
    return f"pra-{row.identifier}" if row.id_type == _RPPS_TYPE else f"pra-adeli-{row.identifier}"


def _safe_id(value: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "-.") else "-" for c in value)[:64]


@dataclass
class _Structure:
    key: str
    finess_site: str
    finess_legal: str
    siret: str
    row: DirectoryRow


def _check_numbers(row: DirectoryRow, found: list[RowProblem]) -> tuple[str, str, str]:
    """The row's FINESS site, FINESS EJ and SIRET, each emptied (and reported) when its key is wrong."""
    finess_site, finess_legal, siret = row.finess_site, row.finess_legal, row.siret
    if finess_site and not is_valid_finess(finess_site):
        found.append(RowProblem(row.line, f"FINESS site {finess_site} invalide (clé de Luhn).", "bad-finess"))
        finess_site = ""
    if finess_legal and not is_valid_finess(finess_legal):
        found.append(
            RowProblem(row.line, f"FINESS juridique {finess_legal} invalide (clé de Luhn).", "bad-finess")
        )
        finess_legal = ""
    if siret and not is_valid_siret(siret):
        found.append(RowProblem(row.line, f"SIRET {siret} invalide (clé de Luhn).", "bad-siret"))
        siret = ""
    return finess_site, finess_legal, siret


def _organization(structure: _Structure) -> dict[str, Any]:
    row = structure.row
    identifiers: list[dict[str, Any]] = []
    if structure.finess_site:
        identifiers.append(_identifier("IDNST", IDNAT_STRUCT_SYSTEM, "1" + structure.finess_site))
    elif structure.siret:
        identifiers.append(_identifier("IDNST", IDNAT_STRUCT_SYSTEM, "3" + structure.siret))
    if structure.finess_site:
        identifiers.append(_identifier("FINEG", FINESS_SYSTEM, structure.finess_site))
    if structure.finess_legal:
        identifiers.append(_identifier("FINEJ", FINESS_SYSTEM, structure.finess_legal))
    if structure.siret:
        identifiers.append(_identifier("SIRET", SIRENE_SYSTEM, structure.siret))
    organization: dict[str, Any] = {
        "resourceType": "Organization",
        "id": f"org-{_safe_id(structure.key)}",
        "meta": {"profile": [PROFILE_ORGANIZATION]},
    }
    if identifiers:
        organization["identifier"] = identifiers
    organization["active"] = True
    if row.sector_code:
        organization["type"] = [{"coding": [_coding(TRE_R02_SECTOR, row.sector_code, row.sector_label)]}]
    organization["name"] = row.structure_name or row.structure_brand or structure.key
    if row.structure_brand and row.structure_brand != organization["name"]:
        organization["alias"] = [row.structure_brand]
    telecoms = _telecoms(row)
    if telecoms:
        organization["telecom"] = telecoms
    address = _address(row)
    if address is not None:
        organization["address"] = [address]
    return organization


def _practitioner(row: DirectoryRow) -> dict[str, Any]:
    identifiers: list[dict[str, Any]] = []
    if row.idnat_ps:
        identifiers.append(_identifier("IDNPS", IDNAT_PS_SYSTEM, row.idnat_ps))
    if row.id_type == _RPPS_TYPE:
        identifiers.append(_identifier("RPPS", RPPS_SYSTEM, row.identifier))
    else:
        identifiers.append(_identifier("ADELI", ADELI_SYSTEM, row.identifier))
    name: dict[str, Any] = {"use": "usual", "family": row.family}
    if row.given:
        name["given"] = [row.given]
    if row.exercise_title_label:
        name["prefix"] = [row.exercise_title_label]
    practitioner: dict[str, Any] = {
        "resourceType": "Practitioner",
        "id": _practitioner_id(row),
        "meta": {"profile": [PROFILE_PRACTITIONER]},
        "identifier": identifiers,
        "active": True,
        "name": [name],
    }
    if row.civility_code in ("M", "MME"):
        practitioner["gender"] = "male" if row.civility_code == "M" else "female"
    practitioner["qualification"] = []
    return practitioner


def _add_qualifications(practitioner: dict[str, Any], row: DirectoryRow) -> None:
    """Add the row's profession and ordinal specialty to the practitioner, without repeating one."""
    wanted: list[list[dict[str, Any]]] = []
    if row.profession_code:
        codings = [_coding(TRE_G15_PROFESSION, row.profession_code, row.profession_label)]
        if row.category_code:
            codings.append(_coding(TRE_R09_CATEGORY, row.category_code, row.category_label))
        wanted.append(codings)
    if row.skill_code and row.skill_type_code == _ORDINAL_SPECIALTY:
        wanted.append([_coding(TRE_R38_SPECIALTY, row.skill_code, row.skill_label)])
    present = {
        (q["code"]["coding"][0]["system"], q["code"]["coding"][0]["code"])
        for q in practitioner["qualification"]
    }
    for codings in wanted:
        if (codings[0]["system"], codings[0]["code"]) not in present:
            practitioner["qualification"].append({"code": {"coding": codings}})


def _role(
    row: DirectoryRow, practitioner: dict[str, Any], organization: dict[str, Any] | None
) -> dict[str, Any]:
    key = row.structure_key or "sans-structure"
    role: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": _safe_id(f"prr-{row.identifier}-{key}"),
        "meta": {"profile": [PROFILE_PRACTITIONER_ROLE]},
        "active": True,
        "practitioner": {"reference": f"Practitioner/{practitioner['id']}", "display": _display(row)},
    }
    if organization is not None:
        role["organization"] = {
            "reference": f"Organization/{organization['id']}",
            "display": organization["name"],
        }
    codes: list[dict[str, Any]] = []
    if row.practice_mode_code:
        codes.append(
            {"coding": [_coding(TRE_R23_PRACTICE_MODE, row.practice_mode_code, row.practice_mode_label)]}
        )
    if row.profession_code:
        codes.append({"coding": [_coding(TRE_G15_PROFESSION, row.profession_code, row.profession_label)]})
    if codes:
        role["code"] = codes
    telecoms = _telecoms(row)
    if telecoms:
        role["telecom"] = telecoms
    _add_specialty(role, row)
    return role


def _add_specialty(role: dict[str, Any], row: DirectoryRow) -> None:
    if not row.skill_code or row.skill_type_code != _ORDINAL_SPECIALTY:
        return
    specialties: list[dict[str, Any]] = role.setdefault("specialty", [])
    if all(s["coding"][0]["code"] != row.skill_code for s in specialties):
        specialties.append({"coding": [_coding(TRE_R38_SPECIALTY, row.skill_code, row.skill_label)]})


def _display(row: DirectoryRow) -> str:
    parts = [row.exercise_title_label, row.given, row.family]
    return " ".join(p for p in parts if p)


def rows_to_fhir(
    rows: Iterable[DirectoryRow], problems: list[RowProblem] | None = None
) -> list[dict[str, Any]]:
    """FR Core Organizations, Practitioners and PractitionerRoles for these rows, in that order.

    Deduplicated: one Organization per structure, one Practitioner per RPPS/ADELI (with every
    profession and specialty seen), one PractitionerRole per professional and structure. Rows whose
    RPPS fails its key are reported in ``problems`` and skipped; bad FINESS/SIRET numbers are
    reported and left out of their Organization. Rows with the same professional and different names
    keep the first one (reported too).
    """
    found = problems if problems is not None else []
    structures: dict[str, _Structure] = {}
    practitioners: dict[str, dict[str, Any]] = {}
    names: dict[str, tuple[str, str]] = {}
    roles: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.id_type == _RPPS_TYPE and not is_valid_rpps(row.identifier):
            found.append(
                RowProblem(
                    row.line, f"RPPS {row.identifier} invalide (clé de Luhn) : ligne ignorée.", "bad-rpps"
                )
            )
            continue
        if row.id_type == _RPPS_TYPE and row.idnat_ps and row.idnat_ps != "8" + row.identifier:
            found.append(
                RowProblem(
                    row.line,
                    f"IdNat_PS {row.idnat_ps} différent de 8 + RPPS : ligne ignorée.",
                    "bad-idnat-ps",
                )
            )
            continue
        finess_site, finess_legal, siret = _check_numbers(row, found)
        key = finess_site or siret or row.structure_id
        organization: dict[str, Any] | None = None
        if key:
            structure = structures.get(key)
            if structure is None:
                structure = _Structure(key, finess_site, finess_legal, siret, row)
                structures[key] = structure
            organization = {
                "id": f"org-{_safe_id(key)}",
                "name": row.structure_name or row.structure_brand or key,
            }
        practitioner_id = _practitioner_id(row)
        practitioner = practitioners.get(practitioner_id)
        if practitioner is None:
            practitioner = _practitioner(row)
            practitioners[practitioner_id] = practitioner
            names[practitioner_id] = (row.family, row.given)
        elif names[practitioner_id] != (row.family, row.given):
            found.append(
                RowProblem(
                    row.line,
                    f"Nom {row.given} {row.family} différent de la première ligne de ce professionnel ; "
                    "le premier nom est conservé.",
                    "name-conflict",
                )
            )
        _add_qualifications(practitioner, row)
        role_candidate = _role(row, practitioner, organization)
        existing = roles.get(role_candidate["id"])
        if existing is None:
            roles[role_candidate["id"]] = role_candidate
        else:
            _add_specialty(existing, row)
    resources: list[dict[str, Any]] = [_organization(s) for s in structures.values()]
    for practitioner in practitioners.values():
        if not practitioner["qualification"]:
            del practitioner["qualification"]
        resources.append(practitioner)
    resources.extend(roles.values())
    return resources


def transaction_bundle(resources: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A transaction Bundle that PUTs each resource on its id (loading twice changes nothing)."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"{r['resourceType']}/{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }


_ANS_TYPES: Final = ("Organization", "Practitioner", "PractitionerRole")


def load_ans_examples(folder: Path) -> dict[str, Any]:
    """A transaction Bundle of PUTs for the Practitioner, PractitionerRole and Organization examples in ``folder``.

    Reads every ``*.json`` file, keeps these three resource types (Organizations first, so references
    resolve in order), sorted by file name, and skips the others (SearchParameter, Person…).
    """
    by_type: dict[str, list[dict[str, Any]]] = {t: [] for t in _ANS_TYPES}
    for path in sorted(folder.glob("*.json")):
        resource = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(resource, dict) and resource.get("resourceType") in by_type and resource.get("id"):
            by_type[resource["resourceType"]].append(resource)
    return transaction_bundle(r for t in _ANS_TYPES for r in by_type[t])
