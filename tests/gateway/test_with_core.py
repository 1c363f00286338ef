"""The gateway over the real ``venue.core.VenueCore`` + ``journal.Sequencer`` (journal in a temp
directory; no compliance/settlement/store): the same contract the fake honours."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from engine import AddInstrument, Engine
from gateway import GatewayConfig, create_app
from journal import Journal, Sequencer
from tests.gateway.fakes import Keyring, make_key, make_listing, serve
from venue.core import VenueCore
from venueclient import ApiError, VenueClient


@pytest.fixture
async def core_url(tmp_path: Path) -> AsyncIterator[tuple[VenueCore, str, dict[str, Keyring]]]:
    keys = {"alice": make_key("alice"), "bob": make_key("bob")}
    listing = make_listing("OMN-A")
    engine = Engine()
    journal = Journal.open(tmp_path / "journal")
    sequencer = Sequencer(engine, journal)
    await sequencer.start()
    await sequencer.submit(AddInstrument(ts=0, spec=listing.spec))
    core = VenueCore(engine=engine, sequencer=sequencer, listings=[listing], keys=[k.api_key for k in keys.values()])
    try:
        async with serve(create_app(core, config=GatewayConfig())) as url:
            yield core, url, keys
    finally:
        await sequencer.stop()
        journal.close()


def _client(url: str, key: Keyring) -> VenueClient:
    return VenueClient(url, key.key_id, key.private_key)


async def test_orders_books_and_streams_over_the_core(core_url: tuple[VenueCore, str, dict[str, Keyring]]) -> None:
    core, url, keys = core_url
    async with _client(url, keys["alice"]) as alice, _client(url, keys["bob"]) as bob:
        watcher = await bob.connect()
        book = await watcher.local_book("OMN-A")
        await watcher.subscribe("fills")
        guarded = await alice.connect(cancel_on_disconnect=True)
        acks = await asyncio.gather(*[guarded.place("OMN-A", "sell", "1", str(100 + i), client_order_id=f"s{i}")
                                      for i in range(5)])
        assert [a["status"] for a in acks] == ["open"] * 5
        assert await alice.place("OMN-A", "sell", "1", "100", client_order_id="s0") == acks[0]
        hit = await watcher.place("OMN-A", "buy", "1.5", "101")
        assert (hit["status"], hit["filled_qty"]) == ("filled", "1.5")
        fill = await watcher.next_event(where=lambda m: m["channel"] == "fills")
        assert (fill["side"], fill["liquidity"]) == ("buy", "taker")
        assert [(t["price"], t["qty"]) for t in await bob.trades("OMN-A")] == [("101.00", "0.5"), ("100.00", "1.0")]
        await guarded.close()
        for _ in range(100):
            if not core.open_orders("alice"):
                break
            await asyncio.sleep(0.02)
        assert core.open_orders("alice") == []
        await asyncio.sleep(0.1)
        assert book.asks() == [] and book.bids() == [] and book.gaps == 0
        with pytest.raises(ApiError) as err:
            await alice.cancel(client_order_id="s4")
        assert err.value.code == "UNKNOWN_ORDER"
        await watcher.close()


async def test_core_status_changes_reach_the_gateway(core_url: tuple[VenueCore, str, dict[str, Keyring]]) -> None:
    core, url, keys = core_url
    async with _client(url, keys["alice"]) as alice:
        stream = await alice.connect()
        await stream.subscribe("status")
        await stream.next_event(where=lambda m: m["channel"] == "status")
        from engine import InstrumentStatus

        outcome: Any = await core.set_status("OMN-A", InstrumentStatus.HALTED, operator="ops")
        assert outcome.result.code.name == "OK"
        update = await stream.next_event(where=lambda m: m["channel"] == "status")
        assert update["status"] == "halted"
        with pytest.raises(ApiError) as err:
            await stream.place("OMN-A", "buy", "1", "90")
        assert err.value.code == "INSTRUMENT_HALTED"
        await stream.close()
