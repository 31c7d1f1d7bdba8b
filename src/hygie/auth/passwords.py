"""Password hashing (argon2id) and the password policy.

Hashes are argon2id (RFC 9106) through argon2-cffi, in PHC string form
(``$argon2id$v=19$m=19456,t=3,p=1$salt$hash``): the parameters travel with each hash, so they can
be raised later and old hashes upgraded at the next successful login (:func:`needs_rehash`).

Parameters, chosen for a 2-core server:

* ``memory_cost`` 19 MiB (19 456 KiB) — the OWASP floor for argon2id; memory is what makes a
  GPU/ASIC attack expensive, and 19 MiB per login keeps a burst of concurrent logins far below
  the server's RAM;
* ``time_cost`` 3 passes — one above that floor, to land in the 50–100 ms target;
* ``parallelism`` 1 lane — a login occupies one core, so two logins hash side by side on two
  cores instead of each fighting for both.

Measured with :func:`measure_hash_ms` on the project's 2-core machine: a median of 50–90 ms per
hash (51 ms at a load of 4, 47–88 ms at a load of 7, the cores shared with a benchmark). Slow
enough to make an offline dictionary attack costly, fast enough that a login is not noticeably
delayed. Re-measure after changing a parameter: ``python -c "from hygie.auth.passwords import
measure_hash_ms; print(measure_hash_ms())"``.

The policy (:func:`check_password_policy`) answers in French, for the account screens.
"""

from __future__ import annotations

import string
import time
import unicodedata

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "MAX_LENGTH",
    "MIN_LENGTH",
    "check_password_policy",
    "dummy_verify",
    "hash_password",
    "measure_hash_ms",
    "needs_rehash",
    "verify_password",
]

TIME_COST = 3
MEMORY_COST_KIB = 19_456
PARALLELISM = 1

MIN_LENGTH = 12
MAX_LENGTH = 1024  # bounds the work an over-long submission costs (and stays far above any real use)

_HASHER = PasswordHasher(
    time_cost=TIME_COST,
    memory_cost=MEMORY_COST_KIB,
    parallelism=PARALLELISM,
    hash_len=32,
    salt_len=16,
    type=Type.ID,
)

_dummy_hash: str | None = None


def hash_password(password: str) -> str:
    """The argon2id PHC string for ``password`` (a fresh random salt each time)."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``.

    The comparison is the library's (constant time). A mismatch, a malformed or foreign hash all
    answer False: a caller never has to tell these apart, and must never leak which it was.
    """
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (or cannot be read).

    Call it after a successful :func:`verify_password` and store :func:`hash_password` of the
    password just checked: that upgrades old hashes without asking anyone for anything.
    """
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


def dummy_verify(password: str) -> None:
    """Spend the time a real verification would, for a login that has no account.

    Without it, "unknown login" would answer in microseconds and "wrong password" in ~70 ms:
    the timing alone would tell an attacker which logins exist.
    """
    global _dummy_hash  # noqa: PLW0603 — one hash made lazily, then reused
    if _dummy_hash is None:
        _dummy_hash = hash_password("hygie-dummy-password-for-timing")
    verify_password(_dummy_hash, password)


def measure_hash_ms(rounds: int = 5) -> float:
    """The median time, in milliseconds, to hash a password with today's parameters."""
    hash_password("warm-up")
    timings = []
    for _ in range(max(1, rounds)):
        start = time.perf_counter()
        hash_password("correct horse battery staple")
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    return timings[len(timings) // 2]


# A deliberately small list: the passwords (and their stems, see ``_stem``) that come first in
# every cracking dictionary, French ones included. The length rule already rules out most of the
# short ones; they stay so that "azerty" + "123456" (the stem rule) is caught.
_COMMON = frozenset(
    {
        "123456789012",
        "1234567890123",
        "111111111111",
        "000000000000",
        "123123123123",
        "abcdefghijkl",
        "abc123abc123",
        "password",
        "passw0rd",
        "motdepasse",
        "mot de passe",
        "monmotdepasse",
        "azerty",
        "azertyuiop",
        "azertyuiopqsdfghjklm",
        "qwerty",
        "qwertyuiop",
        "qwertyuiopasdfghjkl",
        "aqwzsxedcrfv",
        "azertyazerty",
        "qwertyqwerty",
        "bonjour",
        "bonjourbonjour",
        "soleil",
        "doudou",
        "chouchou",
        "loulou",
        "nicolas",
        "camille",
        "marseille",
        "paris",
        "jetaime",
        "jetaimejetaime",
        "coucou",
        "tintin",
        "chocolat",
        "football",
        "princesse",
        "iloveyou",
        "letmein",
        "welcome",
        "bienvenue",
        "admin",
        "administrateur",
        "administrator",
        "changeme",
        "changezmoi",
        "secret",
        "motdepassesecret",
        "hygie",
        "hygiesante",
        "sante",
        "santé",
        "medecin",
        "médecin",
        "docteur",
        "hopital",
        "hôpital",
        "infirmiere",
        "infirmière",
        "pharmacie",
        "patient",
        "dossiermedical",
        "monespacesante",
        "mon espace santé",
        "carte vitale",
        "cartevitale",
        "sunshine",
        "dragon",
        "monkey",
        "master",
        "superman",
        "batman",
    }
)

_EDGE_JUNK = string.digits + string.punctuation + string.whitespace


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _stem(folded: str) -> str:
    """The password less the digits and symbols around it: "Azerty2024!!" → "azerty"."""
    return folded.strip(_EDGE_JUNK)


def check_password_policy(password: str, login: str) -> list[str]:
    """The reasons, in French, why ``password`` is refused for ``login``; empty when it is fine.

    Rules: at least ``MIN_LENGTH`` characters (and at most ``MAX_LENGTH``); not the login and not
    containing it (nor the local part of an e-mail login); not a common password, even dressed
    with digits or symbols around it; more than two different characters.
    """
    problems: list[str] = []
    length = len(unicodedata.normalize("NFC", password))
    if length < MIN_LENGTH:
        problems.append(f"Le mot de passe doit comporter au moins {MIN_LENGTH} caractères.")
    if length > MAX_LENGTH:
        problems.append(f"Le mot de passe ne doit pas dépasser {MAX_LENGTH} caractères.")

    folded = _fold(password)
    login_folded = _fold(login).strip()
    login_parts = {login_folded}
    if "@" in login_folded:
        login_parts.add(login_folded.split("@", 1)[0])
    if any(part and (part == folded or (len(part) >= 4 and part in folded)) for part in login_parts):
        problems.append("Le mot de passe ne doit pas être l'identifiant ni le contenir.")

    if folded in _COMMON or _stem(folded) in _COMMON:
        problems.append("Ce mot de passe est trop courant : choisissez-en un autre.")
    elif password and len(set(folded)) <= 2:
        problems.append("Le mot de passe doit comporter plus de deux caractères différents.")
    return problems
