"""SQLAlchemy 2 typed models. Integer ticks/lots/base units and integer nanosecond timestamps,
as in the engine; enums are stored as their lowercase names (readable in SQL, stable)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ParticipantRow(Base):
    __tablename__ = "participants"
    __table_args__ = (CheckConstraint("status IN ('active', 'suspended', 'closed')", name="status"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    investor_category: Mapped[str] = mapped_column(String(32))
    jurisdiction: Mapped[str] = mapped_column(String(8))
    kyc_expiry: Mapped[dt.date | None] = mapped_column(Date)
    created_ts: Mapped[int] = mapped_column(BigInteger)
    # signed mode (issue 16): every order must carry an order signed by the participant's wallet
    signed_orders: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa.false())


class WalletRow(Base):
    __tablename__ = "wallets"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)  # lowercase 0x-hex
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    created_ts: Mapped[int] = mapped_column(BigInteger)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("role IN ('trader', 'operator')", name="role"),)

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    participant: Mapped[str] = mapped_column(String(64), index=True)  # operators: the operator's name
    role: Mapped[str] = mapped_column(String(16))
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))  # raw Ed25519; the venue never holds secrets
    created_ts: Mapped[int] = mapped_column(BigInteger)
    revoked_ts: Mapped[int | None] = mapped_column(BigInteger)


class InstrumentRow(Base):
    __tablename__ = "instruments"
    __table_args__ = (CheckConstraint("status IN ('pre_open', 'open', 'halted', 'closed', 'call')", name="status"),)

    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    token_address: Mapped[str] = mapped_column(String(42))
    cash_token_address: Mapped[str] = mapped_column(String(42))
    token_decimals: Mapped[int] = mapped_column(Integer)
    cash_decimals: Mapped[int] = mapped_column(Integer)
    tick_size: Mapped[int] = mapped_column(BigInteger)
    lot_size: Mapped[int] = mapped_column(BigInteger)
    min_qty: Mapped[int] = mapped_column(BigInteger)
    max_qty: Mapped[int] = mapped_column(BigInteger)
    band_low: Mapped[int] = mapped_column(BigInteger)
    band_high: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    maturity_ts: Mapped[int | None] = mapped_column(BigInteger)


class ListingRulesRow(Base):
    """An instrument's eligibility and life-cycle rules (``venue.listings.ListingRules``) as canonical
    JSON: the rule set grows with the venue, a new rule needs no schema change."""

    __tablename__ = "listing_rules"

    symbol: Mapped[str] = mapped_column(ForeignKey("instruments.symbol"), primary_key=True)
    rules: Mapped[str] = mapped_column(Text)
    updated_ts: Mapped[int] = mapped_column(BigInteger)


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_participant_status", "participant", "status"),
        Index("ix_orders_symbol_status", "symbol", "status"),
    )

    order_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    client_order_id: Mapped[str] = mapped_column(String(64))
    participant: Mapped[str] = mapped_column(String(64))
    session: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    order_type: Mapped[str] = mapped_column(String(8))
    tif: Mapped[str] = mapped_column(String(4))
    price: Mapped[int | None] = mapped_column(BigInteger)  # None: market order without protection
    qty: Mapped[int] = mapped_column(BigInteger)  # total, lots
    remaining: Mapped[int] = mapped_column(BigInteger)  # open on the book, lots
    filled: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    expire_ts: Mapped[int | None] = mapped_column(BigInteger)
    accepted_ts: Mapped[int] = mapped_column(BigInteger)
    updated_ts: Mapped[int] = mapped_column(BigInteger)
    cmd_seq: Mapped[int] = mapped_column(BigInteger)  # journal command that created it
    reason: Mapped[str | None] = mapped_column(String(32))  # why it left the book early (cancel reason, expired)
    signed_order: Mapped[str | None] = mapped_column(Text)  # the investor's EIP-712 signed order (JSON), if any


class TradeRow(Base):
    """History pages are read newest first by ``trade_id`` within one instrument or one side's
    participant: the composite indexes serve those scans without a sort."""

    __tablename__ = "trades"
    __table_args__ = (
        Index("ix_trades_symbol_trade_id", "symbol", "trade_id"),
        Index("ix_trades_maker_participant_trade_id", "maker_participant", "trade_id"),
        Index("ix_trades_taker_participant_trade_id", "taker_participant", "trade_id"),
    )

    trade_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    symbol: Mapped[str] = mapped_column(String(32))
    price: Mapped[int] = mapped_column(BigInteger)
    qty: Mapped[int] = mapped_column(BigInteger)
    aggressor: Mapped[str] = mapped_column(String(4))
    maker_order_id: Mapped[int] = mapped_column(BigInteger)
    maker_participant: Mapped[str] = mapped_column(String(64))
    taker_order_id: Mapped[int] = mapped_column(BigInteger)
    taker_participant: Mapped[str] = mapped_column(String(64))
    ts: Mapped[int] = mapped_column(BigInteger, index=True)
    settlement_status: Mapped[str] = mapped_column(String(16))
    cmd_seq: Mapped[int] = mapped_column(BigInteger)
    # how it printed (``engine.TradeOrigin`` name, lower case): continuous, auction, rfq, block
    origin: Mapped[str] = mapped_column(String(12), default="continuous", server_default="continuous")


class SettlementRow(Base):
    """Latest settlement state per trade. No FK to trades: the trade projection is asynchronous
    and may land after the first settlement update."""

    __tablename__ = "settlements"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'submitted', 'confirmed', 'failed', 'final')", name="status"),
    )

    trade_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16), index=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block: Mapped[int | None] = mapped_column(BigInteger)
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    updated_ts: Mapped[int] = mapped_column(BigInteger)


class EligibilityDecisionRow(Base):
    __tablename__ = "eligibility_decisions"
    __table_args__ = (CheckConstraint("outcome IN ('accepted', 'rejected')", name="outcome"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger)
    participant: Mapped[str] = mapped_column(String(64), index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(64), index=True)
    message: Mapped[str] = mapped_column(Text)


class AuditRow(Base):
    """Hash-chained, append-only: ``hash = sha256(prev_hash + canonical record)``. ``prev_hash`` is
    unique, so two writers can never fork the chain; triggers refuse UPDATE and DELETE."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ts: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    details: Mapped[str] = mapped_column(Text)  # canonical JSON text: exactly what was hashed
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class ProjectionStateRow(Base):
    """How far the orders/trades projection has consumed the journal."""

    __tablename__ = "projection_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)


class TradePremiumRow(Base):
    """The NAV in force when a trade printed and the trade's premium (+) / discount (-) to it. Kept
    apart from ``trades`` (a projection of the journal, rebuilt from it): the NAV comes from the
    chain's attestations, not from the journal, so a rebuild must not lose it."""

    __tablename__ = "trade_premiums"

    trade_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    nav: Mapped[str] = mapped_column(String(40))  # decimal text, price units of the instrument
    premium_bps: Mapped[int] = mapped_column(Integer)


class AuditAnchorRow(Base):
    """An audit-chain head written on-chain: which entry, its hash, and the transaction carrying it."""

    __tablename__ = "audit_anchors"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    audit_id: Mapped[int] = mapped_column(BigInteger, index=True)
    head_hash: Mapped[str] = mapped_column(String(64))
    tx_hash: Mapped[str] = mapped_column(String(66))
    block: Mapped[int | None] = mapped_column(BigInteger)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[int] = mapped_column(BigInteger)
