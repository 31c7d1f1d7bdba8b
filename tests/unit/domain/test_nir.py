"""NIR / NIA: key algorithm, parsing, INS OIDs (digest §1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hygie.domain.identity import (
    INS_NIA_SYSTEM,
    INS_NIR_DEMO_SYSTEM,
    INS_NIR_SYSTEM,
    INS_NIR_TEST_SYSTEM,
    InvalidNir,
    build_nir,
    is_valid_nir,
    nir_key,
    parse_nir,
)

VALID = ["295109912611193", "253072B07300470", "253072A07300443", "285044523412351", "178032A00400104"]


@pytest.mark.parametrize("nir", VALID)
def test_digest_vectors_are_valid(nir: str) -> None:
    assert is_valid_nir(nir)
    assert nir_key(nir[:13]) == nir[13:]


def test_wrong_key_is_rejected_with_reason() -> None:
    assert not is_valid_nir("295109912611199")
    with pytest.raises(InvalidNir, match="wrong key 99") as excinfo:
        parse_nir("295109912611199")
    assert isinstance(excinfo.value, ValueError)
    assert excinfo.value.reason.startswith("wrong key")


def test_worked_example_orleans() -> None:
    assert nir_key("2850445234123") == "51"
    parts = parse_nir("2 85 04 45 234 123 51")
    assert parts.sex == "female"
    assert parts.birth_year == "85"
    assert parts.birth_month == 4
    assert parts.department == "45"
    assert parts.commune == "234"
    assert parts.birth_place_code == "45234"
    assert parts.order == "123"
    assert parts.key == "51"
    assert str(parts) == "285044523412351"


def test_corsica_ajaccio() -> None:
    assert nir_key("178032A004001") == "04"
    parts = parse_nir("178032a00400104")
    assert parts.department == "2A"
    assert parts.birth_place_code == "2A004"
    assert parts.sex == "male"
    # 2A and 2B give different keys for the same digits.
    assert nir_key("253072A073004") == "43"
    assert nir_key("253072B073004") == "70"


def test_born_abroad_and_overseas() -> None:
    abroad = parse_nir("295109912611193")
    assert abroad.born_abroad
    assert abroad.commune == "126"
    overseas = parse_nir(build_nir("male", 1958, 11, "97411", 212))
    assert overseas.overseas
    assert overseas.department == "974"
    assert overseas.commune == "11"
    assert overseas.birth_place_code == "97411"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("28504452341235", "15 characters"),
        ("2850445234123511", "15 characters"),
        ("28504452X412351", "only digits"),
        ("285042C23412351", "only digits"),
        ("085044523412351", "first digit"),
        ("285134523412351", "not a month"),
        ("285040023412351", "department 00"),
        ("285044523400051", "order number"),
    ],
)
def test_malformed_values_give_a_reason(value: str, reason: str) -> None:
    with pytest.raises(InvalidNir, match=reason):
        parse_nir(value)
    assert not is_valid_nir(value)


def test_incomplete_month_codes_are_accepted() -> None:
    body = "1852045234123"
    parts = parse_nir(body + nir_key(body))
    assert parts.birth_month is None


def test_malformed_body_for_key() -> None:
    with pytest.raises(InvalidNir):
        nir_key("12345")
    with pytest.raises(InvalidNir):
        nir_key("18503ZZ004001")


def test_oid_constants() -> None:
    assert INS_NIR_SYSTEM == "urn:oid:1.2.250.1.213.1.4.8"
    assert INS_NIA_SYSTEM == "urn:oid:1.2.250.1.213.1.4.9"
    assert INS_NIR_TEST_SYSTEM == "urn:oid:1.2.250.1.213.1.4.10"
    assert INS_NIR_DEMO_SYSTEM == "urn:oid:1.2.250.1.213.1.4.11"


def test_build_nir_rejects_bad_traits() -> None:
    with pytest.raises(ValueError, match="month"):
        build_nir("female", 1985, 13, "45234", 1)
    with pytest.raises(ValueError, match="order"):
        build_nir("female", 1985, 4, "45234", 0)
    with pytest.raises(ValueError, match="INSEE"):
        build_nir("female", 1985, 4, "452", 1)


_departments = st.one_of(
    st.integers(1, 95).filter(lambda d: d != 20).map(lambda d: f"{d:02d}"),
    st.sampled_from(["2A", "2B"]),
)


@st.composite
def nir_bodies(draw: st.DrawFn) -> str:
    """13-character NIR bodies: metropolitan (incl. Corsica), overseas (3-digit department) or abroad."""
    sex = draw(st.sampled_from("12"))
    year = draw(st.integers(0, 99))
    month = draw(st.integers(1, 12))
    kind = draw(st.sampled_from(["metro", "overseas", "abroad"]))
    if kind == "metro":
        place = draw(_departments) + f"{draw(st.integers(1, 999)):03d}"
    elif kind == "overseas":
        place = draw(st.sampled_from(["971", "972", "973", "974", "976"])) + f"{draw(st.integers(1, 99)):02d}"
    else:
        place = "99" + f"{draw(st.integers(100, 999)):03d}"
    order = draw(st.integers(1, 999))
    return f"{sex}{year:02d}{month:02d}{place}{order:03d}"


@given(nir_bodies())
def test_generated_body_with_its_key_validates(body: str) -> None:
    nir = body + nir_key(body)
    assert is_valid_nir(nir)
    assert 1 <= int(nir[13:]) <= 97
    assert parse_nir(nir).body == body


@given(nir_bodies(), st.integers(0, 14), st.integers(1, 9))
def test_single_digit_change_invalidates(body: str, position: int, delta: int) -> None:
    nir = body + nir_key(body)
    if not nir[position].isdigit():
        return  # the letter of 2A/2B is not a digit to change
    changed = nir[:position] + str((int(nir[position]) + delta) % 10) + nir[position + 1 :]
    assert not is_valid_nir(changed)
