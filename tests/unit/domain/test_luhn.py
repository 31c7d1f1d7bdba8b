"""Luhn-keyed identifiers: RPPS, IdNat_PS, FINESS, SIREN, SIRET (digest §2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hygie.domain.identity import (
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


def test_digest_rpps_example() -> None:
    assert rpps_key("1000123456") == "5"
    assert is_valid_rpps("10001234565")
    assert idnat_ps_from_rpps("10001234565") == "810001234565"
    assert is_valid_rpps("99700218896")  # ANS test number
    assert idnat_ps_from_rpps("99700218896") == "899700218896"


@pytest.mark.parametrize("value", ["10001234566", "1000123456", "100012345650", "1000123456A", ""])
def test_invalid_rpps(value: str) -> None:
    assert not is_valid_rpps(value)


def test_idnat_ps_refuses_invalid_rpps() -> None:
    with pytest.raises(ValueError, match="not a valid RPPS"):
        idnat_ps_from_rpps("10001234566")


def test_finess_examples() -> None:
    assert is_valid_finess("750712184")
    assert not is_valid_finess("750712185")
    assert finess_key("75071218") == "4"
    assert not is_valid_finess("75071218")
    assert not is_valid_finess("7507121X4")


def test_finess_corsica_uses_19_and_18() -> None:
    key_2a = finess_key("2A000123")
    assert is_valid_finess("2A000123" + key_2a)
    assert is_valid_luhn("19000123" + key_2a)
    assert is_valid_finess("2b000123" + finess_key("2B000123"))


def test_siren_siret() -> None:
    assert is_valid_siret("73282932000074")
    assert is_valid_siren("732829320")
    assert not is_valid_siret("73282932000075")
    assert not is_valid_siren("732829321")
    assert not is_valid_siret("7328293200007")


def test_la_poste_siret_rule() -> None:
    # La Poste (SIREN 356000000): digit sum multiple of 5 instead of Luhn.
    assert is_valid_siret("35600000000010")
    assert not is_valid_siret("35600000000011")


def test_luhn_basics() -> None:
    assert luhn_checksum("79927398713") == 0
    assert luhn_key("7992739871") == "3"
    assert not is_valid_luhn("")
    with pytest.raises(ValueError, match="digits"):
        luhn_checksum("12a")
    with pytest.raises(ValueError, match="10 digits"):
        rpps_key("123")


@given(st.text("0123456789", min_size=10, max_size=10))
def test_any_rpps_body_gets_a_valid_key(body: str) -> None:
    assert is_valid_rpps(body + rpps_key(body))


@given(st.text("0123456789", min_size=10, max_size=10), st.integers(0, 10), st.integers(1, 9))
def test_single_digit_change_invalidates_rpps(body: str, position: int, delta: int) -> None:
    rpps = body + rpps_key(body)
    changed = rpps[:position] + str((int(rpps[position]) + delta) % 10) + rpps[position + 1 :]
    assert not is_valid_rpps(changed)


@given(
    st.one_of(st.integers(1, 95).map(lambda d: f"{d:02d}"), st.sampled_from(["2A", "2B"])),
    st.text("0123456789", min_size=5, max_size=5),
)
def test_any_finess_body_gets_a_valid_key(department: str, order: str) -> None:
    body = department + "0" + order
    assert is_valid_finess(body + finess_key(body))


@given(st.text("0123456789", min_size=13, max_size=13), st.integers(0, 13), st.integers(1, 9))
def test_single_digit_change_invalidates_siret(body: str, position: int, delta: int) -> None:
    if body.startswith("356000000"):
        return  # La Poste's rule is not Luhn
    siret = body + luhn_key(body)
    assert is_valid_siret(siret)
    changed = siret[:position] + str((int(siret[position]) + delta) % 10) + siret[position + 1 :]
    if not changed.startswith("356000000"):
        assert not is_valid_siret(changed)
