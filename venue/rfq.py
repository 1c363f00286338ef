"""Requests for quotes: an investor asks the participants eligible to take the other side for a
firm price on a size, picks one quote before it expires, and trades it as a journaled ``Cross``.

    request(requester, symbol, side, qty, min_qty, ttl)
        the requester must be eligible for the instrument; the request goes only to participants
        eligible for it (the listing's ``rfq_responders``: every eligible participant, or only its
        ``market_makers``), never to the requester, never to public feeds
    quote(responder, rfq_id, price, qty, ttl)
        private to the requester; firm and HELD: the responder passes the same checks as a limit
        order (venue guards, NAV collar, eligibility, funding) and its cash or notes stay reserved
        while the quote lives; a new quote replaces the responder's previous one
    accept(requester, rfq_id, quote_id)
        the responder's eligibility is checked again, the requester passes the limit-order checks,
        and the pipeline journals a ``Cross`` (origin RFQ): post-trade books it as obligations and
        releases both holds; it settles by DvP like every trade. The other quotes are released.
    cancel / cancel_quote / expiry release every hold the request or quote still had.

State is in memory (``venue.offbook``: a crash is an expiry). Ids grow from the wall clock in
microseconds at start, so an id from before a restart never names a new request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from compliance.model import Hold
from engine import Cross, Side, TradeOrigin
from market.offbook import OffBookNotice, Quote, QuoteState, Rfq, RfqState
from venue.offbook import (
    CrossPath,
    Directory,
    Eligibility,
    OffBookRefused,
    check_eligible,
    check_terms,
    listing_or_refuse,
    refused_by_engine,
    trade_id_of,
)
from venue.trades import Fanout

MAX_OPEN_PER_REQUESTER = 20
_KEEP_CLOSED = 1_000  # closed requests kept for reads (newest)
_NS = 1_000_000_000


@dataclass(slots=True)
class _Quote:
    quote_id: int
    rfq_id: int
    responder: str
    side: Side
    price: int
    qty: int
    ts: int
    expire_ts: int
    state: QuoteState
    hold: Hold | None
    trade_id: int | None = None

    def view(self) -> Quote:
        return Quote(quote_id=self.quote_id, rfq_id=self.rfq_id, responder=self.responder, side=self.side,
                     price=self.price, qty=self.qty, ts=self.ts, expire_ts=self.expire_ts, state=self.state,
                     trade_id=self.trade_id)


@dataclass(slots=True)
class _Rfq:
    rfq_id: int
    requester: str
    symbol: str
    side: Side
    qty: int
    min_qty: int
    ts: int
    expire_ts: int
    responders: tuple[str, ...]
    state: RfqState = RfqState.OPEN
    quotes: dict[int, _Quote] = dataclasses.field(default_factory=dict)
    trade_id: int | None = None
    reason: str | None = None
    accepting: bool = False  # an acceptance is in the pipeline: no other change until it is answered

    def view(self) -> Rfq:
        return Rfq(rfq_id=self.rfq_id, requester=self.requester, symbol=self.symbol, side=self.side, qty=self.qty,
                   min_qty=self.min_qty, ts=self.ts, expire_ts=self.expire_ts, state=self.state,
                   responders=self.responders, quotes=tuple(q.view() for q in self.quotes.values()),
                   trade_id=self.trade_id, reason=self.reason)


class RfqDesk:
    def __init__(self, directory: Directory, pipeline: CrossPath, *, gate: Eligibility | None = None,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self._directory = directory
        self._pipeline = pipeline
        self._gate = gate
        self._clock = clock
        start = clock() // 1_000  # microseconds: a restart takes longer than the ids a process can use up
        self._rfq_ids = itertools.count(start)
        self._quote_ids = itertools.count(start)
        self._rfqs: dict[int, _Rfq] = {}
        self._open: dict[int, _Rfq] = {}  # the OPEN ones: what expiry scans
        self._closed: deque[int] = deque()
        self.notices: Fanout[OffBookNotice] = Fanout()

    # ------------------------------------------------------------ requester

    def request(self, participant: str, *, symbol: str, side: Side, qty: int, min_qty: int | None = None,
                ttl_s: float) -> Rfq:
        now = self.expire()
        listing = listing_or_refuse(self._directory, symbol)
        rules = self._directory.rules(symbol)
        if rules.rfq_responders == "none":
            raise OffBookRefused("RFQ_NOT_ALLOWED", f"{symbol} does not take requests for quotes")
        check_terms(listing, None, qty)
        least = qty if min_qty is None else min_qty
        if not 0 < least <= qty:
            raise OffBookRefused("RFQ_MIN_QTY_INVALID", f"min_qty {least} lots must be between 1 and qty {qty} lots")
        if not 0 < ttl_s <= rules.rfq_max_ttl_s:
            raise OffBookRefused("RFQ_EXPIRY_INVALID", f"ttl_s must be above 0 and at most {rules.rfq_max_ttl_s} "
                                                       f"for {symbol}, got {ttl_s:g}")
        check_eligible(self._gate, participant, symbol, now)
        if sum(1 for r in self._open.values() if r.requester == participant) >= MAX_OPEN_PER_REQUESTER:
            raise OffBookRefused("RFQ_TOO_MANY_OPEN", f"at most {MAX_OPEN_PER_REQUESTER} open requests per participant")
        responders = self._responders(participant, symbol, now)
        if not responders:
            raise OffBookRefused("RFQ_NO_RESPONDERS", f"no participant is eligible to {side.opposite.name.lower()} "
                                                      f"{symbol} against this request")
        rfq = _Rfq(rfq_id=next(self._rfq_ids), requester=participant, symbol=symbol, side=side, qty=qty,
                   min_qty=least, ts=now, expire_ts=now + int(ttl_s * _NS), responders=responders)
        self._rfqs[rfq.rfq_id] = rfq
        self._open[rfq.rfq_id] = rfq
        self._tell(rfq, "rfq_new")
        return rfq.view()

    async def accept(self, participant: str, rfq_id: int, quote_id: int) -> Rfq:
        """Trade the quote: a ``Cross`` through the pipeline. Raises ``OffBookRefused`` when the
        request, the quote or either side's checks refuse it, or the engine does (e.g. halted)."""
        self.expire()
        rfq = self._own(participant, rfq_id)
        quote = self._live_quote(rfq, quote_id)
        try:
            check_eligible(self._gate, quote.responder, rfq.symbol, self._clock())
        except OffBookRefused:
            self._close_quote(quote, QuoteState.FAILED)
            self._tell(rfq, "quote")
            raise
        refusal, hold = self._pipeline.check_side(participant=participant, symbol=rfq.symbol, side=rfq.side,
                                                  qty=quote.qty, price=quote.price)
        if refusal is not None:
            raise OffBookRefused.of(refusal)
        buyer, seller = (participant, quote.responder) if rfq.side is Side.BUY else (quote.responder, participant)
        cross = Cross(ts=0, symbol=rfq.symbol, buyer=buyer, seller=seller, price=quote.price, qty=quote.qty,
                      origin=TradeOrigin.RFQ, buy_client_order_id=f"rfq-{rfq_id}-{quote_id}",
                      sell_client_order_id=f"rfq-{rfq_id}-{quote_id}")
        holds, quote.hold = (hold, quote.hold), None  # the pipeline releases both once the cross is applied
        rfq.accepting = True
        try:
            result = await self._pipeline.submit_cross(cross, holds)
        except BaseException:
            rfq.accepting = False
            self._close_quote(quote, QuoteState.FAILED)
            raise
        rfq.accepting = False
        refused = refused_by_engine(result)
        if refused is not None:
            quote.state = QuoteState.FAILED
            self._tell(rfq, "quote")
            raise refused
        quote.state, quote.trade_id = QuoteState.ACCEPTED, trade_id_of(result)
        rfq.trade_id = quote.trade_id
        self._close(rfq, RfqState.FILLED)
        return rfq.view()

    def cancel(self, participant: str, rfq_id: int) -> Rfq:
        self.expire()
        rfq = self._own(participant, rfq_id)
        self._close(rfq, RfqState.CANCELLED)
        return rfq.view()

    def cancel_by_operator(self, rfq_id: int) -> Rfq:
        self.expire()
        rfq = self._rfqs.get(rfq_id)
        if rfq is None:
            raise OffBookRefused("RFQ_UNKNOWN", f"no request for quotes {rfq_id}")
        if rfq.state is not RfqState.OPEN or rfq.accepting:
            raise OffBookRefused("RFQ_NOT_OPEN", f"request {rfq_id} is {rfq.state.value}")
        self._close(rfq, RfqState.CANCELLED, reason="OFF_BOOK_CANCELLED_BY_OPERATOR")
        return rfq.view()

    # ------------------------------------------------------------ responders

    def quote(self, participant: str, rfq_id: int, *, price: int, qty: int, ttl_s: float | None = None) -> Quote:
        now = self.expire()
        rfq = self._open_for(participant, rfq_id)
        if participant == rfq.requester:
            raise OffBookRefused("RFQ_OWN_REQUEST")
        listing = listing_or_refuse(self._directory, rfq.symbol)
        check_terms(listing, price, qty)
        if not rfq.min_qty <= qty <= rfq.qty:
            raise OffBookRefused("RFQ_QUOTE_SIZE", f"quote quantity {qty} lots must be between the request's "
                                                   f"minimum {rfq.min_qty} and its {rfq.qty} lots")
        expire_ts = rfq.expire_ts
        if ttl_s is not None:
            if ttl_s <= 0:
                raise OffBookRefused("RFQ_EXPIRY_INVALID", f"ttl_s must be above 0, got {ttl_s:g}")
            expire_ts = min(expire_ts, now + int(ttl_s * _NS))
        previous = next((q for q in rfq.quotes.values()
                         if q.responder == participant and q.state is QuoteState.LIVE), None)
        if previous is not None:  # replaced: its hold goes first, so the new quote is funded on its own
            self._close_quote(previous, QuoteState.CANCELLED)
        side = rfq.side.opposite
        refusal, hold = self._pipeline.check_side(participant=participant, symbol=rfq.symbol, side=side, qty=qty,
                                                  price=price)
        if refusal is not None:
            if previous is not None:
                self._tell(rfq, "quote")
            raise OffBookRefused.of(refusal)
        quote = _Quote(quote_id=next(self._quote_ids), rfq_id=rfq_id, responder=participant, side=side, price=price,
                       qty=qty, ts=now, expire_ts=expire_ts, state=QuoteState.LIVE, hold=hold)
        rfq.quotes[quote.quote_id] = quote
        self._tell(rfq, "quote")
        return quote.view()

    def cancel_quote(self, participant: str, rfq_id: int, quote_id: int) -> Quote:
        self.expire()
        rfq = self._open_for(participant, rfq_id)
        quote = rfq.quotes.get(quote_id)
        if quote is None or quote.responder != participant or quote.state is not QuoteState.LIVE:
            raise OffBookRefused("RFQ_QUOTE_UNKNOWN", f"no live quote {quote_id} of yours on request {rfq_id}")
        self._close_quote(quote, QuoteState.CANCELLED)
        self._tell(rfq, "quote")
        return quote.view()

    # ------------------------------------------------------------ reads

    def subscribe(self, listener: Callable[[OffBookNotice], None]) -> Callable[[], None]:
        """Every change, addressed to one participant (its private ``rfq`` / ``blocks`` channel)."""
        return self.notices.add(listener)

    def rfq(self, participant: str, rfq_id: int) -> Rfq:
        self.expire()
        rfq = self._rfqs.get(rfq_id)
        if rfq is None or not (participant == rfq.requester or participant in rfq.responders):
            raise OffBookRefused("RFQ_UNKNOWN", f"no request for quotes {rfq_id} for you")
        return rfq.view().view_for(participant)

    def rfqs_of(self, participant: str, *, open_only: bool = False) -> list[Rfq]:
        """The participant's own requests and those it was asked to quote, newest first."""
        self.expire()
        return [r.view().view_for(participant) for r in reversed(self._rfqs.values())
                if (participant == r.requester or participant in r.responders)
                and (not open_only or r.state is RfqState.OPEN)]

    def all(self, limit: int = 200) -> list[Rfq]:
        """Every request (operators), newest first, with the responders asked."""
        self.expire()
        return [r.view() for r in itertools.islice(reversed(self._rfqs.values()), limit)]

    def open_holds(self) -> int:
        return sum(1 for r in self._open.values() for q in r.quotes.values() if q.hold is not None)

    # ------------------------------------------------------------ expiry

    def expire(self) -> int:
        """Expire what is due (called by every operation and by ``run``); returns the clock read."""
        now = self._clock()
        for rfq in list(self._open.values()):
            if rfq.accepting:
                continue
            if rfq.expire_ts <= now:
                self._close(rfq, RfqState.EXPIRED)
                continue
            expired = [q for q in rfq.quotes.values() if q.state is QuoteState.LIVE and q.expire_ts <= now]
            for quote in expired:
                self._close_quote(quote, QuoteState.EXPIRED)
            if expired:
                self._tell(rfq, "quote")
        return now

    async def run(self, stop: asyncio.Event, *, interval_s: float = 0.25) -> None:
        """Expire requests and quotes on time, so a held quote's funds come back without a request."""
        while not stop.is_set():
            self.expire()
            try:
                await asyncio.wait_for(stop.wait(), interval_s)
            except TimeoutError:
                continue

    # ------------------------------------------------------------ internals

    def _responders(self, requester: str, symbol: str, now: int) -> tuple[str, ...]:
        rules = self._directory.rules(symbol)
        pool = rules.market_makers if rules.rfq_responders == "market_makers" else self._directory.participant_ids()
        out = []
        for pid in sorted(set(pool)):
            if pid == requester:
                continue
            if self._gate is not None and not self._gate.eligibility(pid, symbol, now).ok:
                continue
            out.append(pid)
        return tuple(out)

    def _own(self, participant: str, rfq_id: int) -> _Rfq:
        rfq = self._open_for(participant, rfq_id)
        if participant != rfq.requester:
            raise OffBookRefused("RFQ_NOT_REQUESTER")
        return rfq

    def _open_for(self, participant: str, rfq_id: int) -> _Rfq:
        rfq = self._rfqs.get(rfq_id)
        if rfq is None or not (participant == rfq.requester or participant in rfq.responders):
            raise OffBookRefused("RFQ_UNKNOWN", f"no request for quotes {rfq_id} for you")
        if rfq.state is RfqState.EXPIRED:
            raise OffBookRefused("RFQ_EXPIRED", f"request {rfq_id} expired")
        if rfq.state is not RfqState.OPEN or rfq.accepting:
            raise OffBookRefused("RFQ_NOT_OPEN", f"request {rfq_id} is {rfq.state.value}")
        return rfq

    def _live_quote(self, rfq: _Rfq, quote_id: int) -> _Quote:
        quote = rfq.quotes.get(quote_id)
        if quote is not None and quote.state is QuoteState.EXPIRED:
            raise OffBookRefused("RFQ_QUOTE_EXPIRED", f"quote {quote_id} expired")
        if quote is None or quote.state is not QuoteState.LIVE:
            raise OffBookRefused("RFQ_QUOTE_UNKNOWN", f"no live quote {quote_id} on request {rfq.rfq_id}")
        return quote

    def _close_quote(self, quote: _Quote, state: QuoteState) -> None:
        self._pipeline.release(quote.hold)
        quote.hold = None
        quote.state = state

    def _close(self, rfq: _Rfq, state: RfqState, *, reason: str | None = None) -> None:
        for quote in rfq.quotes.values():
            if quote.state is QuoteState.LIVE:
                self._close_quote(quote, QuoteState.EXPIRED if state is RfqState.EXPIRED else QuoteState.NOT_SELECTED)
        rfq.state, rfq.reason = state, reason
        self._tell(rfq, "rfq_state")
        self._open.pop(rfq.rfq_id, None)
        self._closed.append(rfq.rfq_id)
        while len(self._closed) > _KEEP_CLOSED:
            self._rfqs.pop(self._closed.popleft(), None)

    def _tell(self, rfq: _Rfq, event: str) -> None:
        view = rfq.view()
        for pid in (rfq.requester, *rfq.responders):
            event_for = "rfq_state" if event == "rfq_new" and pid == rfq.requester else event
            self.notices.emit(OffBookNotice(participant=pid, channel="rfq", event=event_for,
                                            rfq=view.view_for(pid)))
