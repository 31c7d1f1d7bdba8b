"""The prescription number and the QR code's payload (digest §8; both formats are [U], §11.7).

**Number.** The national format is not published, so Hygie chooses one, here and only here:
12 random characters of Crockford's base-32 alphabet (digits and capitals without I, L, O, U:
nothing to confuse when it is read aloud or typed from paper; 60 bits, so numbers are not
guessable one from another) followed by one check character, the *Luhn mod 32* key of the 12.
It is printed in groups, ``K7QF-3M2X-9DPA-R``. Luhn mod N catches every single mistyped character
and every swap of two adjacent characters but one pair per alphabet. Reading is forgiving the
Crockford way: lower case, spaces and hyphens are accepted, ``O`` reads ``0``, ``I`` and ``L``
read ``1``.

**QR payload.** ``HYGIE-ORD1:<number, 13 characters>:<secret, 26 characters>``, all in the QR
alphanumeric set (a compact code). The secret is 130 random bits generated with the
prescription; only its SHA-256 is stored (:func:`secret_hash`). Holding the paper (or the PDF) is
what opens the prescription at the pharmacy: the printed number alone needs a second fact, the
patient's birth date (see ``fhir/operations/eprescription.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

__all__ = [
    "ALPHABET",
    "PAYLOAD_PREFIX",
    "NumberError",
    "check_character",
    "display_number",
    "new_number",
    "new_secret",
    "normalise_number",
    "parse_payload",
    "payload",
    "secret_hash",
    "secret_matches",
]

ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base 32
BODY_LENGTH: Final = 12
SECRET_LENGTH: Final = 26  # 130 bits
PAYLOAD_PREFIX: Final = "HYGIE-ORD1"
_READS_AS: Final = str.maketrans({"O": "0", "I": "1", "L": "1"})
_INDEX: Final = {c: i for i, c in enumerate(ALPHABET)}


class NumberError(ValueError):
    """A number or a payload that cannot be one of ours (the message is for people, in French)."""


def check_character(body: str) -> str:
    """The Luhn mod 32 check character of ``body`` (characters of :data:`ALPHABET`)."""
    n = len(ALPHABET)
    factor = 2
    total = 0
    for char in reversed(body):
        addend = factor * _INDEX[char]
        factor = 1 if factor == 2 else 2
        total += addend // n + addend % n
    return ALPHABET[(n - total % n) % n]


def new_number() -> str:
    """A fresh prescription number in its canonical form (13 characters, no separators)."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return body + check_character(body)


def display_number(number: str) -> str:
    """The printed form: groups of four, the check character last (``K7QF-3M2X-9DPA-R``)."""
    return "-".join(number[i : i + 4] for i in range(0, len(number), 4))


def normalise_number(text: str) -> str:
    """The canonical number a person typed, or :class:`NumberError` saying what is wrong."""
    compact = "".join(text.split()).replace("-", "").upper().translate(_READS_AS)
    if len(compact) != BODY_LENGTH + 1:
        raise NumberError(
            f"Un numéro d'ordonnance compte {BODY_LENGTH + 1} caractères (il en a {len(compact)})."
        )
    wrong = sorted({c for c in compact if c not in _INDEX})
    if wrong:
        raise NumberError(f"Caractère(s) impossible(s) dans un numéro d'ordonnance : {', '.join(wrong)}.")
    if check_character(compact[:BODY_LENGTH]) != compact[BODY_LENGTH]:
        raise NumberError("Ce numéro d'ordonnance est mal recopié : la clé de contrôle ne correspond pas.")
    return compact


def new_secret() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(SECRET_LENGTH))


def payload(number: str, secret: str) -> str:
    """What the QR code carries."""
    return f"{PAYLOAD_PREFIX}:{number}:{secret}"


def parse_payload(text: str) -> tuple[str, str]:
    """(number, secret) from a scanned payload, or :class:`NumberError`."""
    parts = text.strip().split(":")
    if len(parts) != 3 or parts[0].upper() != PAYLOAD_PREFIX:
        raise NumberError("Ce code n'est pas celui d'une ordonnance numérique.")
    number = normalise_number(parts[1])
    secret = parts[2].upper()
    if len(secret) != SECRET_LENGTH or any(c not in _INDEX for c in secret):
        raise NumberError("Ce code d'ordonnance est incomplet ou abîmé : scannez-le à nouveau.")
    return number, secret


def secret_hash(secret: str) -> str:
    """What is stored of the secret: its SHA-256 (130 random bits need no slow hash)."""
    return "sha256:" + hashlib.sha256(secret.encode("ascii")).hexdigest()


def secret_matches(secret: str, stored: str) -> bool:
    return hmac.compare_digest(secret_hash(secret), stored)
