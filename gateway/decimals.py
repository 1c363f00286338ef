"""Decimal strings at the edge <-> integer ticks and lots inside the venue. Never floats.

A price is cash-token units per note; a quantity is notes. Conversion is exact (``Fraction``):
a value that is not a whole number of ticks/lots is rejected, never rounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from functools import lru_cache

from gateway.errors import ApiError
from gateway.ports import Listing

MAX_TEXT = 64
MAX_UNITS = 10**15  # largest tick or lot count accepted (engine ints stay far from any limit)
_PLAIN = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True, slots=True)
class Scale:
    price_step: Fraction  # cash per note for one tick
    qty_step: Fraction  # notes per lot


@lru_cache(maxsize=1024)
def _scale(tick_size: int, lot_size: int, cash_decimals: int, token_decimals: int) -> Scale:
    qty_step = Fraction(lot_size, 10**token_decimals)
    price_step = Fraction(tick_size, 10**cash_decimals) / qty_step
    return Scale(price_step=price_step, qty_step=qty_step)


def scale_of(listing: Listing) -> Scale:
    spec = listing.spec
    return _scale(spec.tick_size, spec.lot_size, listing.cash_decimals, listing.token_decimals)


def parse_decimal(text: object, field: str) -> Fraction:
    """A plain decimal string (``"12.5"``) as an exact fraction; anything else is INVALID_DECIMAL."""
    if not isinstance(text, str):
        raise ApiError("INVALID_DECIMAL", f"{field} must be a decimal string like \"12.34\"")
    if len(text) > MAX_TEXT:
        raise ApiError("VALUE_TOO_LARGE", f"{field} has more than {MAX_TEXT} characters")
    if not _PLAIN.fullmatch(text):
        raise ApiError(
            "INVALID_DECIMAL",
            f"{field} must be a plain decimal string like \"12.34\" (no exponent, sign +, spaces, NaN or Infinity)",
        )
    return Fraction(text)


def _to_units(value: Fraction, step: Fraction, field: str, *, wrong: str, invalid: str) -> int:
    if value <= 0:
        raise ApiError(invalid, f"{field} must be positive")
    units = value / step
    if units.denominator != 1:
        unit = "tick" if wrong == "WRONG_TICK" else "lot"
        raise ApiError(wrong, f"{field} must be a whole multiple of the {unit} size {format_fraction(step)}")
    if units.numerator > MAX_UNITS:
        raise ApiError("VALUE_TOO_LARGE", f"{field} is too large")
    return units.numerator


@lru_cache(maxsize=65536)
def _units(text: str, step: Fraction, field: str, wrong: str, invalid: str) -> int:
    # cached: order flow repeats the same few prices and sizes (refusals raise, so are not cached)
    return _to_units(parse_decimal(text, field), step, field, wrong=wrong, invalid=invalid)


def parse_price(text: object, listing: Listing, field: str = "price") -> int:
    if not isinstance(text, str):
        parse_decimal(text, field)  # raises INVALID_DECIMAL
    return _units(str(text), scale_of(listing).price_step, field, "WRONG_TICK", "INVALID_PRICE")


def parse_qty(text: object, listing: Listing, field: str = "qty") -> int:
    if not isinstance(text, str):
        parse_decimal(text, field)
    return _units(str(text), scale_of(listing).qty_step, field, "WRONG_LOT", "INVALID_QUANTITY")


def format_fraction(value: Fraction) -> str:
    """Exact decimal text when the fraction terminates, otherwise rounded to 30 places."""
    with localcontext() as ctx:
        ctx.prec = 80
        dec = Decimal(value.numerator) / Decimal(value.denominator)
        exponent = dec.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -30:
            dec = dec.quantize(Decimal(1).scaleb(-30))
        text = format(dec.normalize(), "f")
    return text


def _places(step: Fraction) -> int | None:
    """Decimal places that show every multiple of ``step`` exactly (0.05 -> 2, 1 -> 0), or None
    when the step has no finite decimal expansion (e.g. a third)."""
    denominator = step.denominator
    twos = fives = 0
    while denominator % 2 == 0:
        denominator //= 2
        twos += 1
    while denominator % 5 == 0:
        denominator //= 5
        fives += 1
    return max(twos, fives) if denominator == 1 else None


@lru_cache(maxsize=65536)
def _format(units: int, step: Fraction) -> str:
    """At the instrument's precision ("45010.00" for a 0.01 tick, "3.0" for a 0.1 lot): every
    price of a book has the same number of decimals; exact either way."""
    places = _places(step)
    if places is None:
        return format_fraction(step * units)
    value = step * units
    with localcontext() as ctx:
        ctx.prec = 80
        dec = Decimal(value.numerator) / Decimal(value.denominator)
        return format(dec.quantize(Decimal(1).scaleb(-places)), "f")


def format_price(ticks: int, listing: Listing) -> str:
    return _format(ticks, scale_of(listing).price_step)


def format_qty(lots: int, listing: Listing) -> str:
    return _format(lots, scale_of(listing).qty_step)
