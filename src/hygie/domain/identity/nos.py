"""FHIR system URLs of the French terminologies and FR Core used across identity and the demo.

ANS publishes its code tables (NOS: ``TRE_*`` code systems) under one URL pattern,
:func:`nos`; FR Core defines its own code systems and profiles under ``hl7.fr``.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "FR_CORE_SD",
    "IDENTIFIER_TYPE_SYSTEM",
    "TRE_A03_CLASS",
    "TRE_A07_VISIBILITY",
    "TRE_G15_PROFESSION",
    "TRE_R02_SECTOR",
    "TRE_R09_CATEGORY",
    "TRE_R13_COMMUNE",
    "TRE_R22_ACTIVITY_KIND",
    "TRE_R23_PRACTICE_MODE",
    "TRE_R38_SPECIALTY",
    "TRE_R66_CATEGORY",
    "TRE_R256_MAIL_TYPE",
    "nos",
]


def nos(name: str) -> str:
    """The FHIR system URL of an ANS NOS table, e.g. ``nos("TRE_R02-SecteurActivite")``."""
    return f"https://mos.esante.gouv.fr/NOS/{name}/FHIR/{name.replace('_', '-')}"


TRE_R13_COMMUNE: Final = nos("TRE_R13-CommuneOM")
"""Communes including overseas (TRE_R13-CommuneOM), for ``fr-core-address-insee-code``."""
TRE_G15_PROFESSION: Final = nos("TRE_G15-ProfessionSante")
TRE_R09_CATEGORY: Final = nos("TRE_R09-CategorieProfessionnelle")
TRE_R38_SPECIALTY: Final = nos("TRE_R38-SpecialiteOrdinale")
TRE_R02_SECTOR: Final = nos("TRE_R02-SecteurActivite")
TRE_R66_CATEGORY: Final = nos("TRE_R66-CategorieEtablissement")
TRE_R23_PRACTICE_MODE: Final = nos("TRE_R23-ModeExercice")
TRE_R22_ACTIVITY_KIND: Final = nos("TRE_R22-GenreActivite")
TRE_R256_MAIL_TYPE: Final = nos("TRE_R256-TypeMessagerie")
TRE_A03_CLASS: Final = nos("TRE_A03-ClasseDocument")
TRE_A07_VISIBILITY: Final = nos("TRE_A07-StatutVisibiliteDocument")

FR_CORE_SD: Final = "https://hl7.fr/ig/fhir/core/StructureDefinition/"
IDENTIFIER_TYPE_SYSTEM: Final = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
