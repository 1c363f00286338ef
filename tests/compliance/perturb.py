"""One perturbation per reason code: each breaks exactly its own condition of the baseline world."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from compliance import InvestorCategory, ParticipantStatus, ReasonCode
from engine import Side
from tests.compliance.world import NOW, World


@dataclass
class Order:
    symbol: str
    qty: int
    price: int | None
    now_ts: int = NOW
    extra: dict[str, object] = field(default_factory=dict)


Apply = Callable[[World, Order], None]


@dataclass(frozen=True)
class Perturbation:
    code: ReasonCode
    sides: frozenset[Side]
    group: str  # at most one perturbation per group can be combined
    apply: Apply


BOTH = frozenset({Side.BUY, Side.SELL})
BUY = frozenset({Side.BUY})
SELL = frozenset({Side.SELL})


def _set(**kw: object) -> Apply:
    def apply(world: World, order: Order) -> None:
        for k, v in kw.items():
            setattr(world, k, v)
    return apply


def _rule(**kw: object) -> Apply:
    def apply(world: World, order: Order) -> None:
        world.rules.update(kw)
    return apply


def _participant(**kw: object) -> Apply:
    def apply(world: World, order: Order) -> None:
        world.participant.update(kw)
    return apply


def _unknown_symbol(world: World, order: Order) -> None:
    order.symbol = "NOPE"


def _zero_qty(world: World, order: Order) -> None:
    order.qty = 0


def _no_price(world: World, order: Order) -> None:
    order.price = None


def _too_small(world: World, order: Order) -> None:
    world.rules["min_order_lots"] = order.qty + 1


def _too_large(world: World, order: Order) -> None:
    world.rules["max_order_lots"] = order.qty - 1


def _holding_cap(world: World, order: Order) -> None:
    world.rules["holding_cap"] = world.buyer_notes + world.need_notes(order.qty) - 1


def _max_holders(world: World, order: Order) -> None:
    world.rules["max_holders"] = 2  # the seller and the other holder already hold


def _cash(world: World, order: Order) -> None:
    world.buyer_cash = world.need_cash(order.qty, world.price) - 1


def _allowance(world: World, order: Order) -> None:
    world.buyer_allowance = world.need_cash(order.qty, world.price) - 1


def _notes(world: World, order: Order) -> None:
    world.seller_notes = world.need_notes(order.qty) + 3
    world.seller_frozen_notes = 4
    world.seller_note_allowance = world.need_notes(order.qty) * 10


def _note_allowance(world: World, order: Order) -> None:
    world.seller_note_allowance = world.need_notes(order.qty) - 1


PERTURBATIONS: dict[ReasonCode, Perturbation] = {
    p.code: p
    for p in [
        Perturbation(ReasonCode.UNKNOWN_INSTRUMENT, BOTH, "symbol", _unknown_symbol),
        Perturbation(ReasonCode.INVALID_ORDER, BOTH, "qty", _zero_qty),
        Perturbation(ReasonCode.PARTICIPANT_UNKNOWN, BOTH, "known", _set(known_participant=False)),
        Perturbation(ReasonCode.PARTICIPANT_SUSPENDED, BOTH, "status",
                     _participant(status=ParticipantStatus.SUSPENDED)),
        Perturbation(ReasonCode.NO_WALLET, BOTH, "wallet", _participant(wallet=None)),
        Perturbation(ReasonCode.KYC_EXPIRED, BOTH, "kyc", _participant(kyc_expiry_ts=NOW)),
        Perturbation(ReasonCode.CATEGORY_NOT_ALLOWED, BOTH, "category",
                     _participant(category=InvestorCategory.RETAIL)),
        Perturbation(ReasonCode.JURISDICTION_BLOCKED, BOTH, "blocked",
                     _rule(blocked_jurisdictions=frozenset({"DE", "KP"}))),
        Perturbation(ReasonCode.JURISDICTION_NOT_ALLOWED, BOTH, "allowed",
                     _rule(allowed_jurisdictions=frozenset({"FR", "LU"}))),
        Perturbation(ReasonCode.INSTRUMENT_MATURED, BOTH, "maturity", _rule(trading_end_ts=NOW)),
        Perturbation(ReasonCode.CHAIN_STATE_STALE, BOTH, "stale",
                     _set(max_chain_lag_ns=10**9, synced_at=NOW - 2 * 10**9)),
        Perturbation(ReasonCode.CHAIN_STATE_UNKNOWN, BOTH, "synced", _set(synced_wallet=False)),
        Perturbation(ReasonCode.TOKEN_PAUSED, BOTH, "paused", _set(paused=True)),
        Perturbation(ReasonCode.IDENTITY_NOT_VERIFIED, BOTH, "verified", _set(verified=False)),
        Perturbation(ReasonCode.COUNTRY_MISMATCH, BOTH, "country", _set(country=250)),
        Perturbation(ReasonCode.WALLET_FROZEN, BOTH, "frozen", _set(frozen=True)),
        Perturbation(ReasonCode.TOKEN_COMPLIANCE_REFUSED, BOTH, "token_compliance", _set(token_refuses=True)),
        Perturbation(ReasonCode.LOCKED_UP, SELL, "lockup", _rule(lockup_until_ts=NOW + 1)),
        Perturbation(ReasonCode.ORDER_TOO_SMALL, BOTH, "size", _too_small),
        Perturbation(ReasonCode.ORDER_TOO_LARGE, BOTH, "size", _too_large),
        Perturbation(ReasonCode.PROTECTION_PRICE_REQUIRED, BUY, "price", _no_price),
        Perturbation(ReasonCode.HOLDING_CAP_EXCEEDED, BUY, "cap", _holding_cap),
        Perturbation(ReasonCode.MAX_HOLDERS_REACHED, BUY, "holders", _max_holders),
        Perturbation(ReasonCode.INSUFFICIENT_CASH, BUY, "cash", _cash),
        Perturbation(ReasonCode.INSUFFICIENT_ALLOWANCE, BUY, "allowance", _allowance),
        Perturbation(ReasonCode.INSUFFICIENT_NOTES, SELL, "notes", _notes),
        Perturbation(ReasonCode.INSUFFICIENT_NOTE_ALLOWANCE, SELL, "note_allowance", _note_allowance),
        Perturbation(ReasonCode.FUNDING_UNAVAILABLE, BUY, "funding", _set(funding_down=True)),
    ]
}
