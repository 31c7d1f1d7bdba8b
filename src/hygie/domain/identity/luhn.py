"""Luhn-keyed identifiers of French health professionals and structures: RPPS, FINESS, SIREN, SIRET.

The Luhn (mod 10) algorithm, counting from the right with the key at position 1: double the digits at
even positions (subtracting 9 when the result exceeds 9) and add everything; the number is valid when
the sum is a multiple of 10.

* **RPPS** (*Répertoire partagé des professionnels de santé*): 11 digits, the last one a Luhn key. No
  ANS rule text states the algorithm, but the ANS test number ``99700218896`` and third-party
  implementations agree on Luhn.
* **IdNat_PS**: the national professional identifier used by CPS/e-CPS, Pro Santé Connect and the DMP:
  a TRE_G08 prefix plus the identifier; prefix ``8`` for an RPPS (12 characters).
* **FINESS** (establishments, EJ and EG): 9 characters, department (2, ``2A``/``2B`` in Corsica) +
  ``0`` + 5-digit order + Luhn key. How the Corsican letters enter the key is **not verified**; like the
  NIR we read ``2A`` as ``19`` and ``2B`` as ``18``.
* **SIREN** (9 digits) and **SIRET** (SIREN + 5-digit NIC, 14 digits): Luhn, except the SIRETs of La
  Poste (SIREN ``356000000``) whose digit sum must be a multiple of 5.

All functions are pure and never raise on malformed input unless documented: validators return False.
Sources: ``shared/spec/french-ehealth-digest.md`` §2.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "IDNAT_PS_RPPS_PREFIX",
    "finess_key",
    "idnat_ps_from_rpps",
    "is_valid_finess",
    "is_valid_luhn",
    "is_valid_rpps",
    "is_valid_siren",
    "is_valid_siret",
    "luhn_checksum",
    "luhn_key",
    "rpps_key",
]

IDNAT_PS_RPPS_PREFIX: Final = "8"
"""TRE_G08 prefix of an IdNat_PS built from an RPPS number."""

_LA_POSTE_SIREN: Final = "356000000"
_FINESS_CORSICA: Final = {"2A": "19", "2B": "18"}


def luhn_checksum(digits: str) -> int:
    """The Luhn sum of ``digits`` modulo 10 (0 for a valid number). Raises ValueError on a non-digit."""
    if not digits.isascii() or not digits.isdigit():
        raise ValueError(f"{digits!r} is not a string of digits")
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10


def is_valid_luhn(number: str) -> bool:
    """True if ``number`` is a non-empty digit string whose Luhn sum is a multiple of 10."""
    return bool(number) and number.isascii() and number.isdigit() and luhn_checksum(number) == 0


def luhn_key(body: str) -> str:
    """The digit to append to ``body`` so that the result passes :func:`is_valid_luhn`."""
    return str((10 - luhn_checksum(body + "0")) % 10)


def rpps_key(body10: str) -> str:
    """The Luhn key (one digit) of a 10-digit RPPS body. Raises ValueError if the body is malformed."""
    if len(body10) != 10 or not body10.isascii() or not body10.isdigit():
        raise ValueError(f"an RPPS body has 10 digits, got {body10!r}")
    return luhn_key(body10)


def is_valid_rpps(value: str) -> bool:
    """True if ``value`` is an 11-digit RPPS number with a correct Luhn key."""
    return len(value) == 11 and is_valid_luhn(value)


def idnat_ps_from_rpps(rpps: str) -> str:
    """The IdNat_PS of a professional identified by RPPS: ``8`` + RPPS (12 characters).

    Raises ValueError if ``rpps`` is not a valid RPPS, so an IdNat_PS is never built from a typo.
    """
    if not is_valid_rpps(rpps):
        raise ValueError(f"{rpps!r} is not a valid RPPS number")
    return IDNAT_PS_RPPS_PREFIX + rpps


def _finess_digits(value: str) -> str | None:
    """The FINESS as digits for the Luhn check (Corsica ``2A``→``19``, ``2B``→``18``), or None."""
    upper = value.upper()
    digits = _FINESS_CORSICA.get(upper[:2], upper[:2]) + upper[2:]
    return digits if digits.isascii() and digits.isdigit() else None


def finess_key(body8: str) -> str:
    """The Luhn key of an 8-character FINESS body (``2A``/``2B`` read as ``19``/``18``, unverified)."""
    digits = _finess_digits(body8)
    if len(body8) != 8 or digits is None:
        raise ValueError(f"a FINESS body has 8 characters (digits, or 2A/2B first), got {body8!r}")
    return luhn_key(digits)


def is_valid_finess(value: str) -> bool:
    """True if ``value`` is a 9-character FINESS (EJ or EG number) with a correct Luhn key.

    Corsican numbers start with ``2A``/``2B``; the key is checked with ``19``/``18`` in their place,
    which is our assumption (no official rule text was found).
    """
    if len(value) != 9:
        return False
    digits = _finess_digits(value)
    return digits is not None and is_valid_luhn(digits)


def is_valid_siren(value: str) -> bool:
    """True if ``value`` is a 9-digit SIREN (company number) with a correct Luhn key."""
    return len(value) == 9 and is_valid_luhn(value)


def is_valid_siret(value: str) -> bool:
    """True if ``value`` is a 14-digit SIRET (SIREN + NIC) with a correct key.

    The SIRETs of La Poste's establishments (SIREN 356000000) are too many for Luhn to be kept; INSEE
    checks them by requiring a digit sum that is a multiple of 5 instead.
    """
    if len(value) != 14 or not value.isascii() or not value.isdigit():
        return False
    if value.startswith(_LA_POSTE_SIREN) and value != _LA_POSTE_SIREN + "00001":
        return sum(int(c) for c in value) % 5 == 0
    return is_valid_luhn(value)
