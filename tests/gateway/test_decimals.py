from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.decimals import format_price, format_qty, parse_price, parse_qty
from gateway.errors import ApiError
from tests.gateway.fakes import make_listing

LISTING = make_listing()  # price step 0.01, quantity step 0.1


@pytest.mark.parametrize(("text", "ticks"), [("0.01", 1), ("1", 100), ("101.25", 10125), ("101.250000", 10125),
                                              ("007", 700)])
def test_price_converts_exactly(text: str, ticks: int) -> None:
    assert parse_price(text, LISTING) == ticks


@pytest.mark.parametrize(("text", "code"), [
    ("0.015", "WRONG_TICK"), ("-1", "INVALID_PRICE"), ("0", "INVALID_PRICE"), ("-0", "INVALID_PRICE"),
    ("NaN", "INVALID_DECIMAL"), ("Infinity", "INVALID_DECIMAL"), ("1e3", "INVALID_DECIMAL"),
    ("1E-2", "INVALID_DECIMAL"), (" 1", "INVALID_DECIMAL"), ("+1", "INVALID_DECIMAL"), ("1.", "INVALID_DECIMAL"),
    ("", "INVALID_DECIMAL"), ("0x10", "INVALID_DECIMAL"), ("1_000", "INVALID_DECIMAL"), ("١٢", "INVALID_DECIMAL"),
    ("1" * 65, "VALUE_TOO_LARGE"), ("1" + "0" * 40, "VALUE_TOO_LARGE"), ("0." + "0" * 50 + "1", "WRONG_TICK"),
])
def test_bad_prices_have_specific_codes(text: str, code: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_price(text, LISTING)
    assert err.value.code == code


@pytest.mark.parametrize(("text", "code"), [("0.15", "WRONG_LOT"), ("0", "INVALID_QUANTITY"),
                                            ("-3", "INVALID_QUANTITY"), ("nan", "INVALID_DECIMAL")])
def test_bad_quantities(text: str, code: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_qty(text, LISTING)
    assert err.value.code == code


def test_non_string_is_invalid_decimal() -> None:
    with pytest.raises(ApiError) as err:
        parse_price(1.5, LISTING)
    assert err.value.code == "INVALID_DECIMAL"


@given(st.integers(min_value=1, max_value=10**15))
def test_format_parse_round_trip(units: int) -> None:
    assert parse_price(format_price(units, LISTING), LISTING) == units
    assert parse_qty(format_qty(units, LISTING), LISTING) == units


def test_format_is_plain_decimal_at_the_instrument_precision() -> None:
    assert format_price(10125, LISTING) == "101.25"
    assert format_price(100, LISTING) == "1.00"  # a 0.01 tick shows two places
    assert format_qty(10, LISTING) == "1.0"  # a 0.1 lot shows one
    assert format_qty(3, LISTING) == "0.3"
    assert format_price(10**15, LISTING) == "10000000000000.00"  # no exponent, however large


def test_non_terminating_step_still_parses_exact_multiples() -> None:
    odd = make_listing(lot_size=3 * 10**17)  # 0.3 note per lot: a price step of 1/300 cash
    assert parse_qty("0.9", odd) == 3
    with pytest.raises(ApiError) as err:
        parse_qty("1", odd)
    assert err.value.code == "WRONG_LOT"
