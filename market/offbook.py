"""Negotiated trades printed outside the book: requests for quotes and block trades, as the venue
(``venue.rfq``, ``venue.blocks``) reports them and the gateway renders them. Immutable snapshots.

    RFQ    OPEN -> FILLED (a quote was accepted and traded) | CANCELLED (by its requester or an
           operator) | EXPIRED
    quote  LIVE -> ACCEPTED | CANCELLED | EXPIRED | NOT_SELECTED (another quote traded, or the RFQ
           closed) | FAILED (accepted, but the venue refused the trade)
    block  PENDING (one side submitted) -> MATCHED (both agreed; traded) | CANCELLED | EXPIRED |
           FAILED (both agreed, but the venue refused the trade)

Units follow ``engine``: prices in ticks, quantities in lots, ``*_ts`` in nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from engine import Side
from market.codes import message
from market.model import Rejection


class OffBookRefused(Exception):
    """A request for quotes or block trade refused with a stable code (``market.codes``) and a
    specific message."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail or message(code)}")
        self.code = code
        self.message = detail or message(code)

    @classmethod
    def of(cls, rejection: Rejection) -> OffBookRefused:
        return cls(rejection.code, rejection.message)


class RfqState(StrEnum):
    OPEN = "open"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class QuoteState(StrEnum):
    LIVE = "live"
    ACCEPTED = "accepted"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    NOT_SELECTED = "not_selected"
    FAILED = "failed"


class BlockState(StrEnum):
    PENDING = "pending"
    MATCHED = "matched"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Quote:
    quote_id: int
    rfq_id: int
    responder: str
    side: Side  # the responder's side (the opposite of the request's)
    price: int
    qty: int
    ts: int
    expire_ts: int
    state: QuoteState
    trade_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Rfq:
    rfq_id: int
    requester: str
    symbol: str
    side: Side  # the requester's side
    qty: int
    min_qty: int
    ts: int
    expire_ts: int
    state: RfqState
    responders: tuple[str, ...]  # the participants asked to quote (never shown to the requester)
    quotes: tuple[Quote, ...] = ()
    trade_id: int | None = None
    reason: str | None = None  # why it closed, when a code says it (e.g. OFF_BOOK_CANCELLED_BY_OPERATOR)

    def visible_to(self, participant: str) -> bool:
        return participant == self.requester or participant in self.responders

    def view_for(self, participant: str) -> Rfq:
        """What ``participant`` may see: the requester sees every quote, a responder only its own;
        nobody but operators sees who else was asked."""
        if participant == self.requester:
            return _replace_quotes(self, self.quotes, responders=())
        return _replace_quotes(self, tuple(q for q in self.quotes if q.responder == participant), responders=())


def _replace_quotes(rfq: Rfq, quotes: tuple[Quote, ...], *, responders: tuple[str, ...]) -> Rfq:
    return Rfq(rfq_id=rfq.rfq_id, requester=rfq.requester, symbol=rfq.symbol, side=rfq.side, qty=rfq.qty,
               min_qty=rfq.min_qty, ts=rfq.ts, expire_ts=rfq.expire_ts, state=rfq.state, responders=responders,
               quotes=quotes, trade_id=rfq.trade_id, reason=rfq.reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockTrade:
    """A negotiated block between two named participants under their shared ``block_id``."""

    block_id: str
    symbol: str
    price: int
    qty: int
    buyer: str
    seller: str
    submitted_by: tuple[str, ...]  # the sides that confirmed so far, in order
    ts: int  # first submission
    expire_ts: int
    state: BlockState
    trade_id: int | None = None
    reason: str | None = None

    def parties(self) -> tuple[str, str]:
        return self.buyer, self.seller


@dataclass(frozen=True, slots=True, kw_only=True)
class OffBookNotice:
    """A change to push to one participant's private ``rfq`` or ``blocks`` channel."""

    participant: str
    channel: str  # "rfq" | "blocks"
    event: str  # e.g. "rfq_new", "quote", "rfq_state", "block_state"
    rfq: Rfq | None = None
    block: BlockTrade | None = None
