"""Proof Key for Code Exchange (RFC 7636), S256 only: ``plain`` is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

__all__ = ["challenge_of", "valid_challenge", "verify"]

_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def challenge_of(verifier: str) -> str:
    """BASE64URL(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def valid_challenge(challenge: str) -> bool:
    return bool(_CHALLENGE.match(challenge))


def verify(verifier: str | None, challenge: str) -> bool:
    """True when ``verifier`` is well-formed and hashes to ``challenge`` (constant-time compare)."""
    if not verifier or not _VERIFIER.match(verifier):
        return False
    return hmac.compare_digest(challenge_of(verifier), challenge)
