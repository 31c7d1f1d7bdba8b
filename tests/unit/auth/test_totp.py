"""TOTP (RFC 6238): provisioning URI, ±1 step window, replay refusal, with a fixed clock."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest

from hygie.auth.totp import STEP_SECONDS, current_step, new_secret, provisioning_uri, verify

# RFC 6238 Appendix B: the SHA-1 seed "12345678901234567890", as base32.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
NOW = 1_763_856_000.0  # a fixed instant (2025-11-23 00:00 UTC); 30-second aligned


def code_at(secret: str, at: float) -> str:
    return pyotp.TOTP(secret).at(at)


def test_new_secret_is_160_bits_of_base32_and_fresh() -> None:
    a, b = new_secret(), new_secret()
    assert a != b
    assert len(a) == 32
    assert len(base64.b32decode(a)) == 20


def test_provisioning_uri_names_issuer_account_and_secret() -> None:
    secret = new_secret()
    uri = provisioning_uri(secret, "alice@exemple.fr")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth"
    assert parts.netloc == "totp"
    assert unquote(parts.path) == "/Hygie:alice@exemple.fr"
    query = parse_qs(parts.query)
    assert query["secret"] == [secret]
    assert query["issuer"] == ["Hygie"]
    assert "Autre" in unquote(provisioning_uri(secret, "bob", issuer="Autre"))


def test_rfc6238_vector() -> None:
    # T = 59 s → 8-digit TOTP 94287082; the 6-digit code is its last six digits.
    assert verify(RFC_SECRET, "287082", last_used_step=None, at=59) == 1


def test_code_of_now_answers_its_step() -> None:
    secret = new_secret()
    step = current_step(NOW)
    assert step == int(NOW) // STEP_SECONDS
    assert verify(secret, code_at(secret, NOW), last_used_step=None, at=NOW) == step


def test_window_is_one_step_either_side() -> None:
    secret = new_secret()
    step = current_step(NOW)
    assert verify(secret, code_at(secret, NOW - 30), last_used_step=None, at=NOW) == step - 1
    assert verify(secret, code_at(secret, NOW + 30), last_used_step=None, at=NOW) == step + 1
    assert verify(secret, code_at(secret, NOW - 60), last_used_step=None, at=NOW) is None
    assert verify(secret, code_at(secret, NOW + 60), last_used_step=None, at=NOW) is None


def test_a_used_step_and_older_ones_are_refused() -> None:
    secret = new_secret()
    step = current_step(NOW)
    code = code_at(secret, NOW)
    assert verify(secret, code, last_used_step=step, at=NOW) is None  # replay
    assert verify(secret, code, last_used_step=step + 1, at=NOW) is None  # older than the last
    assert verify(secret, code, last_used_step=step - 1, at=NOW) == step
    # the previous step's code is refused once the current step was used
    assert verify(secret, code_at(secret, NOW - 30), last_used_step=step, at=NOW) is None


@pytest.mark.parametrize("bad", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12 34 5"])
def test_malformed_codes_are_refused(bad: str) -> None:
    assert verify(new_secret(), bad, last_used_step=None, at=NOW) is None


def test_spaces_inside_the_code_are_ignored() -> None:
    secret = new_secret()
    code = code_at(secret, NOW)
    assert verify(secret, f"{code[:3]} {code[3:]}", last_used_step=None, at=NOW) == current_step(NOW)


def test_wrong_code_is_refused() -> None:
    secret = new_secret()
    wrong = f"{(int(code_at(secret, NOW)) + 1) % 1_000_000:06d}"
    others = {code_at(secret, NOW + d) for d in (-30, 0, 30)}
    if wrong not in others:
        assert verify(secret, wrong, last_used_step=None, at=NOW) is None
