"""NIR and NIA: the French social-security number that serves as the INS matricule.

The NIR (*numéro d'inscription au répertoire*, "numéro de sécurité sociale") is the matricule of the
INS (*Identifiant National de Santé*) for everyone registered in the RNIPP; people not (yet) registered,
mostly born abroad, get a NIA (*numéro d'identification d'attente*) with the same layout and the same key
algorithm. Both are 15 characters: a 13-character body and a 2-digit key.

====  ===  ==========================================================================================
Pos.  Len  Meaning
====  ===  ==========================================================================================
1     1    sex: ``1`` male, ``2`` female (other digits are used for special or temporary numbers)
2–3   2    year of birth (last two digits)
4–5   2    month of birth ``01``–``12`` (``20``, ``30``–``42``, ``50``: incomplete civil record)
6–7   2    department of birth: ``01``–``95``, ``2A``/``2B`` (Corsica), ``99`` (born abroad); for
           overseas births ``97``/``98`` start a 3-digit department (then the commune has 2 digits)
8–10  3    commune of birth (INSEE), or the INSEE country code when born abroad
11–13 3    order number ``001``–``999``
14–15 2    key: ``97 − (N mod 97)`` where N is the body read as an integer, ``2A``→``19``, ``2B``→``18``
====  ===  ==========================================================================================

Positions 6–10 are therefore the INSEE code of the birth commune (5 characters, e.g. ``45234`` Orléans,
``2A004`` Ajaccio, ``97105`` Basse-Terre) or ``99`` + the INSEE country code.

All functions are pure and do no I/O. Sources: the ANS/CNAM INS documentation as summarised in
``shared/spec/french-ehealth-digest.md`` §1 (key algorithm and test vectors also match python-stdnum's
``stdnum.fr.nir``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
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
    "is_valid_nir",
    "nir_key",
    "normalize_nir",
    "parse_nir",
]

INS_NIR_OID: Final = "1.2.250.1.213.1.4.8"
"""OID of the INS whose matricule is a NIR (also the OID of the NSS used for billing)."""
INS_NIA_OID: Final = "1.2.250.1.213.1.4.9"
"""OID of the INS whose matricule is a NIA (temporary number; FHIR ``use = temp``)."""
INS_NIR_TEST_OID: Final = "1.2.250.1.213.1.4.10"
"""OID of test INS (qualification environments of the INSi teleservice)."""
INS_NIR_DEMO_OID: Final = "1.2.250.1.213.1.4.11"
"""OID of demonstration INS (fictitious identities shown in demos and training)."""

INS_NIR_SYSTEM: Final = f"urn:oid:{INS_NIR_OID}"
INS_NIA_SYSTEM: Final = f"urn:oid:{INS_NIA_OID}"
INS_NIR_TEST_SYSTEM: Final = f"urn:oid:{INS_NIR_TEST_OID}"
INS_NIR_DEMO_SYSTEM: Final = f"urn:oid:{INS_NIR_DEMO_OID}"

INS_TYPE_SYSTEM: Final = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
"""FR Core code system of identifier types (``INS-NIR``, ``INS-NIA``, ``INS-NIR-TEST``, ``INS-NIR-DEMO``)."""

_CORSICA_DIGITS: Final = {"2A": "19", "2B": "18"}
_BODY_RE: Final = re.compile(r"^[0-9]{5}(?:[0-9]{2}|2[AB])[0-9]{6}$")
_OVERSEAS_PREFIXES: Final = ("97", "98")
_BORN_ABROAD: Final = "99"


class InvalidNir(ValueError):
    """A NIR/NIA that cannot be accepted; ``reason`` says why in one sentence."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"invalid NIR {value!r}: {reason}")
        self.value = value
        self.reason = reason


@dataclass(frozen=True, slots=True)
class NirParts:
    """The fields of a valid NIR/NIA, as strings so that leading zeros and ``2A``/``2B`` survive.

    ``department`` has 2 characters, or 3 for an overseas birth (``971``…``989``); ``commune`` then has
    2 characters instead of 3, so that ``department + commune`` is always the 5-character INSEE code
    of the birth place (:attr:`birth_place_code`). For a birth abroad ``department`` is ``"99"`` and
    ``commune`` is the INSEE country code.
    """

    sex_digit: str
    birth_year: str
    birth_month_code: str
    department: str
    commune: str
    order: str
    key: str

    @property
    def sex(self) -> Literal["male", "female"] | None:
        """``male`` for ``1``, ``female`` for ``2``, ``None`` for special or temporary numbers."""
        if self.sex_digit == "1":
            return "male"
        if self.sex_digit == "2":
            return "female"
        return None

    @property
    def birth_month(self) -> int | None:
        """The month 1–12, or ``None`` when the civil record is incomplete (codes 20, 30–42, 50)."""
        month = int(self.birth_month_code)
        return month if 1 <= month <= 12 else None

    @property
    def born_abroad(self) -> bool:
        """True when the person was born outside France (department ``99``)."""
        return self.department == _BORN_ABROAD

    @property
    def overseas(self) -> bool:
        """True for a birth in an overseas department or collectivity (``97x``/``98x``)."""
        return len(self.department) == 3

    @property
    def birth_place_code(self) -> str:
        """INSEE code of the birth commune (5 characters), or ``99`` + country code when born abroad."""
        return self.department + self.commune

    @property
    def body(self) -> str:
        """The 13-character body (everything but the key)."""
        return (
            self.sex_digit
            + self.birth_year
            + self.birth_month_code
            + self.department
            + self.commune
            + self.order
        )

    def __str__(self) -> str:
        return self.body + self.key


def normalize_nir(value: str) -> str:
    """Remove spaces, dots and dashes people type in a NIR and upper-case ``2a``/``2b``."""
    return re.sub(r"[\s.\-]", "", value).upper()


def nir_key(body13: str) -> str:
    """The 2-digit key of a 13-character NIR/NIA body: ``97 − (N mod 97)``, Corsica mapped to digits.

    ``2A`` (Corse-du-Sud) counts as ``19`` and ``2B`` (Haute-Corse) as ``18`` in positions 6–7. The result
    is always between ``01`` and ``97``. Raises :class:`InvalidNir` if the body is malformed.
    """
    body = normalize_nir(body13)
    if not _BODY_RE.match(body):
        raise InvalidNir(body13, "the body must be 13 digits, with 2A or 2B allowed in positions 6-7")
    digits = body[:5] + _CORSICA_DIGITS.get(body[5:7], body[5:7]) + body[7:]
    return f"{97 - int(digits) % 97:02d}"


def parse_nir(value: str) -> NirParts:
    """Split and check a NIR/NIA; raise :class:`InvalidNir` with the first problem found.

    Checks: length, characters, sex digit (``1``–``8``; ``1``/``2`` for ordinary numbers), month code,
    department (``00`` does not exist, letters only as ``2A``/``2B``), order number (``000`` is never
    assigned) and the key. Spaces are tolerated (``2 85 04 45 234 123 51``).
    """
    nir = normalize_nir(value)
    if len(nir) != 15:
        raise InvalidNir(value, f"a NIR has 15 characters, not {len(nir)}")
    if not _BODY_RE.match(nir[:13]) or not nir[13:].isdigit():
        raise InvalidNir(value, "only digits are allowed, except 2A or 2B as the department in positions 6-7")
    sex_digit, year, month, dept2 = nir[0], nir[1:3], nir[3:5], nir[5:7]
    if sex_digit in ("0", "9"):
        raise InvalidNir(value, f"the first digit (sex) cannot be {sex_digit}")
    month_number = int(month)
    if not (1 <= month_number <= 12 or month_number in (20, 50) or 30 <= month_number <= 42):
        raise InvalidNir(value, f"{month} is not a month of birth")
    if dept2 == "00":
        raise InvalidNir(value, "department 00 does not exist")
    if dept2 in _OVERSEAS_PREFIXES:
        department, commune = nir[5:8], nir[8:10]
    else:
        department, commune = dept2, nir[7:10]
    order = nir[10:13]
    if order == "000":
        raise InvalidNir(value, "the order number 000 is never assigned")
    key = nir[13:]
    expected = nir_key(nir[:13])
    if key != expected:
        raise InvalidNir(value, f"wrong key {key} (the body gives {expected})")
    return NirParts(sex_digit, year, month, department, commune, order, key)


def is_valid_nir(value: str) -> bool:
    """True if ``value`` is a well-formed NIR/NIA with the right key (see :func:`parse_nir`)."""
    try:
        parse_nir(value)
    except InvalidNir:
        return False
    return True


def build_nir(
    sex: Literal["male", "female"], birth_year: int, birth_month: int, birth_place: str, order: int
) -> str:
    """Compose a NIR from INS traits: sex, year and month of birth, INSEE birth place code, order number.

    ``birth_place`` is the 5-character INSEE code of the birth commune (``2A004``, ``97105``…) or ``99``
    followed by the 3-digit INSEE country code. Used to build synthetic identities; the result always
    passes :func:`parse_nir`.
    """
    if sex not in ("male", "female"):
        raise ValueError(f"sex must be 'male' or 'female', not {sex!r}")
    if not 1 <= birth_month <= 12:
        raise ValueError(f"birth month {birth_month} is not 1-12")
    if not 1 <= order <= 999:
        raise ValueError(f"order number {order} is not 1-999")
    place = birth_place.upper()
    if not re.match(r"^(?:[0-9]{2}|2[AB])[0-9]{3}$", place) or place.startswith("00"):
        raise ValueError(f"birth place {birth_place!r} is not a 5-character INSEE code")
    body = f"{'1' if sex == 'male' else '2'}{birth_year % 100:02d}{birth_month:02d}{place}{order:03d}"
    return body + nir_key(body)
