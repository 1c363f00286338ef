"""History reads: a trade query with a time window and an opaque cursor, one page of results, and
the final state of an order.

Trades are paged newest first by ``trade_id``. Trade ids come from one engine counter in command
order, so a cursor ("only trades older than id N") is stable while new trades arrive: they are all
newer than any page already served, and paging through a history yields every trade exactly once.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from engine import OrderType, Side, TimeInForce
from market.model import OrderStatus

MAX_PAGE = 1000
_CURSOR_PREFIX = "t1:"


class CursorError(ValueError):
    """A cursor that this venue did not issue (or that was altered)."""


class HistoricTrade(Protocol):
    """What paging needs from a trade (``market.Trade`` has it)."""

    @property
    def trade_id(self) -> int: ...

    @property
    def symbol(self) -> str: ...

    @property
    def ts(self) -> int: ...

    @property
    def buyer(self) -> str: ...

    @property
    def seller(self) -> str: ...


T = TypeVar("T")
TradeT = TypeVar("TradeT", bound=HistoricTrade)


def encode_cursor(trade_id: int) -> str:
    """The cursor that continues after (older than) ``trade_id``."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{trade_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The trade id a cursor continues after; ``CursorError`` if it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CursorError("cursor is not one this venue issued") from None
    digits = text.removeprefix(_CURSOR_PREFIX)
    if digits == text or not digits.isdigit() or len(digits) > 19 or int(digits) < 1:
        raise CursorError("cursor is not one this venue issued")
    return int(digits)


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeQuery:
    """Trades newest first, optionally of one instrument and/or one participant (either side), in
    ``since_ts <= ts < until_ts`` (ns since the epoch), older than ``before_id`` (a decoded cursor)."""

    symbol: str | None = None
    participant: str | None = None
    since_ts: int | None = None
    until_ts: int | None = None
    before_id: int | None = None
    limit: int = 100

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise ValueError(f"limit must be within 1..{MAX_PAGE}, not {self.limit}")

    def matches(self, trade: HistoricTrade) -> bool:
        return (
            (self.symbol is None or trade.symbol == self.symbol)
            and (self.participant is None or self.participant in (trade.buyer, trade.seller))
            and (self.since_ts is None or trade.ts >= self.since_ts)
            and (self.until_ts is None or trade.ts < self.until_ts)
            and (self.before_id is None or trade.trade_id < self.before_id)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Page(Generic[T]):
    """One page of a history; ``next_cursor`` is None on the last page."""

    items: tuple[T, ...]
    next_cursor: str | None = None


def page_of(newest_first: Iterable[TradeT], query: TradeQuery) -> Page[TradeT]:
    """The page ``query`` selects from trades given newest first (an in-memory history)."""
    items: list[TradeT] = []
    for trade in newest_first:
        if query.matches(trade):
            if len(items) == query.limit:
                return Page(items=tuple(items), next_cursor=encode_cursor(items[-1].trade_id))
            items.append(trade)
    return Page(items=tuple(items))


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRecord:
    """An order as it stands now, on the book or finished. Quantities in lots, prices in ticks."""

    order_id: int
    client_order_id: str
    participant: str
    symbol: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    price: int | None  # None: market order without protection
    qty: int  # total
    filled: int
    remaining: int  # still open on the book (0 once finished)
    state: OrderStatus
    reason: str | None  # why it finished early: "user", "mass_cancel", "ioc_remainder", "expired", ...
    expire_ts: int | None
    accepted_ts: int
    updated_ts: int
