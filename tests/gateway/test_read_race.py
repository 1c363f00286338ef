"""Reads never race the engine: REST reads of books and orders while orders churn on the event loop.

The venue mutates the engine's books on the event loop. A route that reads them from another
thread (FastAPI runs plain ``def`` routes in a thread pool) can crash (a price level removed
between the key and its lookup) or return a torn snapshot: ``md_seq`` from one moment, levels
from a later one. This test churns orders on the loop while clients read the book over real HTTP,
and checks every snapshot against a replica of the book rebuilt from the engine's own
``BookDelta`` events at the snapshot's ``md_seq``.
"""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from engine import AddInstrument, BookDelta, CancelOrder, Engine, Event, NewOrder, Side
from gateway import GatewayConfig, create_app
from gateway.decimals import format_price, format_qty
from journal import Journal, Sequencer
from tests.gateway.fakes import Keyring, make_key, make_listing, serve
from venue.core import VenueCore
from venueclient import ApiError, VenueClient

SYMBOL = "OMN-A"
LISTING = make_listing(SYMBOL)
CHURN_S = 2.5
READERS = 6


@pytest.fixture
async def core_url(tmp_path: Path) -> AsyncIterator[tuple[VenueCore, str, dict[str, Keyring]]]:
    keys = {"alice": make_key("alice"), "bob": make_key("bob")}
    engine = Engine()
    journal = Journal.open(tmp_path / "journal")
    sequencer = Sequencer(engine, journal)
    await sequencer.start()
    await sequencer.submit(AddInstrument(ts=0, spec=LISTING.spec))
    core = VenueCore(engine=engine, sequencer=sequencer, listings=[LISTING], keys=[k.api_key for k in keys.values()])
    try:
        async with serve(create_app(core, config=GatewayConfig(rate_per_s=1e6, rate_burst=1_000_000))) as url:
            yield core, url, keys
    finally:
        await sequencer.stop()
        journal.close()


def _client(url: str, key: Keyring) -> VenueClient:
    return VenueClient(url, key.key_id, key.private_key)


Levels = tuple[tuple[str, str, int], ...]


class Replica:
    """The book at every ``md_seq``, rebuilt from the engine's ``BookDelta`` events (on the loop)."""

    def __init__(self, bids: dict[int, tuple[int, int]], asks: dict[int, tuple[int, int]], md_seq: int) -> None:
        self.start = md_seq
        self._bids = bids
        self._asks = asks
        self.deltas: list[BookDelta] = []

    def on_event(self, event: Event) -> None:
        if isinstance(event, BookDelta) and event.symbol == SYMBOL:
            self.deltas.append(event)

    def books_at(self, md_seqs: list[int]) -> dict[int, tuple[Levels, Levels]]:
        """Replays the deltas once, capturing the book at each wanted md_seq."""
        bids, asks = dict(self._bids), dict(self._asks)
        wanted = sorted(set(md_seqs))
        out: dict[int, tuple[Levels, Levels]] = {}
        i = 0
        for md_seq in wanted:
            while i < len(self.deltas) and self.deltas[i].md_seq <= md_seq:
                d = self.deltas[i]
                side = bids if d.side is Side.BUY else asks
                if d.qty == 0:
                    side.pop(d.price, None)
                else:
                    side[d.price] = (d.qty, d.count)
                i += 1
            out[md_seq] = (_render(bids, reverse=True), _render(asks, reverse=False))
        return out


def _render(side: dict[int, tuple[int, int]], *, reverse: bool) -> Levels:
    return tuple((format_price(p, LISTING), format_qty(q, LISTING), c)
                 for p, (q, c) in sorted(side.items(), reverse=reverse))


def _levels(snapshot: dict[str, Any], name: str) -> Levels:
    return tuple((lv["price"], lv["qty"], lv["count"]) for lv in snapshot[name])


def _record_reads_off_the_loop(core: VenueCore) -> set[str]:
    """Wraps the core's live-state reads to note any call from a thread other than the loop's."""
    loop_thread = threading.get_ident()
    seen: set[str] = set()
    for name in ("l2", "order", "open_orders", "trades", "listing"):
        read = getattr(core, name)

        def checked(*args: Any, _read: Any = read, _name: str = name, **kwargs: Any) -> Any:
            if threading.get_ident() != loop_thread:
                seen.add(_name)
            return _read(*args, **kwargs)

        setattr(core, name, checked)
    return seen


async def test_book_and_order_reads_are_consistent_while_orders_churn(
    core_url: tuple[VenueCore, str, dict[str, Keyring]],
) -> None:
    core, url, keys = core_url
    seeded = [NewOrder(ts=0, participant="alice", symbol=SYMBOL, side=Side.SELL, qty=1, price=20_000 + i)
              for i in range(150)]
    seeded += [NewOrder(ts=0, participant="bob", symbol=SYMBOL, side=Side.BUY, qty=1, price=10_000 - i)
               for i in range(150)]
    await asyncio.gather(*(core.submit(cmd.participant, cmd) for cmd in seeded))
    start = core.l2(SYMBOL)  # on the loop: a consistent starting point
    replica = Replica({lv.price: (lv.qty, lv.count) for lv in start.bids},
                      {lv.price: (lv.qty, lv.count) for lv in start.asks}, start.md_seq)
    unsubscribe = core.subscribe_events(replica.on_event)
    off_loop = _record_reads_off_the_loop(core)
    rng = random.Random(11)
    stop = asyncio.Event()

    async def churn() -> int:
        """New price levels appear and vanish on both sides, in bursts of concurrent commands."""
        commands = 0
        while not stop.is_set():
            batch = []
            for _ in range(20):
                side = rng.choice((Side.BUY, Side.SELL))
                price = rng.randrange(5_000, 9_990) if side is Side.BUY else rng.randrange(20_010, 25_000)
                who = "bob" if side is Side.BUY else "alice"
                batch.append(NewOrder(ts=0, participant=who, symbol=SYMBOL, side=side, qty=1, price=price))
            outcomes = await asyncio.gather(*(core.submit(c.participant, c) for c in batch))
            ids = [(c.participant, o.result.order_id) for c, o in zip(batch, outcomes, strict=True)
                   if o.result is not None and o.result.order_id]
            await asyncio.gather(*(core.submit(who, CancelOrder(ts=0, participant=who, order_id=oid))
                                   for who, oid in ids))
            commands += len(batch) + len(ids)
        return commands

    snapshots: list[dict[str, Any]] = []
    failures: list[str] = []

    async def reader(n: int, client: VenueClient) -> None:
        while not stop.is_set():
            try:
                if n % 3 == 2:
                    orders = await client.my_orders(SYMBOL)
                    if any(o["symbol"] != SYMBOL for o in orders):
                        failures.append(f"foreign order in {orders!r}")
                else:
                    snapshots.append(await client.book(SYMBOL, depth=10_000))
            except ApiError as exc:  # a read that crashed the route: 500 INTERNAL_ERROR
                failures.append(f"{exc.status} {exc.code}: {exc.message}")

    began = time.monotonic()
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads interleave every 10 us instead of 5 ms: races show in seconds
    try:  # one client per key: a client keeps its own signing timestamps unique (replay protection)
        async with _client(url, keys["alice"]) as alice, _client(url, keys["bob"]) as bob:
            churner = asyncio.create_task(churn())
            readers = [asyncio.create_task(reader(n, alice if n % 2 else bob)) for n in range(READERS)]
            await asyncio.sleep(CHURN_S)
            stop.set()
            commands = await churner
            await asyncio.gather(*readers)
    finally:
        sys.setswitchinterval(switch)
    unsubscribe()
    elapsed = time.monotonic() - began

    books = replica.books_at([s["md_seq"] for s in snapshots])
    torn = [s["md_seq"] for s in snapshots
            if (_levels(s, "bids"), _levels(s, "asks")) != books[s["md_seq"]]]
    assert commands > 200 and len(snapshots) > 50, (commands, len(snapshots), elapsed)
    assert off_loop == set(), f"live state read from another thread than the event loop's: {off_loop}"
    assert failures == [], f"{len(failures)} failed reads of {len(snapshots)}: {failures[:3]}"
    assert torn == [], f"{len(torn)} of {len(snapshots)} book snapshots are torn (levels newer than md_seq)"
