"""The nouns every stage of the venue exchanges. One declaration each; nobody re-declares them.

Units follow ``engine``: prices are integer ticks, quantities integer lots, amounts on chain are
integer token base units (``Listing.cash_amount`` / ``Listing.token_amount`` convert), and every
``*_ts`` is nanoseconds since the epoch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import NewType, Protocol

from engine import (
    AmendOrder,
    CancelReason,
    Fill,
    InstrumentSpec,
    NewOrder,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    Result,
    ResultCode,
    Side,
    TradeOrigin,
)
from market.codes import engine_message

ParticipantId = NewType("ParticipantId", str)
Wallet = NewType("Wallet", str)  # lower-case 0x-prefixed 20-byte hex address

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def normalise_wallet(address: str) -> Wallet:
    """The one canonical form of an EVM address inside the venue: lower-case hex. Settlement
    checksums at its own boundary. Raises ``ValueError`` for anything that is not an address."""
    if not isinstance(address, str) or not _ADDRESS.match(address):
        raise ValueError(f"not a 0x-prefixed 20-byte hex address: {address!r}")
    return Wallet(address.lower())


# ---------------------------------------------------------------- access


class ParticipantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"  # refused like a suspension (PARTICIPANT_SUSPENDED)


class Role(StrEnum):
    TRADER = "trader"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    key_id: str
    participant: str  # operators: the operator's name
    role: Role
    public_key: bytes  # raw 32-byte Ed25519 public key


# ---------------------------------------------------------------- instruments


@dataclass(frozen=True, slots=True, kw_only=True)
class Listing:
    """An instrument as the outside world sees it: the engine spec plus decimal/chain facts."""

    spec: InstrumentSpec
    name: str
    token_address: str
    cash_token_address: str
    token_decimals: int
    cash_decimals: int
    maturity_ts: int | None = None

    @property
    def symbol(self) -> str:
        return self.spec.symbol

    def cash_amount(self, price: int, qty: int) -> int:
        """Cash-token base units paid for ``qty`` lots at ``price`` ticks."""
        return self.spec.cash_amount(price, qty)

    def token_amount(self, qty: int) -> int:
        """Note-token base units in ``qty`` lots."""
        return self.spec.token_amount(qty)

    @property
    def price_increment(self) -> Decimal:
        """Price step per note, in cash-token units."""
        return Decimal(self.spec.tick_size) / (Decimal(10) ** self.cash_decimals) / self.quantity_increment

    @property
    def quantity_increment(self) -> Decimal:
        """Quantity step (one lot) in note-token units."""
        return Decimal(self.spec.lot_size) / (Decimal(10) ** self.token_decimals)


# ---------------------------------------------------------------- settlement state machine


class SettlementState(StrEnum):
    """PENDING -> SUBMITTED -> CONFIRMED -> FINAL, or FAILED (any non-terminal state may go to FAILED).

    FAILED is terminal and is only reported once the failure is decided on chain. CONFIRMED becomes
    FINAL once its block is final (only with finality tracking); a reorg before that sends the trade
    back to PENDING."""

    PENDING = "pending"  # queued
    SUBMITTED = "submitted"  # in a broadcast transaction
    CONFIRMED = "confirmed"  # settled on chain (with the requested confirmations)
    FAILED = "failed"  # not settled; ``reason`` says why
    FINAL = "final"  # settled, and the block is final (only with finality tracking)

    @property
    def terminal(self) -> bool:
        return self in (SettlementState.CONFIRMED, SettlementState.FAILED)


@dataclass(frozen=True, slots=True, kw_only=True)
class SettlementUpdate:
    """One state change of one trade's settlement (settlement service -> venue -> store)."""

    trade_id: int
    status: SettlementState
    tx_hash: str | None = None
    block: int | None = None
    gas_used: int | None = None  # this trade's share of the batch transaction's gas
    reason: str | None = None
    updated_ts: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SettlementNotice:
    """A settlement state change as subscribers see it: with the trade's symbol and parties."""

    trade_id: int
    symbol: str
    buyer: str  # participant ids
    seller: str
    state: SettlementState
    origin: TradeOrigin = TradeOrigin.CONTINUOUS
    tx_hash: str | None = None
    block: int | None = None
    gas_used: int | None = None
    reason: str | None = None


# ---------------------------------------------------------------- trades


class Match(Protocol):
    """What a trade is made of: an engine ``Fill`` (or a stored row of one)."""

    @property
    def trade_id(self) -> int: ...
    @property
    def symbol(self) -> str: ...
    @property
    def price(self) -> int: ...
    @property
    def qty(self) -> int: ...
    @property
    def aggressor(self) -> Side: ...
    @property
    def ts(self) -> int: ...
    @property
    def maker_order_id(self) -> int: ...
    @property
    def maker_participant(self) -> str: ...
    @property
    def taker_order_id(self) -> int: ...
    @property
    def taker_participant(self) -> str: ...
    @property
    def origin(self) -> TradeOrigin: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Trade:
    """One trade with its sides resolved. Build it with ``Trade.from_fill``: that is the only place
    in the venue that turns (aggressor, maker, taker) into (buyer, seller)."""

    trade_id: int
    symbol: str
    price: int  # ticks
    qty: int  # lots
    aggressor: Side
    ts: int
    buyer: str  # participant ids
    seller: str
    buy_order_id: int
    sell_order_id: int
    settlement: SettlementState = SettlementState.PENDING
    origin: TradeOrigin = TradeOrigin.CONTINUOUS  # how it printed: book, auction uncross, RFQ, block
    premium_bps: int | None = None  # signed premium (+) / discount (-) to the NAV in force; None: no NAV

    @classmethod
    def from_fill(cls, fill: Match, settlement: SettlementState = SettlementState.PENDING, *,
                  premium_bps: int | None = None) -> Trade:
        taker_buys = fill.aggressor is Side.BUY
        maker = (fill.maker_participant, fill.maker_order_id)
        taker = (fill.taker_participant, fill.taker_order_id)
        (buyer, buy_order), (seller, sell_order) = (taker, maker) if taker_buys else (maker, taker)
        return cls(trade_id=fill.trade_id, symbol=fill.symbol, price=fill.price, qty=fill.qty,
                   aggressor=fill.aggressor, ts=fill.ts, buyer=buyer, seller=seller,
                   buy_order_id=buy_order, sell_order_id=sell_order, settlement=settlement, origin=fill.origin,
                   premium_bps=premium_bps)

    @property
    def aggressor_buy(self) -> bool:
        return self.aggressor is Side.BUY

    def side_of(self, participant: str) -> Side | None:
        """The participant's side in this trade (a self-trade reports BUY), None if not a party."""
        if participant == self.buyer:
            return Side.BUY
        if participant == self.seller:
            return Side.SELL
        return None

    def order_of(self, side: Side) -> int:
        return self.buy_order_id if side is Side.BUY else self.sell_order_id

    def is_aggressor(self, side: Side) -> bool:
        """Whether the order on ``side`` was the taker."""
        return self.aggressor is side


# ---------------------------------------------------------------- rejections and acknowledgements


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    """A rejection before or by the engine: stable machine code (``market.codes``) + human message."""

    code: str  # e.g. "POST_ONLY_WOULD_CROSS", "WALLET_FROZEN", "INSUFFICIENT_CASH"
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """Exactly one of ``result`` (the engine ran the command; its code may still be a rejection)
    and ``rejection`` (stopped before the engine, e.g. eligibility) is set."""

    result: Result | None = None
    rejection: Rejection | None = None
    ack: OrderAck | None = None  # new orders and amends: the typed answer (also when refused)


class OrderStatus(StrEnum):
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # a GTD order past its expiry (history; an acknowledgement never says it)

    @classmethod
    def of(cls, filled: int, qty: int, cancelled: bool) -> OrderStatus:
        if cancelled:
            return cls.CANCELLED
        if filled >= qty > 0:
            return cls.FILLED
        return cls.PARTIALLY_FILLED if filled else cls.OPEN


@dataclass(frozen=True, slots=True, kw_only=True)
class AckFill:
    """A fill of the acknowledged order made by the acknowledged command."""

    trade_id: int
    price: int  # ticks
    qty: int  # lots
    taker: bool  # the acknowledged order was the aggressor
    ts: int
    premium_bps: int | None = None  # to the NAV in force (issue 14; set by the venue from its trade book)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAck:
    """The venue's typed answer to an order command (new or amend): what happened to that order
    within the command. ``rejection`` is set (and nothing else meaningful) when it was refused."""

    order_id: int | None
    client_order_id: str
    symbol: str
    side: Side | None
    status: OrderStatus | None  # None when rejected
    price: int | None  # ticks (after an amend: the new price)
    qty: int  # lots (after an amend: the new total)
    filled: int  # lots filled in total, as of this command
    remaining: int  # lots still open (0 when cancelled or filled)
    fills: tuple[AckFill, ...] = ()
    cancel_reason: CancelReason | None = None
    priority_kept: bool | None = None  # amends only
    ts: int = 0
    rejection: Rejection | None = None

    @property
    def ok(self) -> bool:
        return self.rejection is None

    @classmethod
    def rejected(cls, rejection: Rejection, *, client_order_id: str = "", symbol: str = "",
                 order_id: int | None = None) -> OrderAck:
        return cls(order_id=order_id, client_order_id=client_order_id, symbol=symbol, side=None, status=None,
                   price=None, qty=0, filled=0, remaining=0, rejection=rejection)

    @classmethod
    def answer(cls, cmd: object, result: Result, *, amend_client_order_id: str = "") -> OrderAck | None:
        """The acknowledgement of a new order or amend command ``cmd`` the engine answered with
        ``result`` (None for other commands, or when an accepted result lacks its event)."""
        if result.code is not ResultCode.OK:
            rejection = Rejection(code=result.code.name, message=engine_message(result.code))
            if isinstance(cmd, NewOrder):
                return cls.rejected(rejection, client_order_id=cmd.client_order_id, symbol=cmd.symbol)
            if isinstance(cmd, AmendOrder):
                return cls.rejected(rejection, client_order_id=amend_client_order_id, order_id=cmd.order_id)
            return None
        if isinstance(cmd, NewOrder):
            return cls.for_new_order(result)
        if isinstance(cmd, AmendOrder):
            return cls.for_amend(result, cmd.order_id, client_order_id=amend_client_order_id)
        return None

    @classmethod
    def for_new_order(cls, result: Result) -> OrderAck | None:
        """The acknowledgement of an accepted new order, from its command's events (None when the
        result holds no ``OrderAccepted``, which the caller treats as a venue fault)."""
        accepted = next((ev for ev in result.events if isinstance(ev, OrderAccepted)
                         and (result.order_id is None or ev.order_id == result.order_id)), None)
        if accepted is None:
            return None
        fills, filled, reason = _own_fills(result, accepted.order_id, after=0)
        remaining = 0 if reason is not None else max(accepted.qty - filled, 0)
        return cls(order_id=accepted.order_id, client_order_id=accepted.client_order_id, symbol=accepted.symbol,
                   side=accepted.side, status=OrderStatus.of(filled, accepted.qty, reason is not None),
                   price=accepted.price, qty=accepted.qty, filled=filled, remaining=remaining, fills=fills,
                   cancel_reason=reason, ts=accepted.ts)

    @classmethod
    def for_amend(cls, result: Result, order_id: int, *, client_order_id: str) -> OrderAck | None:
        """The acknowledgement of an accepted amend. A price change may cross and trade at once;
        those fills follow the amend event and are counted here."""
        events = result.events
        index = next((i for i, ev in enumerate(events) if isinstance(ev, OrderAmended) and ev.order_id == order_id),
                     None)
        if index is None:
            return None
        amended = events[index]
        assert isinstance(amended, OrderAmended)
        fills, traded_now, reason = _own_fills(result, order_id, after=index + 1)
        remaining = max(amended.remaining - traded_now, 0)
        filled = amended.qty - remaining
        cancelled = reason is not None
        return cls(order_id=order_id, client_order_id=client_order_id, symbol=amended.symbol, side=amended.side,
                   status=OrderStatus.of(filled, amended.qty, cancelled), price=amended.price, qty=amended.qty,
                   filled=filled, remaining=0 if cancelled else remaining, fills=fills,
                   cancel_reason=reason, priority_kept=amended.priority_kept,
                   ts=amended.ts)


def _own_fills(result: Result, order_id: int, *, after: int) -> tuple[tuple[AckFill, ...], int, CancelReason | None]:
    """Fills of ``order_id`` among the events from index ``after`` on, the lots they traded, and
    its cancel reason if the same command cancelled it. As taker only for new orders; an amended
    order that crosses is the taker of its fills too."""
    fills: list[AckFill] = []
    traded = 0
    reason: CancelReason | None = None
    for ev in result.events[after:]:
        if isinstance(ev, Fill) and order_id in (ev.taker_order_id, ev.maker_order_id):
            traded += ev.qty
            if ev.taker_order_id == order_id:
                fills.append(AckFill(trade_id=ev.trade_id, price=ev.price, qty=ev.qty, taker=True, ts=ev.ts))
        elif isinstance(ev, OrderCancelled) and ev.order_id == order_id:
            reason = ev.reason
    return tuple(fills), traded, reason


# ---------------------------------------------------------------- operator views


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantView:
    """A participant and its eligibility state for one instrument, for operators (built by the gate)."""

    participant: str
    name: str
    status: str  # "active" | "suspended"
    category: str  # e.g. "MIFID_PROFESSIONAL"
    jurisdiction: str  # ISO 3166 alpha-2
    kyc_expiry_ts: int | None  # ns since the epoch, like every *_ts in the venue
    wallet: str | None
    verified: bool  # on-chain identity registry
    frozen: bool  # on-chain wallet freeze
    note_balance: int  # token base units, from the chain cache
    cash_balance: int  # cash-token base units
    open_buy_reserved: int  # cash units reserved by open buys
    open_sell_reserved: int  # token units reserved by open sells
    eligible: bool
    reason: str | None  # first failing reason code when not eligible


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectionRecord:
    ts: int
    participant: str
    symbol: str
    code: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconciliationReport:
    ts: int | None  # when it last ran, None = never
    ok: bool
    differences: list[str]  # human-readable lines, empty when ok


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    id: int
    ts: int
    actor: str
    action: str
    details: str  # JSON text
    hash: str
