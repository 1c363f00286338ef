"""The operator's live feed: venue activity coalesced per 100 ms tick for every console websocket.

It observes the gateway's one ``streams.Hub`` (no second subscription to the venue) while at least
one operator session is attached. Every tick: the tick's trades and settlement notices in one
message each and one book per changed symbol; slow state (participants, reconciliation, audit head)
is diffed every second. Messages are ``{"channel": "operator", "type": ..., ...}``, serialised once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from engine import BookDelta, Event, Fill, IndicativeUncross, InstrumentStatusChanged
from gateway import render
from gateway.operator import views
from gateway.operator.port import OperatorVenue
from gateway.ports import SettlementNotice
from gateway.streams import Hub, Subscriber, dumps

log = logging.getLogger(__name__)

BOOK_FLUSH_S = 0.1  # book updates are coalesced per symbol over this interval
SLOW_POLL_S = 1.0  # participants, audit, reconciliation: diffed and pushed when changed
PUSH_DEPTH = 10
MAX_BATCH = 200  # trades / settlement notices per push; beyond that the console reloads


def instrument_view(venue: OperatorVenue, symbol: str, depth: int) -> views.OperatorInstrument | None:
    listing = venue.listing(symbol)
    if listing is None:
        return None
    last = venue.trades(symbol=symbol, limit=1)
    return views.instrument(listing, venue.l2(symbol, depth), last[0] if last else None)


class Feed:
    def __init__(self, venue: OperatorVenue) -> None:
        self._venue = venue
        self._clients: set[Subscriber] = set()
        self._dirty_books: set[str] = set()
        self._trades: list[views.OperatorTrade] = []
        self._notices: dict[int, SettlementNotice] = {}  # latest state per trade within a tick
        self._stop: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._last: dict[str, Any] = {}

    def attach(self, client: Subscriber, hub: Hub) -> None:
        if not self._clients:
            self._stop = hub.observe(self)
            self._last = {**self._slow_state(), **self._fast_state()}
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._clients.add(client)

    def detach(self, client: Subscriber) -> None:
        self._clients.discard(client)
        if self._clients:
            return
        if self._stop is not None:
            self._stop()
            self._stop = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._dirty_books.clear()
        self._trades.clear()
        self._notices.clear()

    def _broadcast(self, kind: str, **payload: Any) -> None:
        text = dumps({"channel": "operator", "type": kind, **payload})
        for client in tuple(self._clients):
            client.push(text)  # a client too far behind is closed by its session (slow consumer)

    # ------------------------------------------------------------ hub observer

    def on_event(self, event: Event) -> None:
        if isinstance(event, Fill):
            # the venue books a fill's trade before it fans the fill out: the newest trade is this one
            printed = self._venue.trades(symbol=event.symbol, limit=1)
            self._trades.append(views.fill_trade(event, self._venue.listing(event.symbol),
                                                 printed[0] if printed else None))
            if len(self._trades) > 2 * MAX_BATCH:
                del self._trades[:-MAX_BATCH]
            self._dirty_books.add(event.symbol)
        elif isinstance(event, IndicativeUncross):  # during a call auction
            listing = self._venue.listing(event.symbol)
            if listing is not None:
                payload = render.indicative(event, listing)
                del payload["type"]
                self._broadcast("indicative", **payload)
        elif isinstance(event, BookDelta | InstrumentStatusChanged):
            self._dirty_books.add(event.symbol)
            if isinstance(event, InstrumentStatusChanged):
                self._broadcast("status", symbol=event.symbol, status=render.status_text(event.status))

    def on_notice(self, notice: SettlementNotice) -> None:
        self._notices[notice.trade_id] = notice

    # ------------------------------------------------------------ ticks

    def _fast_state(self) -> dict[str, Any]:
        return {"rejection_counts": self._venue.rejection_counts()}

    def _slow_state(self) -> dict[str, Any]:
        audit = self._venue.audit_log(1)
        return {
            "participants": self._venue.participants(),
            "reconciliation": self._venue.reconciliation(),
            "audit_head": audit[0].id if audit else None,
        }

    async def _run(self) -> None:
        ticks_per_poll = max(1, round(SLOW_POLL_S / BOOK_FLUSH_S))
        tick = 0
        while True:
            await asyncio.sleep(BOOK_FLUSH_S)
            tick += 1
            try:
                self._flush(slow=tick % ticks_per_poll == 0)
            except Exception:  # a failing read must not end the live feed for every console
                log.exception("operator live update failed")

    def _flush(self, *, slow: bool) -> None:
        trades, self._trades = self._trades, []
        if trades:  # a tick's trades in one message; the console's tape holds MAX_BATCH anyway
            self._broadcast("trades", trades=[t.model_dump() for t in trades[-MAX_BATCH:]])
        notices, self._notices = self._notices, {}
        if notices:
            latest = [notices[k] for k in sorted(notices)][-MAX_BATCH:]
            self._broadcast("settlements", notices=[views.notice(n).model_dump() for n in latest],
                            counts=self._venue.settlement_counts(), truncated=len(notices) > MAX_BATCH)
        dirty, self._dirty_books = self._dirty_books, set()
        for symbol in sorted(dirty):
            view = instrument_view(self._venue, symbol, PUSH_DEPTH)
            if view is not None:
                self._broadcast("book", instrument=view.model_dump())
        state = self._fast_state()
        if slow:
            state.update(self._slow_state())
        for key, value in state.items():
            if self._last.get(key) == value:
                continue
            self._last[key] = value
            self._push_changed(key, value)

    def _push_changed(self, key: str, value: Any) -> None:
        venue = self._venue
        if key == "rejection_counts":
            self._broadcast("rejections", counts=value,
                            recent=[views.rejection(r).model_dump() for r in venue.recent_rejections(50)])
        elif key == "participants":
            self._broadcast("participants", participants=[views.participant(p).model_dump() for p in value])
        elif key == "reconciliation":
            self._broadcast("reconciliation", report=views.reconciliation(value).model_dump())
        elif key == "audit_head":
            self._broadcast("audit", chain_ok=venue.audit_chain_ok(),
                            entries=[views.audit_entry(e).model_dump() for e in venue.audit_log(100)])
