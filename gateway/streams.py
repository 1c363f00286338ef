"""Fan-out of venue events to websocket sessions.

One listener on the venue; every message is serialised once per channel and the same text is
queued to each subscriber. Private channels are keyed by participant, so a session only ever
receives its own participant's orders, fills and settlements.

Book channel: ``snapshot`` then ``delta`` messages. The per-instrument ``md_seq`` is shared by
book deltas, trades and status changes, so it is not contiguous on the book channel; each delta
therefore also carries ``prev_md_seq`` (the md_seq of the previous book delta of that
instrument). A client with last applied sequence ``last`` ignores deltas with ``md_seq <= last``
and has a gap when ``prev_md_seq > last``: it resubscribes for a fresh snapshot.

Every message an engine event produces (book deltas, trades, status, private orders and fills)
and every book snapshot also carry ``stream_seq``, the journal position of the command behind it
(``VenuePort.stream_seq``: the JetStream stream sequence of its batch with the replicated journal,
the command seq with the file journal). It is read from the journal, so every leader and every
gateway gives an event the same value; it is not contiguous (a batch of commands shares one,
epoch messages take one): gaps are detected with ``md_seq``/``prev_md_seq`` as above, and
``stream_seq`` tells where in the venue's one log a message stands (monotonic, across a failover).

Snapshots are built and encoded once per book version: while no event of an instrument has
arrived since the last ``subscribe_book``, every new subscriber gets the same encoded text (a
subscribe storm costs one dictionary lookup per subscribe, not a full-depth snapshot). Every
delta is likewise encoded once and the same text goes to every subscriber of the book.

Conflation: a subscriber whose outbound backlog is past its bound (``lagging()``; the sessions'
``ws_conflate_bytes``) is not sent every delta. It gets one ``{"channel": "book", "type":
"conflated", "symbol", "md_seq"}`` notice, no deltas of that book while it catches up, and once
its backlog has drained (``when_drained``) the latest snapshot of the book, which replaces the
client's copy (``venueclient.LocalBook``: a snapshot always resets the book). A slow reader thus
gets the current state instead of a growing queue of deltas it cannot use in time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Protocol, cast

import orjson

from engine import (
    BookDelta,
    Event,
    Fill,
    IndicativeUncross,
    InstrumentStatusChanged,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
)
from gateway import render
from gateway.decimals import format_price, format_qty
from gateway.ports import SettlementNotice, VenuePort
from gateway.render import JSON

log = logging.getLogger(__name__)

PRIVATE_CHANNELS = ("orders", "fills", "settlements", "mmp", "rfq", "blocks")  # rfq/blocks: gateway.offbook_routes
PUBLIC_CHANNELS = ("book", "trades", "status", "reference")


def dumps(msg: JSON) -> str:
    """Compact JSON text (orjson; what it cannot encode, e.g. integers beyond 64 bits such as raw
    token amounts, goes through the standard library with the same compact separators)."""
    try:
        return orjson.dumps(msg, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(msg, separators=(",", ":"), ensure_ascii=False)


class Subscriber(Protocol):
    def push(self, text: str) -> None:
        """Queue one outbound message; never blocks, never raises."""
        ...


class Conflatable(Protocol):
    """A subscriber that can be conflated (``gateway.framing.FramedSession``)."""

    def lagging(self) -> bool:
        """Whether its outbound backlog is past its conflation bound."""
        ...

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Calls ``callback`` once its backlog is back under the bound (or never, if it closes)."""
        ...


class Observer(Protocol):
    def on_event(self, event: Event) -> None: ...

    def on_notice(self, notice: SettlementNotice) -> None: ...


class Hub:
    def __init__(self, venue: VenuePort) -> None:
        self._venue = venue
        self._book: dict[str, set[Subscriber]] = {}
        self._trades: dict[str, set[Subscriber]] = {}
        self._status: set[Subscriber] = set()
        self._private: dict[tuple[str, str], set[Subscriber]] = {}  # (participant, channel)
        self._last_book_md: dict[str, int] = {}
        self._unsubscribe: list[Callable[[], None]] = []
        self._observers: dict[int, Observer] = {}
        self._snapshots: dict[str, str] = {}  # symbol -> encoded snapshot, dropped on the symbol's next event
        self.snapshots_built = 0
        self._conflated: dict[str, set[Subscriber]] = {}  # symbol -> subscribers sent no deltas until drained
        self.conflations = 0
        # reference channel and trade annotations (NAV, premium/discount), set by gateway.reference
        self._reference: dict[str, set[Subscriber]] = {}
        self.reference_view: Callable[[str], JSON | None] | None = None
        self.trade_extras: Callable[[Fill], JSON] | None = None

    def start(self) -> None:
        if not self._unsubscribe:
            self._unsubscribe = [self._venue.subscribe_events(self._on_event),
                                 self._venue.subscribe_settlements(self._on_settlement)]

    def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        self._snapshots.clear()

    # ------------------------------------------------------------ subscriptions

    def subscribe_book(self, sub: Subscriber, symbol: str) -> None:
        """Queues the snapshot and registers for deltas in one synchronous step (no delta can slip in)."""
        self._unconflate(sub, symbol)
        sub.push(self._snapshot(symbol))
        self._book.setdefault(symbol, set()).add(sub)

    def _snapshot(self, symbol: str) -> str:
        text = self._snapshots.get(symbol)
        if text is None:
            listing = self._venue.listing(symbol)
            assert listing is not None
            snap = self._venue.l2(symbol)
            text = dumps({"channel": "book", "type": "snapshot", **render.book(snap, listing),
                          "stream_seq": self._venue.stream_seq})
            self.snapshots_built += 1
            if self._unsubscribe:  # only while we hear the events that make it stale
                self._snapshots[symbol] = text
        return text

    def _unconflate(self, sub: Subscriber, symbol: str) -> bool:
        """Ends ``sub``'s conflation of ``symbol``; whether it was conflated."""
        waiting = self._conflated.get(symbol)
        if waiting is None or sub not in waiting:
            return False
        waiting.discard(sub)
        return True

    def _publish_delta(self, symbol: str, subs: set[Subscriber], msg: JSON) -> None:
        """One encoding for every subscriber; lagging ones are conflated instead (module doc)."""
        text = dumps(msg)
        waiting = self._conflated.get(symbol)
        for sub in tuple(subs):
            if waiting is not None and sub in waiting:
                continue
            lagging: Callable[[], bool] | None = getattr(sub, "lagging", None)
            if lagging is not None and lagging():
                self._conflate(sub, symbol, msg["md_seq"])
                continue
            sub.push(text)

    def _conflate(self, sub: Subscriber, symbol: str, md_seq: int) -> None:
        self._conflated.setdefault(symbol, set()).add(sub)
        self.conflations += 1
        sub.push(dumps({"channel": "book", "type": "conflated", "symbol": symbol, "md_seq": md_seq}))

        def caught_up() -> None:
            if self._unconflate(sub, symbol) and sub in self._book.get(symbol, ()):
                sub.push(self._snapshot(symbol))  # the latest state replaces the deltas it skipped

        cast(Conflatable, sub).when_drained(caught_up)  # it has ``lagging``: it is one

    def subscribe_trades(self, sub: Subscriber, symbol: str) -> None:
        self._trades.setdefault(symbol, set()).add(sub)

    def subscribe_status(self, sub: Subscriber) -> None:
        instruments = []
        for listing in self._venue.listings():
            snap = self._venue.l2(listing.symbol, 0)
            instruments.append({"symbol": listing.symbol, "status": render.status_text(snap.status),
                                "md_seq": snap.md_seq})
        sub.push(dumps({"channel": "status", "type": "snapshot", "instruments": instruments}))
        self._status.add(sub)

    def subscribe_reference(self, sub: Subscriber, symbol: str) -> None:
        """Queues the current reference figures of ``symbol``, then every update."""
        view = self.reference_view(symbol) if self.reference_view is not None else None
        sub.push(dumps({"channel": "reference", "type": "snapshot", "symbol": symbol, "reference": view}))
        self._reference.setdefault(symbol, set()).add(sub)

    def publish_reference(self, symbol: str) -> None:
        subs = self._reference.get(symbol)
        if subs and self.reference_view is not None:
            self._send(subs, {"channel": "reference", "type": "update", "symbol": symbol,
                              "reference": self.reference_view(symbol)})

    def subscribe_private(self, sub: Subscriber, participant: str, channel: str) -> None:
        self._private.setdefault((participant, channel), set()).add(sub)

    def unsubscribe(self, sub: Subscriber, channel: str, *, symbol: str | None = None,
                    participant: str | None = None) -> None:
        if channel == "book" and symbol is not None:
            self._book.get(symbol, set()).discard(sub)
            self._unconflate(sub, symbol)
        elif channel == "trades" and symbol is not None:
            self._trades.get(symbol, set()).discard(sub)
        elif channel == "status":
            self._status.discard(sub)
        elif channel == "reference" and symbol is not None:
            self._reference.get(symbol, set()).discard(sub)
        elif participant is not None:
            self._private.get((participant, channel), set()).discard(sub)

    def observe(self, observer: Observer) -> Callable[[], None]:
        """Every event and settlement notice, after the channel fan-out (the operator's live feed);
        returns the function that ends the observation."""
        key = id(observer)
        self._observers[key] = observer

        def stop() -> None:
            self._observers.pop(key, None)

        return stop

    def drop(self, sub: Subscriber) -> None:
        for subs in (*self._book.values(), *self._trades.values(), *self._private.values(),
                     *self._reference.values(), *self._conflated.values()):
            subs.discard(sub)
        self._status.discard(sub)

    # ------------------------------------------------------------ fan-out

    def publish_private(self, participant: str, channel: str, msg: JSON) -> None:
        """A message of the gateway's own (e.g. market-maker protection) to a participant's channel."""
        self._send(self._private.get((participant, channel)), msg)

    @staticmethod
    def _send(subs: set[Subscriber] | None, msg: JSON) -> None:
        if subs:
            text = dumps(msg)
            for sub in tuple(subs):
                sub.push(text)

    def _on_event(self, event: Event) -> None:
        if self._snapshots:
            symbol = getattr(event, "symbol", None)
            if isinstance(symbol, str):
                self._snapshots.pop(symbol, None)
            else:  # an event without an instrument: be safe
                self._snapshots.clear()
        try:
            self._dispatch(event)
        except Exception:  # a rendering bug must never break the venue's fan-out
            log.exception("stream fan-out failed for %r", event)
        for observer in tuple(self._observers.values()):
            try:
                observer.on_event(event)
            except Exception:
                log.exception("observer %r failed on %r", observer, event)

    def _dispatch(self, event: Event) -> None:
        match event:
            case BookDelta():
                prev = self._last_book_md.get(event.symbol, 0)
                self._last_book_md[event.symbol] = event.md_seq
                subs = self._book.get(event.symbol)
                if subs:
                    listing = self._venue.listing(event.symbol)
                    if listing is None:
                        return
                    self._publish_delta(event.symbol, subs, {
                        "channel": "book", "type": "delta", "symbol": event.symbol, "md_seq": event.md_seq,
                        "prev_md_seq": prev, "side": render.side_text(event.side),
                        "price": format_price(event.price, listing), "qty": format_qty(event.qty, listing),
                        "count": event.count, "ts": event.ts, "stream_seq": self._venue.stream_seq,
                    })
            case Fill():
                listing = self._venue.listing(event.symbol)
                if listing is None:
                    return
                extras = self.trade_extras(event) if self.trade_extras is not None else {}
                trade_subs = self._trades.get(event.symbol)
                if trade_subs:
                    self._send(trade_subs, {"channel": "trades", "md_seq": event.md_seq,
                                            **render.public_trade(event, listing), **extras,
                                            "stream_seq": self._venue.stream_seq})
                for participant in {event.maker_participant, event.taker_participant}:
                    subs = self._private.get((participant, "fills"))
                    if subs:
                        for fill in render.own_fill(event, participant, listing):
                            self._send(subs, {"channel": "fills", **fill, **extras,
                                              "stream_seq": self._venue.stream_seq})
            case InstrumentStatusChanged():
                self._send(self._status, {"channel": "status", "type": "update", "symbol": event.symbol,
                                          "status": render.status_text(event.status), "md_seq": event.md_seq,
                                          "ts": event.ts, "stream_seq": self._venue.stream_seq})
            case IndicativeUncross():  # during a call auction: what an uncross would do now
                listing = self._venue.listing(event.symbol)
                if listing is None:
                    return
                self._send(self._status, {"channel": "status", **render.indicative(event, listing),
                                          "stream_seq": self._venue.stream_seq})
            case OrderAccepted() | OrderRejected() | OrderAmended() | OrderCancelled() | OrderExpired():
                subs = self._private.get((event.participant, "orders"))
                if subs:
                    self._send(subs, {"channel": "orders",
                                      **render.order_event(event, self._venue.listing(event.symbol)),
                                      "stream_seq": self._venue.stream_seq})
            case _:
                pass

    def _on_settlement(self, notice: SettlementNotice) -> None:
        for observer in tuple(self._observers.values()):
            try:
                observer.on_notice(notice)
            except Exception:
                log.exception("observer %r failed on %r", observer, notice)
        try:
            for participant in {notice.buyer, notice.seller}:
                subs = self._private.get((participant, "settlements"))
                if subs:
                    self._send(subs, {"channel": "settlements", **render.settlement(notice, participant)})
        except Exception:
            log.exception("settlement fan-out failed for %r", notice)
