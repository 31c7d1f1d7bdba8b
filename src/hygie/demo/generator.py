"""Deterministic French synthetic population as FHIR R4 transaction Bundles.

Entry points:

* :func:`generate_population` — the directory Bundle followed by one Bundle per citizen (plain dicts,
  ready to be POSTed to ``[base]`` one after the other: the directory first, since citizens refer to
  it);
* :func:`generate_directory` / :func:`write_rpps_extract` — the professionals alone, as FHIR or in
  the ANS ``PS_LibreAcces_Personne_activite`` open-extraction format;
* :data:`DEMO_CITIZENS` — named, stable citizens for demonstrations (the first Bundles of every
  population when ``include_demo_citizens`` is true).

Determinism: the same arguments always give the same output, byte for byte once serialised. The
directory depends only on ``seed``; citizen *i* depends only on ``seed``, *i* and the period, so
asking for more citizens only appends Bundles. Nothing is read outside the package (the commune
and name lists ship in ``hygie/demo/data``).

Synthetic NIRs are valid (right key, consistent with sex, birth date and birth place) but are not
checked against any registry: by construction some may coincide with real people's numbers. Pass
``ins="demo"`` to label them with the ANS demonstration OID (``1.2.250.1.213.1.4.11``) instead of the
production INS-NIR OID.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final, TextIO

from hygie.demo.citizens import (
    CitizenSpec,
    IdentityStatus,
    InsFlavour,
    draw_identity,
    identity_from_spec,
    patient_bundle,
)
from hygie.demo.directory import Directory, build_directory, directory_bundle, rpps_extract_lines
from hygie.domain.identity.nir import (
    INS_NIA_SYSTEM,
    INS_NIR_DEMO_SYSTEM,
    INS_NIR_SYSTEM,
    INS_NIR_TEST_SYSTEM,
    build_nir,
)

__all__ = [
    "DEMO_CITIZENS",
    "LARGE_PATIENT_RESOURCES",
    "DemoCitizen",
    "generate_directory",
    "generate_population",
    "iter_resources",
    "write_rpps_extract",
]

LARGE_PATIENT_RESOURCES: Final = 1000
"""Size of the optional "large" citizen Bundle (``$everything`` benchmark)."""

_DEMO_NAMESPACE: Final = uuid.UUID("6f1d3c2a-8b4e-5d7f-9a10-2b3c4d5e6f70")

_DEMO_SPECS: Final = (
    CitizenSpec(
        key="claire-dupont",
        gender="female",
        birth_date=date(1985, 4, 12),
        family="MARTIN",
        given=("Claire", "Louise", "Anne"),
        used_family="DUPONT",
        birth_insee="45234",
        residence_insee="45234",
        order=123,
        status="QUAL",
        conditions=("asthma", "migraine"),
        allergies=("pollen",),
        description="Adulte asthmatique et migraineuse ; INS qualifiée (NIR de l'exemple du référentiel).",
    ),
    CitizenSpec(
        key="paul-rossi",
        gender="male",
        birth_date=date(1948, 3, 2),
        family="ROSSI",
        given=("Paul", "Antoine"),
        birth_insee="2A004",
        residence_insee="2A004",
        order=4,
        status="QUAL",
        conditions=("hypertension", "diabetes2", "atrial_fibrillation"),
        allergies=("penicillin",),
        description="Homme âgé né en Corse, polypathologique (HTA, diabète de type 2, fibrillation atriale).",
    ),
    CitizenSpec(
        key="lea-bernard",
        gender="female",
        birth_date=date(2016, 9, 21),
        family="BERNARD",
        given=("Léa", "Rose"),
        birth_insee="69383",
        residence_insee="69383",
        order=57,
        status="RECUP",
        conditions=(),
        description="Enfant née à Lyon : courbes de croissance et calendrier vaccinal ; INS récupérée.",
    ),
    CitizenSpec(
        key="marcel-hoarau",
        gender="male",
        birth_date=date(1958, 11, 5),
        family="HOARAU",
        given=("Marcel",),
        birth_insee="97411",
        residence_insee="97411",
        order=212,
        status="VALI",
        conditions=("diabetes2", "hypertension", "dyslipidemia"),
        description="Homme réunionnais à risque cardiovasculaire ; identité validée, non qualifiée.",
    ),
    CitizenSpec(
        key="nadia-benali",
        gender="female",
        birth_date=date(1992, 6, 30),
        family="BENALI",
        given=("Nadia",),
        birth_country=("99350", "Maroc"),
        residence_insee="13208",
        order=88,
        status="PROV",
        nia=True,
        conditions=("depression",),
        description="Femme née au Maroc, NIA seulement ; identité provisoire, documents masqués.",
    ),
)


@dataclass(frozen=True, slots=True)
class DemoCitizen:
    """A named demo citizen: the same in every population generated with demo citizens included.

    ``fhir_uuid`` is the ``urn:uuid`` of the Patient entry in its Bundle (servers assign their own
    id on POST, so look the patient up by ``ins_system|ins``).
    """

    key: str
    fhir_uuid: str
    family: str
    given: str
    used_family: str | None
    gender: str
    birth_date: date
    ins: str
    ins_system: str
    identity_status: IdentityStatus
    description: str

    def __str__(self) -> str:
        """One line for listings: ``Claire DUPONT (née MARTIN), 12/04/1985, INS … [QUAL] : …``."""
        born = "née" if self.gender == "female" else "né"
        name = f"{self.given} {self.used_family or self.family}"
        if self.used_family:
            name += f" ({born} {self.family})"
        return (
            f"{name}, {born} le {self.birth_date.strftime('%d/%m/%Y')}, "
            f"INS {self.ins} [{self.identity_status}] : {self.description}"
        )


def _ins_system(spec: CitizenSpec, ins: InsFlavour = "nir") -> str:
    if spec.nia:
        return INS_NIA_SYSTEM
    return {"nir": INS_NIR_SYSTEM, "demo": INS_NIR_DEMO_SYSTEM, "test": INS_NIR_TEST_SYSTEM}[ins]


def _demo_citizen(spec: CitizenSpec) -> DemoCitizen:
    place = spec.birth_insee or (spec.birth_country[0] if spec.birth_country else "99100")
    return DemoCitizen(
        key=spec.key,
        fhir_uuid=str(uuid.uuid5(_DEMO_NAMESPACE, spec.key)),
        family=spec.family,
        given=spec.given[0],
        used_family=spec.used_family,
        gender=spec.gender,
        birth_date=spec.birth_date,
        ins=build_nir(spec.gender, spec.birth_date.year, spec.birth_date.month, place, spec.order),
        ins_system=_ins_system(spec),
        identity_status=spec.status,
        description=spec.description,
    )


DEMO_CITIZENS: Final = tuple(_demo_citizen(spec) for spec in _DEMO_SPECS)
"""The demo citizens, in the order they open every population (INS with the INS-NIR OID by default)."""


def generate_directory(seed: int = 0) -> Directory:
    """The professionals and structures for ``seed`` (one hub per region)."""
    return build_directory(seed)


def write_rpps_extract(directory: Directory, out: TextIO | Path) -> int:
    """Write the directory as a ``PS_LibreAcces_Personne_activite`` file; return the number of rows.

    ``out`` is a text stream or a path (written in UTF-8, ``\\n`` line ends). Rows are ``|``-separated,
    53 fields each (52 columns plus the empty field after the trailing ``|``), header first.
    """
    lines = rpps_extract_lines(directory.professionals)
    text = "".join(line + "\n" for line in lines)
    if isinstance(out, Path):
        out.write_text(text, encoding="utf-8")
    else:
        out.write(text)
    return len(lines) - 1


def generate_population(
    n_patients: int,
    seed: int = 0,
    *,
    start_year: int = 2015,
    end_year: int = 2025,
    include_demo_citizens: bool = True,
    large_patient: bool = False,
    ins: InsFlavour = "nir",
) -> list[dict[str, Any]]:
    """FHIR transaction Bundles: the directory, then ``n_patients`` citizens (plus one large one).

    * ``seed``: everything derives from it; the same arguments give the same Bundles.
    * ``start_year``/``end_year``: the period covered by the histories (inclusive). Documents cover
      the last four years, plus every hospital stay.
    * ``include_demo_citizens``: the first citizens are :data:`DEMO_CITIZENS` (as many as fit in
      ``n_patients``); their identities are fixed, their histories follow ``seed``.
    * ``large_patient``: append one more multimorbid citizen whose Bundle holds about
      :data:`LARGE_PATIENT_RESOURCES` resources (daily step counts fill the history).
    * ``ins``: OID of the synthetic INS: ``"nir"`` (production INS-NIR, default), ``"demo"`` or ``"test"``.
    """
    if n_patients < 0:
        raise ValueError("n_patients must be >= 0")
    if end_year < start_year:
        raise ValueError("end_year must not precede start_year")
    directory = build_directory(seed)
    bundles = [directory_bundle(directory)]
    end = date(end_year, 12, 31)
    for index in range(n_patients):
        rng = random.Random(f"hygie-citizen:{seed}:{index}:{start_year}:{end_year}")
        if include_demo_citizens and index < len(_DEMO_SPECS):
            spec = _DEMO_SPECS[index]
            ident = identity_from_spec(spec, DEMO_CITIZENS[index].fhir_uuid, rng)
            bundles.append(
                patient_bundle(
                    ident,
                    directory,
                    rng,
                    start_year=start_year,
                    end_year=end_year,
                    ins=ins,
                    forced_conditions=spec.conditions,
                    forced_allergies=spec.allergies,
                )
            )
        else:
            ident = draw_identity(rng, f"citizen-{index}", on=end)
            bundles.append(
                patient_bundle(ident, directory, rng, start_year=start_year, end_year=end_year, ins=ins)
            )
    if large_patient:
        rng = random.Random(f"hygie-large-citizen:{seed}:{start_year}:{end_year}")
        ident = draw_identity(rng, "citizen-large", min_age=68, max_age=75, on=end)
        bundles.append(
            patient_bundle(
                ident,
                directory,
                rng,
                start_year=start_year,
                end_year=end_year,
                ins=ins,
                forced_conditions=(
                    "hypertension",
                    "diabetes2",
                    "dyslipidemia",
                    "copd",
                    "knee_osteoarthritis",
                ),
                target_resources=LARGE_PATIENT_RESOURCES,
            )
        )
    return bundles


def iter_resources(bundles: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """Every resource of these Bundles, in order (convenience for statistics and tests)."""
    for bundle in bundles:
        for entry in bundle["entry"]:
            yield entry["resource"]
