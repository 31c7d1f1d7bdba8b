"""TOTP second factor (RFC 6238) with pyotp: 6 digits, 30-second steps, HMAC-SHA1.

These are the defaults every authenticator app (FreeOTP, Aegis, Google Authenticator…) reads
from the ``otpauth://`` URI, so nothing is configurable here on purpose.

A code is accepted one step either side of now (RFC 6238 §5.2 recommends at most one step of
clock drift), and never twice: :func:`verify` answers the step the code belongs to, the caller
stores it, and passes it back as ``last_used_step`` next time; a code of that step or an earlier
one is refused, so a code seen over a shoulder or in a proxy log cannot be replayed.

The secret is a credential: never log it, nor a code.
"""

from __future__ import annotations

import time

import pyotp
import pyotp.utils

__all__ = ["DIGITS", "STEP_SECONDS", "WINDOW", "current_step", "new_secret", "provisioning_uri", "verify"]

DIGITS = 6
STEP_SECONDS = 30
WINDOW = 1  # steps accepted either side of the current one


def new_secret() -> str:
    """A fresh random secret: 160 bits (RFC 4226 §4's recommended length), in base32."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, login: str, issuer: str = "Hygie") -> str:
    """The ``otpauth://totp/…`` URI an authenticator app imports (as a QR code or by hand)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=login, issuer_name=issuer
    )


def current_step(at: float | None = None) -> int:
    """The RFC 6238 time step (``T``) at Unix time ``at`` (now by default)."""
    return int((time.time() if at is None else at) // STEP_SECONDS)


def verify(secret: str, code: str, *, last_used_step: int | None, at: float | None = None) -> int | None:
    """The step ``code`` is valid for, or None.

    ``code`` is checked against the steps ``now - 1 … now + 1`` (spaces ignored, as apps show
    "123 456"). A step at or before ``last_used_step`` is refused (replay). Every candidate step
    is compared, in constant time, so the answer's timing does not depend on which one matched.
    """
    code = code.replace(" ", "")
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    now_step = current_step(at)
    matched: int | None = None
    for step in range(now_step - WINDOW, now_step + WINDOW + 1):
        if pyotp.utils.strings_equal(code, totp.generate_otp(step)) and (
            last_used_step is None or step > last_used_step
        ):
            matched = step
    return matched
