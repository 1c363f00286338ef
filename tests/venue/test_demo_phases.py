"""Issue 15's "done when" on the demo market (``venue demo``): one series trades in periodic call
auctions, the other continuously, and an RFQ and a block trade print. A whole embedded venue (SQLite
+ in-process EVM) with the demo's bots over real sockets, for a short, bounded run."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest

from engine import InstrumentStatus, TradeOrigin
from market.model import SettlementState
from tests.venue.conftest import free_port
from tests.venue.test_operating_live import wait_for
from venue.bots import CallTrader
from venue.config import VenueConfig
from venue.demo import CALL_SYMBOL, SYMBOL, run_bots, start_demo_market
from venue.runtime import Venue
from venueclient import ApiError, VenueClient

CALL_EVERY_S = 3.0  # the demo's default is a minute; short here so the run stays brief


@pytest.mark.slow
async def test_the_demo_runs_a_call_auction_series_next_to_a_continuous_one_with_an_rfq_and_a_block(
        tmp_path: Path) -> None:
    # the chain-lag safeguard is off, as in the other live demo tests: a starved watcher on a loaded
    # machine would refuse orders with CHAIN_STATE_STALE, which is not what this test is about
    venue = Venue(VenueConfig(data_dir=tmp_path / "var", port=free_port(), max_chain_lag_s=None), fresh_chain=True)
    await venue.start()
    server: asyncio.Task[None] | None = None
    bots: asyncio.Task[list[Any]] | None = None
    stop = asyncio.Event()
    try:
        keys = await start_demo_market(venue, investors=2, call_interval_s=CALL_EVERY_S)
        ready = asyncio.Event()
        server = asyncio.create_task(venue.serve(on_ready=ready.set))
        await asyncio.wait_for(ready.wait(), 20)
        assert sorted(listing.symbol for listing in venue.core.listings()) == sorted([SYMBOL, CALL_SYMBOL])
        call, continuous = venue.core.listing(CALL_SYMBOL), venue.core.listing(SYMBOL)
        assert call is not None and continuous is not None
        assert call.token_address != continuous.token_address  # its own note token

        async def in_call() -> bool:
            return venue.engine.l2(CALL_SYMBOL, 0).status is InstrumentStatus.CALL

        await wait_for(in_call, timeout=20)
        # during a call an IOC is refused with its code, a GTC rests and the indicative uncross is published
        secret = keys["inv-1"]
        async with VenueClient(venue.base_url, secret["key_id"], secret["private_key"]) as inv1:
            stream = await inv1.connect()
            await stream.subscribe("status", symbol=CALL_SYMBOL)
            with pytest.raises(ApiError) as refused:
                await inv1.place(CALL_SYMBOL, "buy", 1, "42000.00", tif="ioc")
            assert refused.value.code == "NOT_ALLOWED_IN_CALL"
            await inv1.place(CALL_SYMBOL, "buy", 1, "41990.00", tif="gtc")
            indicative = await stream.next_event(
                timeout=20, where=lambda m: m.get("type") == "indicative" and m.get("symbol") == CALL_SYMBOL)
            assert {"price", "volume", "imbalance_side", "imbalance_qty"} <= set(indicative)
            await stream.close()

        bots = asyncio.create_task(run_bots(venue, keys, stop))

        def origins(symbol: str) -> set[TradeOrigin]:
            return {t.origin for t in venue.core.trades(symbol=symbol, limit=1_000)}

        async def all_printed() -> bool:
            settled_auction = any(t.origin is TradeOrigin.AUCTION and t.settlement is SettlementState.CONFIRMED
                                  for t in venue.core.trades(symbol=CALL_SYMBOL, limit=1_000))
            return settled_auction and {TradeOrigin.RFQ, TradeOrigin.BLOCK} <= origins(SYMBOL)

        await wait_for(all_printed, timeout=120)
        stop.set()
        finished = await asyncio.wait_for(bots, 60)
        # the call series trades only at uncrosses; the other one continuously (and off book), never in a call
        assert origins(CALL_SYMBOL) == {TradeOrigin.AUCTION}
        assert TradeOrigin.CONTINUOUS in origins(SYMBOL) and TradeOrigin.AUCTION not in origins(SYMBOL)
        assert venue.engine.l2(SYMBOL, 0).status is InstrumentStatus.OPEN
        callers = [b for b in finished if isinstance(b, CallTrader)]
        assert len(callers) == 3 and sum(b.stats.orders for b in callers) > 3
        codes = {code for b in callers for code in b.stats.reject_codes}
        assert codes == set(), codes  # GTC limits within the band: the call collects every one of them
    finally:
        stop.set()
        if bots is not None and not bots.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(bots, 60)
        await venue.stop()
        if server is not None:
            await server
