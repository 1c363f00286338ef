"""The note's reference price in the venue: NAV collars, premium/discount, automatic halts, maturity.

``ReferenceMonitor`` reads the ``attestation.AttestationWatcher`` (which keeps the latest EAS
attestations of every listed series current) and, per listing (``venue.listings.ListingRules``):

* **collar**: with ``nav_collar_below_pct`` / ``nav_collar_above_pct`` set, an order (or amend) priced
  outside ``[NAV x (1 - below), NAV x (1 + above)]`` is refused with ``PRICE_OUTSIDE_NAV_COLLAR`` (the
  pipeline's ``price_check`` hook); the engine's static band stays the outer limit. When the NAV in
  force changes, resting orders outside the new collar are cancelled in the same synchronous step
  (their cancels are sequenced before any later order), so no trade prints outside the collar in force.
* **premium/discount**: every fill is stamped with ``price / NAV - 1`` of the NAV in force
  (``premium(trade_id)``), and the book's mid premium is part of the reference view.
* **halts**: the latest NAV or custody attestation older than ``attestation_max_age_s`` halts the
  instrument with ``ATTESTATION_STALE``, custody coverage below 100 % with ``CUSTODY_SHORTFALL``
  (a journaled ``SetInstrumentStatus``, audited, alerted); it reopens when fresh attestations clear
  the reason, or when an operator resumes it with a reason (audited; no re-halt until new evidence).
* **maturity**: at ``trading_end_ts`` the instrument is closed (engine cancels resting orders) and
  the close is audited with ``INSTRUMENT_MATURED``; unsettled trades settle as usual.
* an attestation from an unregistered signer is never used (the watcher) and is alerted here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Protocol

from attestation import IgnoredAttestation, Kind, SeriesReference
from engine import (
    AmendOrder,
    CancelOrder,
    CancelReason,
    Command,
    Event,
    Fill,
    InstrumentStatus,
    L2Snapshot,
    MassCancel,
    NewOrder,
    OrderView,
    Result,
)
from market.codes import message
from market.model import AuditEntry, Listing, Outcome, Rejection
from venue.listings import ListingRules

log = logging.getLogger(__name__)

ACTOR = "attestation-monitor"
_PREMIUMS_KEPT = 200_000
_HALT_KINDS = (Kind.NAV, Kind.CUSTODY)


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    ts: int  # ns
    symbol: str
    code: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Collar:
    low: int  # ticks, inclusive
    high: int
    below_pct: Decimal
    above_pct: Decimal
    nav_ticks: Fraction


class ReferenceSource(Protocol):
    """``attestation.AttestationWatcher`` as the monitor reads it."""

    def track(self, series: str) -> None: ...

    def reference(self, series: str, *, now: float | None = None) -> SeriesReference: ...


class Venue(Protocol):
    """What the monitor needs of the running venue (``venue.core.VenueCore`` + the engine)."""

    def listing(self, symbol: str) -> Listing | None: ...

    def listings(self) -> list[Listing]: ...

    def l2(self, symbol: str, depth: int | None = None) -> L2Snapshot: ...

    async def set_status(self, symbol: str, status: InstrumentStatus, *, operator: str) -> Outcome: ...


class Orders(Protocol):
    def order(self, order_id: int) -> OrderView | None: ...

    def open_orders(self, participant: str | None = None, symbol: str | None = None) -> list[OrderView]: ...


class Enqueue(Protocol):
    def enqueue(self, cmd: Command) -> tuple[int, Command, asyncio.Future[Result]]: ...


def nav_ticks(nav_per_note: Decimal, listing: Listing) -> Fraction:
    """The NAV per note as a price in the instrument's ticks (cash base units x lot / tick)."""
    spec = listing.spec
    cash_per_lot = Fraction(nav_per_note) * Fraction(10) ** listing.cash_decimals * spec.lot_size
    return cash_per_lot / (Fraction(10) ** listing.token_decimals * spec.tick_size)


def collar_of(nav: Fraction, rules: ListingRules) -> Collar | None:
    if rules.nav_collar_below_pct is None and rules.nav_collar_above_pct is None:
        return None
    below = Decimal(rules.nav_collar_below_pct or "100")
    above = Decimal(rules.nav_collar_above_pct or "1000000")
    low = nav * (1 - Fraction(below) / 100)
    high = nav * (1 + Fraction(above) / 100)
    return Collar(low=max(1, math.ceil(low)), high=math.floor(high), below_pct=below, above_pct=above, nav_ticks=nav)


def premium(price: int | Fraction, nav: Fraction) -> Decimal:
    """``price / NAV - 1`` (0.0125 = 1.25 % premium), 6 decimals."""
    return (Decimal((Fraction(price) / nav - 1).numerator) / Decimal((Fraction(price) / nav - 1).denominator)
            ).quantize(Decimal("0.000001"))


def premium_bps(value: Decimal) -> int:
    """A premium as a fraction (0.0125) in whole basis points (125), signed, rounded half-even."""
    return int((value * 10_000).quantize(Decimal(1)))


def bps_to_nav(price: int, nav: Fraction) -> int:
    """``(price / NAV - 1)`` in whole basis points, signed, rounded half-even from the exact value.
    Integer arithmetic only: it runs on every fill (a few times cheaper than through ``premium``)."""
    num = (price * nav.denominator - nav.numerator) * 10_000
    q, r = divmod(num, nav.numerator)  # NAV > 0: floor division
    if 2 * r > nav.numerator or (2 * r == nav.numerator and q % 2):
        q += 1
    return q


class ReferenceMonitor:
    def __init__(
        self,
        watcher: ReferenceSource,
        *,
        venue: Venue,
        orders: Orders,
        sequencer: Enqueue,
        audit: Callable[[str, str, Mapping[str, object]], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.watcher = watcher
        self._venue = venue
        self._orders = orders
        self._sequencer = sequencer
        self._audit = audit
        self._clock = clock
        self._rules: dict[str, ListingRules] = {}
        self._nav: dict[str, Fraction] = {}  # NAV in force, ticks
        self._collars: dict[str, Collar | None] = {}
        self._premiums: OrderedDict[int, Decimal] = OrderedDict()
        self.auto_halts: dict[str, Alert] = {}  # symbol -> the halt the monitor made
        self._override: dict[str, tuple[bytes, ...]] = {}  # operator resumed against this evidence
        self.matured: set[str] = set()
        self.alerts: deque[Alert] = deque(maxlen=500)
        self._listeners: list[Callable[[str], None]] = []
        # where a resume goes: OPEN, or CALL to reopen through a call auction (``venue.auctions``)
        self.resume_status = InstrumentStatus.OPEN

    # ------------------------------------------------------------ configuration

    def set_rules(self, symbol: str, rules: ListingRules) -> None:
        listing = self._venue.listing(symbol)
        self._rules[symbol] = rules
        self._collars.pop(symbol, None)
        if listing is not None:
            self.watcher.track(listing.token_address)

    def rules(self, symbol: str) -> ListingRules | None:
        return self._rules.get(symbol)

    def listing(self, symbol: str) -> Listing | None:
        return self._venue.listing(symbol)

    def status(self, symbol: str) -> InstrumentStatus:
        return self._venue.l2(symbol, 0).status

    def now(self) -> float:
        return self._clock()

    def subscribe(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """``listener(symbol)`` whenever that symbol's reference figures may have changed."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    # ------------------------------------------------------------ price

    def nav(self, symbol: str) -> Fraction | None:
        return self._nav.get(symbol)

    def collar(self, symbol: str) -> Collar | None:
        """The collar in force (cached: computed once per NAV or rules change)."""
        if symbol in self._collars:
            return self._collars[symbol]
        nav, rules = self._nav.get(symbol), self._rules.get(symbol)
        collar = None if nav is None or rules is None else collar_of(nav, rules)
        self._collars[symbol] = collar
        return collar

    def check(self, cmd: NewOrder | AmendOrder | CancelOrder | object) -> Rejection | None:
        """The pipeline's ``price_check``: a priced order or amend outside the collar in force."""
        if isinstance(cmd, NewOrder):
            symbol, price = cmd.symbol, cmd.price
        elif isinstance(cmd, AmendOrder) and cmd.price is not None:
            view = self._orders.order(cmd.order_id)
            if view is None:
                return None
            symbol, price = view.symbol, cmd.price
        else:
            return None
        collar = self.collar(symbol)
        if collar is None or price is None or collar.low <= price <= collar.high:
            return None
        listing = self._venue.listing(symbol)
        step = Fraction(listing.spec.tick_size, 10**listing.cash_decimals) if listing else Fraction(1)
        return Rejection(code="PRICE_OUTSIDE_NAV_COLLAR", message=(
            f"price {float(price * step):.2f} is outside the NAV collar of {symbol}: "
            f"{float(collar.low * step):.2f} - {float(collar.high * step):.2f} "
            f"(NAV {float(collar.nav_ticks * step):.2f} -{collar.below_pct}% / +{collar.above_pct}%)"))

    def on_event(self, event: Event) -> None:
        """Stamp every fill with its premium/discount to the NAV in force (subscribe before the gateway)."""
        if isinstance(event, Fill) and (nav := self._nav.get(event.symbol)) is not None:
            self._premiums[event.trade_id] = premium(event.price, nav)
            if len(self._premiums) > _PREMIUMS_KEPT:
                self._premiums.popitem(last=False)

    def premium(self, trade_id: int) -> Decimal | None:
        return self._premiums.get(trade_id)

    def premium_of(self, fill: Fill) -> tuple[Fraction, int] | None:
        """(NAV in force in ticks, premium/discount in basis points, signed, rounded half-even) for a
        fill; None without a NAV. Computed from the NAV in force, independent of ``on_event``'s order."""
        nav = self._nav.get(fill.symbol)
        if nav is None:
            return None
        return nav, bps_to_nav(fill.price, nav)

    def mid_premium(self, symbol: str) -> Decimal | None:
        nav = self._nav.get(symbol)
        if nav is None:
            return None
        book = self._venue.l2(symbol, 1)
        if not book.bids or not book.asks:
            return None
        return premium(Fraction(book.bids[0].price + book.asks[0].price, 2), nav)

    # ------------------------------------------------------------ evaluation

    def reference(self, symbol: str) -> SeriesReference | None:
        listing = self._venue.listing(symbol)
        return None if listing is None else self.watcher.reference(listing.token_address, now=self._clock())

    def refresh_prices(self) -> int:
        """Take the latest NAV into force and cancel resting orders outside the new collar; one
        synchronous step (no order can be sequenced in between). Returns the cancels enqueued."""
        cancelled = 0
        for symbol in list(self._rules):
            listing, ref = self._venue.listing(symbol), self.reference(symbol)
            if listing is None or ref is None or ref.nav_per_note is None:
                continue
            nav = nav_ticks(ref.nav_per_note, listing)
            if self._nav.get(symbol) == nav:
                continue
            self._nav[symbol] = nav
            self._collars.pop(symbol, None)
            collar = self.collar(symbol)
            if collar is not None:
                for view in self._orders.open_orders(symbol=symbol):
                    if view.price is not None and not collar.low <= view.price <= collar.high:
                        self._sequencer.enqueue(CancelOrder(ts=0, participant=view.participant,
                                                            order_id=view.order_id))
                        cancelled += 1
            self._notify(symbol)
        return cancelled

    def halt_reason(self, symbol: str, ref: SeriesReference) -> tuple[str, str] | None:
        rules = self._rules.get(symbol, ListingRules())
        if rules.attestation_max_age_s is not None:
            for kind in _HALT_KINDS:
                age = ref.ages_s.get(kind)
                if age is None:
                    return "ATTESTATION_STALE", f"{symbol} has no counting {kind.name} attestation"
                if age > rules.attestation_max_age_s:
                    return "ATTESTATION_STALE", (f"the latest {kind.name} attestation of {symbol} is {age} s old; "
                                                 f"the maximum is {rules.attestation_max_age_s} s")
        if ref.custody_coverage is not None and ref.custody_coverage < 1:
            return "CUSTODY_SHORTFALL", (f"custody of {symbol} covers {ref.custody_coverage:.4%} of the BTC "
                                         "accrued to the notes outstanding (below 100 %)")
        return None

    def _evidence(self, ref: SeriesReference) -> tuple[bytes, ...]:
        return tuple(r.uid for _, r in sorted(ref.latest.items()))

    async def evaluate(self) -> None:
        """One pass: prices, maturity, halts and resumes for every listing with rules."""
        self.refresh_prices()
        now = self._clock()
        for symbol in list(self._rules):
            rules, ref = self._rules[symbol], self.reference(symbol)
            if ref is None:
                continue
            status = self._venue.l2(symbol, 0).status
            if status is InstrumentStatus.CLOSED:
                continue
            if rules.trading_end_ts is not None and now * 1e9 >= rules.trading_end_ts:
                await self._mature(symbol)
                continue
            reason = self.halt_reason(symbol, ref)
            override = self._override.get(symbol)
            if override is not None and override != self._evidence(ref):
                del self._override[symbol]
                override = None
            if reason is not None and status in (InstrumentStatus.OPEN, InstrumentStatus.CALL) and override is None:
                await self._halt(symbol, *reason)
            elif reason is None and symbol in self.auto_halts and status is InstrumentStatus.HALTED:
                halted = self.auto_halts.pop(symbol)
                result = await self._venue.set_status(symbol, self.resume_status, operator=ACTOR)
                self._audit(ACTOR, "instrument.resume", {"symbol": symbol, "after": halted.code,
                                                         "reason": "fresh attestations",
                                                         "result": _code(result)})
                self._notify(symbol)

    def restore(self, entries: list[AuditEntry]) -> list[str]:
        """After a restart: the instruments whose last status change (audit log, any order; an
        operator's status change counts) was a halt of this monitor are its halts again, so fresh
        attestations reopen them."""
        last: dict[str, AuditEntry] = {}
        for entry in sorted(entries, key=lambda e: e.id):
            mine = entry.action in ("instrument.halt", "instrument.resume", "instrument.matured")
            if mine or (entry.action == "instrument.status" and entry.actor != ACTOR):  # an operator's change
                symbol = json.loads(entry.details).get("symbol")
                if isinstance(symbol, str):
                    last[symbol] = entry
        for symbol, entry in last.items():
            details = json.loads(entry.details)
            if entry.action == "instrument.halt" and entry.actor == ACTOR:
                self.auto_halts[symbol] = Alert(ts=entry.ts, symbol=symbol, code=str(details.get("reason")),
                                                message=str(details.get("message", "")))
        return sorted(self.auto_halts)

    async def _halt(self, symbol: str, code: str, text: str) -> None:
        result = await self._venue.set_status(symbol, InstrumentStatus.HALTED, operator=ACTOR)
        alert = self._alert(symbol, code, text)
        self.auto_halts[symbol] = alert
        self._audit(ACTOR, "instrument.halt", {"symbol": symbol, "reason": code, "message": text,
                                               "result": _code(result)})
        self._notify(symbol)

    async def _mature(self, symbol: str) -> None:
        # resting orders first, each owner's with a journaled mass cancel that names the reason
        # (``INSTRUMENT_MATURED``); the close then finds the book empty
        owners = sorted({o.participant for o in self._orders.open_orders(None, symbol)})
        cancels = [self._sequencer.enqueue(MassCancel(ts=0, participant=p, symbol=symbol,
                                                      reason=CancelReason.INSTRUMENT_MATURED))[2] for p in owners]
        if cancels:
            await asyncio.gather(*cancels)
        result = await self._venue.set_status(symbol, InstrumentStatus.CLOSED, operator=ACTOR)
        self.matured.add(symbol)
        self.auto_halts.pop(symbol, None)
        self._audit(ACTOR, "instrument.matured", {"symbol": symbol, "reason": "INSTRUMENT_MATURED",
                                                  "result": _code(result)})
        self._alert(symbol, "INSTRUMENT_MATURED", f"{symbol} reached its trading end and is closed")
        self._notify(symbol)

    async def resume(self, symbol: str, *, operator: str, reason: str) -> Outcome | None:
        """An operator reopens a halted instrument; None when ``reason`` is empty (refused)."""
        if not reason.strip():
            return None
        result = await self._venue.set_status(symbol, self.resume_status, operator=operator)
        halted = self.auto_halts.pop(symbol, None)
        ref = self.reference(symbol)
        if ref is not None:
            self._override[symbol] = self._evidence(ref)
        self._audit(operator, "instrument.resume", {"symbol": symbol, "reason": reason,
                                                    "after": halted.code if halted else None,
                                                    "result": _code(result)})
        self._notify(symbol)
        return result

    def on_ignored(self, ignored: IgnoredAttestation) -> None:
        """The watcher's ``on_ignored``: alert (the attestation itself is never used)."""
        symbol = next((s for s in self._rules if (li := self._venue.listing(s)) is not None
                       and li.token_address.lower() == ignored.record.series.lower()), ignored.record.series)
        self._alert(symbol, ignored.code, ignored.message)
        self._audit(ACTOR, "attestation.ignored", {"symbol": symbol, "uid": "0x" + ignored.record.uid.hex(),
                                                   "attester": ignored.record.attester, "code": ignored.code})

    def _alert(self, symbol: str, code: str, text: str) -> Alert:
        alert = Alert(ts=int(self._clock() * 1e9), symbol=symbol, code=code, message=text or message(code))
        self.alerts.append(alert)
        log.warning("ALERT %s %s: %s", symbol, code, text)
        return alert

    def _notify(self, symbol: str) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(symbol)
            except Exception:
                log.exception("reference listener failed for %s", symbol)

    def recent_alerts(self, symbol: str | None = None, limit: int = 50) -> list[Alert]:
        return list(itertools.islice((a for a in reversed(self.alerts) if symbol in (None, a.symbol)), limit))

    async def run(self, stop: asyncio.Event, *, interval_s: float = 1.0) -> None:
        while not stop.is_set():
            try:
                await self.evaluate()
            except Exception:  # never let one bad pass end the loop
                log.exception("reference monitor pass failed")
            for symbol in list(self._rules):
                self._notify(symbol)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)


def _code(result: Outcome) -> str:
    return result.result.code.name if result.result is not None else "?"
