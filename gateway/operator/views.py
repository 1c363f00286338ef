"""Operator API response models (typed in the OpenAPI) and their construction from venue values.

Prices and quantities are rendered by ``gateway.decimals`` like every other gateway answer: at the
instrument's precision (``400.50`` for a 0.01 tick). Token balances are base-unit integers as
decimal strings: 18-decimal balances exceed what a JSON number survives in JavaScript (2**53).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from engine import Fill, L2Snapshot, Level
from gateway import render
from gateway.decimals import format_price, format_qty
from gateway.ports import (
    AuditEntry,
    Listing,
    ParticipantView,
    ReconciliationReport,
    RejectionRecord,
    SettlementNotice,
    Trade,
)
from gateway.schemas import OriginText

SettlementText = Literal["pending", "submitted", "confirmed", "failed", "final"]


class OperatorLevel(BaseModel):
    price: str
    qty: str
    price_ticks: int
    qty_lots: int
    count: int


class OperatorInstrument(BaseModel):
    symbol: str
    name: str
    status: str
    md_seq: int
    bids: list[OperatorLevel]
    asks: list[OperatorLevel]
    last_price: str | None
    price_increment: str
    quantity_increment: str
    token_decimals: int
    cash_decimals: int
    tick_size: int
    lot_size: int
    min_qty: int
    max_qty: int
    band_low: int
    band_high: int
    token_address: str
    cash_token_address: str
    maturity_ts: int | None


class OperatorInstruments(BaseModel):
    instruments: list[OperatorInstrument]


class OperatorTrade(BaseModel):
    trade_id: int
    symbol: str
    price: str | None
    qty: str | None
    price_ticks: int
    qty_lots: int
    aggressor: Literal["buy", "sell"]
    origin: OriginText
    ts: int
    buyer: str
    seller: str
    settlement: SettlementText
    premium_bps: int | None = None  # to the NAV in force at the trade; None without a NAV


class OperatorTrades(BaseModel):
    trades: list[OperatorTrade]


class Notice(BaseModel):
    trade_id: int
    symbol: str
    buyer: str
    seller: str
    state: SettlementText
    tx_hash: str | None
    block: int | None
    gas_used: int | None
    reason: str | None


class Settlements(BaseModel):
    counts: dict[str, int]
    settlements: list[Notice]


class Participant(BaseModel):
    participant: str
    name: str
    status: str
    category: str
    jurisdiction: str
    kyc_expiry_ts: int | None
    wallet: str | None
    verified: bool
    frozen: bool
    note_balance: str  # base units
    cash_balance: str
    open_buy_reserved: str
    open_sell_reserved: str
    eligible: bool
    reason: str | None


class Participants(BaseModel):
    participants: list[Participant]


class Rejection(BaseModel):
    ts: int
    participant: str
    symbol: str
    code: str
    message: str


class Rejections(BaseModel):
    counts: dict[str, int]
    recent: list[Rejection]


class Reconciliation(BaseModel):
    ts: int | None
    ok: bool
    differences: list[str]


class AuditRecord(BaseModel):
    id: int
    ts: int
    actor: str
    action: str
    details: str
    hash: str


class Audit(BaseModel):
    chain_ok: bool
    entries: list[AuditRecord]


class FreezeResult(BaseModel):
    participant: str
    frozen: bool
    tx_hash: str


class Whoami(BaseModel):
    operator: str


class LoginCode(BaseModel):
    code: str
    path: str
    expires_in: int


class SessionToken(BaseModel):
    token: str
    operator: str
    expires_at: int


class Ok(BaseModel):
    ok: bool


# ---------------------------------------------------------------- construction


def _levels(levels: tuple[Level, ...], listing: Listing) -> list[OperatorLevel]:
    return [OperatorLevel(price=format_price(lv.price, listing), qty=format_qty(lv.qty, listing),
                          price_ticks=lv.price, qty_lots=lv.qty, count=lv.count) for lv in levels]


def instrument(listing: Listing, snap: L2Snapshot, last: Trade | None) -> OperatorInstrument:
    spec = listing.spec
    return OperatorInstrument(
        symbol=listing.symbol, name=listing.name, status=render.status_text(snap.status), md_seq=snap.md_seq,
        bids=_levels(snap.bids, listing), asks=_levels(snap.asks, listing),
        last_price=format_price(last.price, listing) if last else None,
        price_increment=format_price(1, listing), quantity_increment=format_qty(1, listing),
        token_decimals=listing.token_decimals, cash_decimals=listing.cash_decimals,
        tick_size=spec.tick_size, lot_size=spec.lot_size, min_qty=spec.min_qty, max_qty=spec.max_qty,
        band_low=spec.band_low, band_high=spec.band_high, token_address=listing.token_address,
        cash_token_address=listing.cash_token_address, maturity_ts=listing.maturity_ts,
    )


def trade(rec: Trade, listing: Listing | None) -> OperatorTrade:
    return OperatorTrade(
        trade_id=rec.trade_id, symbol=rec.symbol,
        price=format_price(rec.price, listing) if listing else None,
        qty=format_qty(rec.qty, listing) if listing else None,
        price_ticks=rec.price, qty_lots=rec.qty, aggressor="buy" if rec.aggressor_buy else "sell",
        origin=render.origin_text(rec.origin), ts=rec.ts, buyer=rec.buyer, seller=rec.seller,
        settlement=rec.settlement.value, premium_bps=rec.premium_bps,
    )


def fill_trade(fill: Fill, listing: Listing | None, printed: Trade | None = None) -> OperatorTrade:
    """A fresh fill as the operator's trade view (settlement pending until the venue says otherwise);
    ``printed``: the venue's trade of that fill, which carries its premium to NAV."""
    if printed is not None and printed.trade_id == fill.trade_id:
        return trade(printed, listing)
    return trade(Trade.from_fill(fill), listing)


def notice(n: SettlementNotice) -> Notice:
    return Notice(trade_id=n.trade_id, symbol=n.symbol, buyer=n.buyer, seller=n.seller, state=n.state.value,
                  tx_hash=n.tx_hash, block=n.block, gas_used=n.gas_used, reason=n.reason)


def participant(view: ParticipantView) -> Participant:
    return Participant(
        participant=view.participant, name=view.name, status=view.status, category=view.category,
        jurisdiction=view.jurisdiction, kyc_expiry_ts=view.kyc_expiry_ts, wallet=view.wallet,
        verified=view.verified, frozen=view.frozen, note_balance=str(view.note_balance),
        cash_balance=str(view.cash_balance), open_buy_reserved=str(view.open_buy_reserved),
        open_sell_reserved=str(view.open_sell_reserved), eligible=view.eligible, reason=view.reason,
    )


def rejection(record: RejectionRecord) -> Rejection:
    return Rejection(ts=record.ts, participant=record.participant, symbol=record.symbol, code=record.code,
                     message=record.message)


def reconciliation(report: ReconciliationReport) -> Reconciliation:
    return Reconciliation(ts=report.ts, ok=report.ok, differences=list(report.differences))


def audit_entry(entry: AuditEntry) -> AuditRecord:
    return AuditRecord(id=entry.id, ts=entry.ts, actor=entry.actor, action=entry.action, details=entry.details,
                       hash=entry.hash)
