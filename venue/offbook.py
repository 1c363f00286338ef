"""What requests for quotes (``venue.rfq``) and block trades (``venue.blocks``) share: the refusal
they raise, the collaborators they use, and the one way they print a trade.

Both desks keep their state in memory only. A request, a quote or an unmatched block side is
never journaled: a crash drops it, which is the same as its expiry (nothing traded, and the
funding holds that backed it lived in memory too). What they print is journaled: the ``Cross``
command, so the trade, its origin and its settlement survive a restart like any other trade.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from compliance.model import Hold
from engine import Cross, Fill, Result, ResultCode, Side
from market.codes import engine_message
from market.model import Listing, Rejection
from market.offbook import OffBookRefused
from venue.listings import ListingRules

__all__ = ["CrossPath", "Directory", "Eligibility", "OffBookRefused", "check_eligible", "check_terms",
           "listing_or_refuse", "refused_by_engine", "trade_id_of"]


class Directory(Protocol):
    """Reference data (``venue.reference.ReferenceData``)."""

    def listing(self, symbol: str) -> Listing | None: ...

    def rules(self, symbol: str) -> ListingRules: ...

    def participant_ids(self) -> list[str]: ...


class EligibilityDecision(Protocol):
    @property
    def ok(self) -> bool: ...
    @property
    def code(self) -> object: ...
    @property
    def message(self) -> str: ...


class Eligibility(Protocol):
    """Order-independent eligibility (``compliance.Gatekeeper.eligibility``)."""

    def eligibility(self, participant: str, symbol: str, now_ts: int) -> EligibilityDecision: ...


class CrossPath(Protocol):
    """The order pipeline's entry for negotiated trades (``venue.pipeline.OrderPipeline``)."""

    def check_side(self, *, participant: str, symbol: str, side: Side, qty: int,
                   price: int) -> tuple[Rejection | None, Hold | None]: ...

    def release(self, hold: Hold | None) -> None: ...

    async def submit_cross(self, cross: Cross, holds: Sequence[Hold | None] = ()) -> Result: ...


def listing_or_refuse(directory: Directory, symbol: str) -> Listing:
    listing = directory.listing(symbol)
    if listing is None:
        raise OffBookRefused("UNKNOWN_INSTRUMENT", f"unknown instrument {symbol!r}")
    return listing


def check_terms(listing: Listing, price: int | None, qty: int) -> None:
    """Price and quantity a negotiated trade may print at: positive, inside the instrument's band
    (``price`` None: the quantity only)."""
    spec = listing.spec
    if qty <= 0:
        raise OffBookRefused("INVALID_QUANTITY")
    if price is None:
        return
    if price <= 0:
        raise OffBookRefused("INVALID_PRICE")
    if not spec.band_low <= price <= spec.band_high:
        raise OffBookRefused("PRICE_OUTSIDE_BAND", f"price {price} ticks is outside the band of {listing.symbol}: "
                                                   f"{spec.band_low} - {spec.band_high} ticks")


def check_eligible(gate: Eligibility | None, participant: str, symbol: str, now_ts: int) -> None:
    if gate is None:
        return
    decision = gate.eligibility(participant, symbol, now_ts)
    if not decision.ok:
        raise OffBookRefused(str(decision.code), decision.message)


def refused_by_engine(result: Result) -> OffBookRefused | None:
    if result.code is ResultCode.OK:
        return None
    return OffBookRefused(result.code.name, engine_message(result.code))


def trade_id_of(result: Result) -> int | None:
    """The trade a Cross printed (its one fill)."""
    return next((ev.trade_id for ev in result.events if isinstance(ev, Fill)), None)
