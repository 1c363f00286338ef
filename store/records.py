"""Plain immutable records the repository returns (callers never hold ORM objects or sessions)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from engine import Side, TradeOrigin
from market.model import ParticipantStatus, Role, SettlementState, SettlementUpdate, Trade

# The venue's vocabulary (``market``) under the names the store's API has always used.
KeyRole = Role
SettlementStatus = SettlementState
__all__ = ["KeyRole", "ParticipantStatus", "Role", "SettlementState", "SettlementStatus", "SettlementUpdate", "Trade"]


class InstrumentState(StrEnum):
    PRE_OPEN = "pre_open"
    OPEN = "open"
    HALTED = "halted"
    CLOSED = "closed"
    CALL = "call"  # call auction (issue 15)


class OrderStatus(StrEnum):
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True, kw_only=True)
class Participant:
    id: str
    name: str
    status: ParticipantStatus
    investor_category: str  # e.g. "professional", "eligible_counterparty", "accredited", "qib"
    jurisdiction: str  # ISO 3166 alpha-2
    kyc_expiry: dt.date | None
    created_ts: int = 0
    signed_orders: bool = False  # signed mode: orders must carry the wallet's EIP-712 signature


@dataclass(frozen=True, slots=True, kw_only=True)
class Wallet:
    address: str
    participant_id: str
    created_ts: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyRecord:
    key_id: str
    participant: str
    role: KeyRole
    public_key: bytes  # raw 32-byte Ed25519
    created_ts: int = 0
    revoked_ts: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Instrument:
    symbol: str
    name: str
    token_address: str
    cash_token_address: str
    token_decimals: int
    cash_decimals: int
    tick_size: int
    lot_size: int
    min_qty: int
    max_qty: int
    band_low: int
    band_high: int
    status: InstrumentState
    maturity_ts: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredOrder:
    order_id: int
    client_order_id: str
    participant: str
    session: str
    symbol: str
    side: str  # "buy" / "sell"
    order_type: str
    tif: str
    price: int | None
    qty: int
    remaining: int
    filled: int
    status: OrderStatus
    expire_ts: int | None
    accepted_ts: int
    updated_ts: int
    cmd_seq: int
    reason: str | None = None  # why it left the book early: cancel reason ("user", ...) or "expired"
    signed_order: str | None = None  # the investor's signed order (JSON, ``market.signed`` wire form)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredTrade:
    trade_id: int
    symbol: str
    price: int
    qty: int
    aggressor: str
    maker_order_id: int
    maker_participant: str
    taker_order_id: int
    taker_participant: str
    ts: int
    settlement_status: SettlementStatus
    cmd_seq: int
    origin: str = "continuous"
    premium_bps: int | None = None  # to the NAV in force at the trade (``trade_premiums``); None: no NAV
    nav: str | None = None

    def to_trade(self) -> Trade:
        """This row as the venue's ``Trade`` (sides resolved by ``Trade.from_fill``, the one place)."""
        return Trade.from_fill(_StoredMatch(
            trade_id=self.trade_id, symbol=self.symbol, price=self.price, qty=self.qty,
            aggressor=Side.BUY if self.aggressor == "buy" else Side.SELL, ts=self.ts,
            maker_order_id=self.maker_order_id, maker_participant=self.maker_participant,
            taker_order_id=self.taker_order_id, taker_participant=self.taker_participant,
            origin=TradeOrigin[self.origin.upper()],
        ), self.settlement_status, premium_bps=self.premium_bps)

    @property
    def buyer(self) -> str:
        return self.to_trade().buyer

    @property
    def seller(self) -> str:
        return self.to_trade().seller


@dataclass(frozen=True, slots=True, kw_only=True)
class _StoredMatch:
    """A stored trade row read as the fill it was made from (the row keeps the aggressor as text)."""

    trade_id: int
    symbol: str
    price: int
    qty: int
    aggressor: Side
    ts: int
    maker_order_id: int
    maker_participant: str
    taker_order_id: int
    taker_participant: str
    origin: TradeOrigin


@dataclass(frozen=True, slots=True, kw_only=True)
class EligibilityDecision:
    ts: int
    participant: str
    symbol: str
    outcome: Outcome
    code: str  # stable code, e.g. "OK", "WALLET_FROZEN"
    message: str
    id: int | None = None  # assigned by the store


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    id: int
    ts: int
    actor: str
    action: str
    details: str  # canonical JSON text
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditVerification:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TradePremium:
    trade_id: int
    nav: str  # decimal text, price units
    premium_bps: int  # signed: + premium, - discount


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditAnchor:
    audit_id: int  # the audit entry whose hash was anchored (the head at the time)
    head_hash: str
    tx_hash: str
    block: int | None
    chain_id: int
    ts: int
    id: int | None = None  # assigned by the store
