"""Instrument specification and status, integer units only.

Prices are integer ticks of ``tick_size`` cash-token base units per lot; quantities are integer
lots of ``lot_size`` note-token base units. So a fill of ``qty`` lots at ``price`` ticks moves
``qty * lot_size`` token units and ``price * tick_size * qty`` cash units: exact integers.
"""

from dataclasses import dataclass
from enum import IntEnum, unique


@unique
class InstrumentStatus(IntEnum):
    PRE_OPEN = 1
    OPEN = 2
    HALTED = 3
    CLOSED = 4  # closed or matured: terminal, resting orders cancelled
    CALL = 5  # call auction: limit GTC/GTD orders rest without matching until ``Uncross``


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentSpec:
    symbol: str
    tick_size: int  # cash-token base units per tick, per lot
    lot_size: int  # note-token base units per lot
    min_qty: int = 1  # lots
    max_qty: int = 1_000_000  # lots
    band_low: int = 1  # lowest accepted price, ticks (inclusive)
    band_high: int = 10**12  # highest accepted price, ticks (inclusive)
    status: InstrumentStatus = InstrumentStatus.OPEN

    def cash_amount(self, price: int, qty: int) -> int:
        return price * self.tick_size * qty

    def token_amount(self, qty: int) -> int:
        return qty * self.lot_size
