"""Market data for slow subscribers (issue 13, speed): every book delta is encoded once and the same
text goes to every subscriber; a subscriber whose backlog is past its bound gets a ``conflated``
notice, no deltas, and the latest snapshot once it has drained; the Python client's local book
follows that without a resubscribe and ends equal to the venue's book."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from engine import NewOrder, Side
from gateway import GatewayConfig, create_app
from gateway.streams import Hub
from tests.gateway.conftest import client
from tests.gateway.fakes import FakeVenue, Keyring, make_key, make_listing, serve
from venueclient import VenueStream
from venueclient.book import LocalBook


class Subscriber:
    """Records what it is sent; lags when told to (as a session past ``ws_conflate_bytes``)."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.behind = False
        self.on_drained: list[Callable[[], None]] = []

    def push(self, text: str) -> None:
        self.texts.append(text)

    def lagging(self) -> bool:
        return self.behind

    def when_drained(self, callback: Callable[[], None]) -> None:
        self.on_drained.append(callback)

    def drain(self) -> None:
        self.behind = False
        callbacks, self.on_drained = self.on_drained, []
        for callback in callbacks:
            callback()

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(t) for t in self.texts]


def _venue() -> FakeVenue:
    return FakeVenue([make_listing("OMN-A")], [make_key("alice").api_key])


async def _bid(venue: FakeVenue, price: int) -> None:
    await venue.submit("alice", NewOrder(ts=0, participant="alice", symbol="OMN-A", side=Side.BUY, qty=1,
                                         price=price))


async def test_a_lagging_subscriber_gets_a_notice_then_the_latest_snapshot_instead_of_deltas() -> None:
    """Before: every delta was queued to every subscriber however far behind it was, until the
    queue overflowed and the session was closed (4009)."""
    venue = _venue()
    hub = Hub(venue)
    hub.start()
    try:
        fast, slow = Subscriber(), Subscriber()
        hub.subscribe_book(fast, "OMN-A")
        hub.subscribe_book(slow, "OMN-A")
        await _bid(venue, 100)
        slow.behind = True
        for price in (101, 102, 103):
            await _bid(venue, price)
        deltas = [m for m in fast.messages if m["type"] == "delta"]
        assert len(deltas) == 4
        assert [m["type"] for m in slow.messages] == ["snapshot", "delta", "conflated"]
        assert hub.conflations == 1
        slow.drain()
        last = slow.messages[-1]
        assert last["type"] == "snapshot" and last["md_seq"] >= deltas[-1]["md_seq"]
        assert [lv["price"] for lv in last["bids"]] == ["1.03", "1.02", "1.01", "1.00"]
        await _bid(venue, 104)  # caught up: deltas flow again
        assert slow.messages[-1]["type"] == "delta" and slow.messages[-1]["price"] == "1.04"
        # encoded once: the fast and the slow subscriber were queued the very same text
        assert fast.texts[-1] is slow.texts[-1]
    finally:
        hub.stop()


async def test_a_subscriber_that_leaves_while_conflated_gets_no_snapshot() -> None:
    venue = _venue()
    hub = Hub(venue)
    hub.start()
    try:
        slow = Subscriber()
        hub.subscribe_book(slow, "OMN-A")
        slow.behind = True
        await _bid(venue, 100)
        hub.unsubscribe(slow, "book", symbol="OMN-A")
        slow.drain()
        assert [m["type"] for m in slow.messages] == ["snapshot", "conflated"]
    finally:
        hub.stop()


class _Conn:
    """Enough of a websocket connection for ``VenueStream`` to record what it would send."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, text: str) -> None:
        self.sent.append(text)


async def test_the_client_book_waits_for_the_snapshot_after_a_conflated_notice() -> None:
    stream = VenueStream(_Conn())  # type: ignore[arg-type]
    book = stream._books["OMN-A"] = LocalBook("OMN-A")
    stream._book_waiters["OMN-A"] = asyncio.Event()
    level = {"price": "1.00", "qty": "1", "count": 1}
    stream._on_message({"channel": "book", "type": "snapshot", "symbol": "OMN-A", "md_seq": 5, "status": "open",
                        "bids": [level], "asks": []})
    stream._on_message({"channel": "book", "type": "conflated", "symbol": "OMN-A", "md_seq": 9})
    assert not book.synced and not stream._book_waiters["OMN-A"].is_set()
    # a delta that slipped through is ignored, not taken for a gap (no resubscribe)
    stream._on_message({"channel": "book", "type": "delta", "symbol": "OMN-A", "md_seq": 12, "prev_md_seq": 9,
                        "side": "buy", "price": "1.05", "qty": "1", "count": 1, "ts": 0})
    assert book.gaps == 0 and stream._conn.sent == []  # type: ignore[attr-defined]
    stream._on_message({"channel": "book", "type": "snapshot", "symbol": "OMN-A", "md_seq": 14, "status": "open",
                        "bids": [level, {"price": "1.05", "qty": "2", "count": 2}], "asks": []})
    assert book.synced and stream._book_waiters["OMN-A"].is_set()
    assert book.best_bid() == (Decimal("1.05"), Decimal("2"), 2)
    assert (book.conflations, book.snapshots) == (1, 2)


async def test_a_session_past_its_bound_is_conflated_end_to_end(keys: dict[str, Keyring]) -> None:
    """Through a live session and the Python client: with a bound of 0 bytes, a sweep of three
    levels (three deltas from one command) is sent as one delta, the notice, and once the queue
    has drained the latest snapshot; the client's book ends equal to the venue's."""
    venue = FakeVenue([make_listing("OMN-A")], [k.api_key for k in keys.values()])
    app = create_app(venue, config=GatewayConfig(rate_per_s=1000, rate_burst=1000, ws_conflate_bytes=0))
    async with serve(app) as url, client(url, keys["alice"]) as alice, client(url, keys["bob"]) as bob:
        for price in ("101", "102", "103"):
            await bob.place("OMN-A", "sell", "1", price)
        seen: list[str] = []
        stream = await alice.connect(inbound_filter=lambda m: seen.append(str(m.get("type"))) or True)
        book = await stream.local_book("OMN-A")
        await alice.place("OMN-A", "buy", "3", "103", tif="ioc")  # one command, three book deltas
        for _ in range(500):
            if book.conflations and book.synced and not book.asks():
                break
            await asyncio.sleep(0.01)
        await stream.close()
    assert book.conflations == 1 and book.gaps == 0, seen
    assert seen[-3:] == ["delta", "conflated", "snapshot"], seen
    assert book.as_levels() == ([], [])
