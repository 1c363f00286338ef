"""Commands into the engine and events out of it. All immutable.

Every command carries ``ts`` (integer nanoseconds, supplied by the sequencer: the engine never
reads a clock). Every event carries ``seq``, the engine-global event sequence number; market-data
events (book deltas, trades, status) also carry ``md_seq``, a per-instrument sequence that lets a
subscriber detect gaps and resync from an L2 snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, unique

from engine.codes import CancelReason, ResultCode
from engine.instrument import InstrumentSpec, InstrumentStatus


@unique
class Side(IntEnum):
    BUY = 1
    SELL = 2

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


@unique
class OrderType(IntEnum):
    LIMIT = 1
    MARKET = 2  # price = protection price (worst acceptable); None = the instrument band


@unique
class TimeInForce(IntEnum):
    GTC = 1
    GTD = 2  # good till ``expire_ts``
    IOC = 3
    FOK = 4


@unique
class TradeOrigin(IntEnum):
    """How a trade came about; carried by every ``Fill``."""

    CONTINUOUS = 1  # matched in continuous trading
    AUCTION = 2  # executed at a call auction's uncross
    RFQ = 3  # an accepted request-for-quote, printed by ``Cross``
    BLOCK = 4  # a negotiated block trade, printed by ``Cross``


@unique
class StpMode(IntEnum):
    """Self-trade prevention, applied when taker and maker share a participant."""

    CANCEL_NEWEST = 1  # cancel the incoming (taker) remainder
    CANCEL_OLDEST = 2  # cancel the resting (maker) order, keep matching
    CANCEL_BOTH = 3
    DECREMENT = 4  # reduce both by the smaller quantity, no trade; cancel whichever reaches zero


# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True, kw_only=True)
class AddInstrument:
    ts: int
    spec: InstrumentSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class SetInstrumentStatus:
    ts: int
    symbol: str
    status: InstrumentStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class NewOrder:
    ts: int
    participant: str
    symbol: str
    side: Side
    qty: int  # lots
    price: int | None = None  # ticks; protection price for MARKET
    order_type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    expire_ts: int | None = None  # GTD only
    post_only: bool = False
    stp: StpMode = StpMode.CANCEL_NEWEST
    client_order_id: str = ""  # echoed, never interpreted
    session: str = ""  # for cancel-on-disconnect (mass cancel by session)
    attachment: str = ""  # opaque to the engine, journaled with the order (the investor's signed order)


@dataclass(frozen=True, slots=True, kw_only=True)
class AmendOrder:
    ts: int
    participant: str
    order_id: int
    price: int | None = None  # new price, None = unchanged
    qty: int | None = None  # new TOTAL quantity (FIX OrderQty semantics, includes filled), None = unchanged


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder:
    ts: int
    participant: str
    order_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MassCancel:
    ts: int
    participant: str
    symbol: str | None = None
    side: Side | None = None
    session: str | None = None  # only orders entered in this session
    reason: CancelReason = CancelReason.MASS_CANCEL


@dataclass(frozen=True, slots=True, kw_only=True)
class AdvanceTime:
    """Expire every GTD order with ``expire_ts <= ts``."""

    ts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Cross:
    """A negotiated trade printed outside the book (RFQ, block): one ``Fill``, the book untouched.

    Only in continuous trading (``OPEN``). The fill has ``aggressor=BUY``, the buyer as taker and
    the seller as maker, each with a fresh order id; the result's ``order_id`` is the buyer's."""

    ts: int
    symbol: str
    buyer: str
    seller: str
    price: int  # ticks
    qty: int  # lots
    origin: TradeOrigin  # RFQ or BLOCK
    buy_client_order_id: str = ""
    sell_client_order_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Uncross:
    """End a call auction: execute at the uncross price, then enter ``then`` (OPEN or CALL again).

    ``reference_price`` (ticks; the venue passes the NAV or the last trade) breaks ties between
    candidate prices, see ``engine/engine.py``."""

    ts: int
    symbol: str
    reference_price: int | None = None
    then: InstrumentStatus = InstrumentStatus.OPEN


Command = (
    AddInstrument
    | SetInstrumentStatus
    | NewOrder
    | AmendOrder
    | CancelOrder
    | MassCancel
    | AdvanceTime
    | Cross
    | Uncross
)


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentAdded:
    seq: int
    ts: int
    spec: InstrumentSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentStatusChanged:
    seq: int
    md_seq: int
    ts: int
    symbol: str
    status: InstrumentStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAccepted:
    seq: int
    ts: int
    order_id: int
    client_order_id: str
    participant: str
    session: str
    symbol: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    price: int | None
    qty: int
    expire_ts: int | None
    post_only: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected:
    seq: int
    ts: int
    participant: str
    client_order_id: str
    symbol: str
    order_id: int | None  # set for amend/cancel rejections
    code: ResultCode


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """One trade between a resting maker and an incoming taker; also the public trade print."""

    seq: int
    md_seq: int
    ts: int
    trade_id: int
    symbol: str
    price: int
    qty: int
    aggressor: Side
    maker_order_id: int
    maker_participant: str
    maker_remaining: int
    taker_order_id: int
    taker_participant: str
    taker_remaining: int
    origin: TradeOrigin = TradeOrigin.CONTINUOUS


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAmended:
    seq: int
    ts: int
    order_id: int
    participant: str
    symbol: str
    side: Side
    price: int
    qty: int  # new total quantity
    remaining: int
    priority_kept: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelled:
    seq: int
    ts: int
    order_id: int
    participant: str
    symbol: str
    side: Side
    remaining: int  # quantity that was open and is now cancelled
    reason: CancelReason


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderExpired:
    seq: int
    ts: int
    order_id: int
    participant: str
    symbol: str
    side: Side
    remaining: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BookDelta:
    """New aggregate at one price level; ``qty == 0`` means the level is gone."""

    seq: int
    md_seq: int
    ts: int
    symbol: str
    side: Side
    price: int
    qty: int
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class IndicativeUncross:
    """During a call: what an uncross would do now (after every change of the book or phase).

    ``price`` is None (and ``volume`` 0, no imbalance) when nothing would execute. The imbalance is
    the unexecuted surplus at ``price``: demand minus supply, on the side that has more."""

    seq: int
    md_seq: int
    ts: int
    symbol: str
    price: int | None
    volume: int
    imbalance_side: Side | None
    imbalance_qty: int


Event = (
    InstrumentAdded
    | InstrumentStatusChanged
    | OrderAccepted
    | OrderRejected
    | Fill
    | OrderAmended
    | OrderCancelled
    | OrderExpired
    | BookDelta
    | IndicativeUncross
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    code: ResultCode
    events: tuple[Event, ...]
    order_id: int | None = None  # the order the command created or addressed, when there is one


# ---------------------------------------------------------------- queries


@dataclass(frozen=True, slots=True, kw_only=True)
class Level:
    price: int
    qty: int
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class L2Snapshot:
    symbol: str
    md_seq: int  # deltas with md_seq > this apply on top
    status: InstrumentStatus
    bids: tuple[Level, ...]  # best first
    asks: tuple[Level, ...]  # best first


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderView:
    order_id: int
    client_order_id: str
    participant: str
    session: str
    symbol: str
    side: Side
    price: int
    qty: int  # total
    remaining: int
    tif: TimeInForce
    expire_ts: int | None
    accepted_ts: int
