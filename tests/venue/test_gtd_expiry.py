"""Issue 12 item 12: a GTD order expires on time with no other order flow, its hold is released,
and the time advance is journaled so a restart replays the same expiry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine import AdvanceTime, OrderExpired
from tests.venue.conftest import free_port
from venue.config import VenueConfig
from venue.demo import SYMBOL, start_demo_market
from venue.runtime import Venue
from venueclient import VenueClient


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[tuple[Venue, dict[str, dict[str, str]]]]:
    venue = Venue(VenueConfig(data_dir=tmp_path / "var", port=free_port()), fresh_chain=True)
    await venue.start()
    server: asyncio.Task[None] | None = None
    try:
        keys = await start_demo_market(venue, investors=1)
        ready = asyncio.Event()
        server = asyncio.create_task(venue.serve(on_ready=ready.set))
        await asyncio.wait_for(ready.wait(), 20)
        yield venue, keys
    finally:
        await venue.stop()
        if server is not None:
            await server


async def test_gtd_order_expires_on_time_and_releases_its_hold(
    embedded: tuple[Venue, dict[str, dict[str, str]]],
) -> None:
    venue, keys = embedded
    secret = keys["inv-1"]
    expired: list[tuple[OrderExpired, int]] = []
    venue.core.subscribe_events(lambda ev: expired.append((ev, time.time_ns())) if isinstance(ev, OrderExpired)
                                else None)
    journaled: list[AdvanceTime] = []  # the sequencer's listeners see commands once they are in the journal
    venue.sequencer.subscribe(lambda _seq, cmd, _res: journaled.append(cmd) if isinstance(cmd, AdvanceTime) else None)
    async with VenueClient(venue.base_url, secret["key_id"], secret["private_key"]) as inv:
        wallet = secret["wallet"]
        listing = venue.reference.listing(SYMBOL)
        assert listing is not None
        cash = listing.cash_token_address
        free_before = venue.gatekeeper.reserved_cash(wallet, cash)
        expire_ts = time.time_ns() + 1_500_000_000
        order = await inv.place(SYMBOL, "buy", 1, "40000.00", tif="gtd", expire_ts=expire_ts)
        assert order["status"] == "open"
        assert venue.gatekeeper.reserved_cash(wallet, cash) > free_before
        for _ in range(60):  # bounded: at most 3 s past expiry
            if expired:
                break
            await asyncio.sleep(0.1)
        assert [ev.order_id for ev, _ in expired] == [order["order_id"]]
        event, seen_at = expired[0]
        assert event.ts >= expire_ts
        assert seen_at - expire_ts < 1_000_000_000  # an ``expired`` event within one second
        assert venue.gatekeeper.reserved_cash(wallet, cash) == free_before
        assert all(o["order_id"] != order["order_id"] for o in await inv.my_orders())
        assert venue.engine.order(order["order_id"]) is None
    assert journaled and journaled[-1].ts >= expire_ts
