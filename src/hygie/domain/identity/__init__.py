"""Identifiers of the French health system: INS matricules (NIR/NIA) and professional/structure numbers.

Pure functions shared by the identity services (INS qualification, professional directory) and the
synthetic-data generator: :mod:`.nir` for the NIR/NIA and the INS OIDs, :mod:`.luhn` for RPPS, IdNat_PS,
FINESS, SIREN and SIRET.
"""

from hygie.domain.identity.luhn import (
    IDNAT_PS_RPPS_PREFIX,
    finess_key,
    idnat_ps_from_rpps,
    is_valid_finess,
    is_valid_luhn,
    is_valid_rpps,
    is_valid_siren,
    is_valid_siret,
    luhn_checksum,
    luhn_key,
    rpps_key,
)
from hygie.domain.identity.nir import (
    INS_NIA_OID,
    INS_NIA_SYSTEM,
    INS_NIR_DEMO_OID,
    INS_NIR_DEMO_SYSTEM,
    INS_NIR_OID,
    INS_NIR_SYSTEM,
    INS_NIR_TEST_OID,
    INS_NIR_TEST_SYSTEM,
    INS_TYPE_SYSTEM,
    InvalidNir,
    NirParts,
    build_nir,
    is_valid_nir,
    nir_key,
    normalize_nir,
    parse_nir,
)

__all__ = [
    "IDNAT_PS_RPPS_PREFIX",
    "INS_NIA_OID",
    "INS_NIA_SYSTEM",
    "INS_NIR_DEMO_OID",
    "INS_NIR_DEMO_SYSTEM",
    "INS_NIR_OID",
    "INS_NIR_SYSTEM",
    "INS_NIR_TEST_OID",
    "INS_NIR_TEST_SYSTEM",
    "INS_TYPE_SYSTEM",
    "InvalidNir",
    "NirParts",
    "build_nir",
    "finess_key",
    "idnat_ps_from_rpps",
    "is_valid_finess",
    "is_valid_luhn",
    "is_valid_nir",
    "is_valid_rpps",
    "is_valid_siren",
    "is_valid_siret",
    "luhn_checksum",
    "luhn_key",
    "nir_key",
    "normalize_nir",
    "parse_nir",
    "rpps_key",
]
