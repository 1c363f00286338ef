"""End to end through the real gateway and the chain (in-process EVM; anvil + PostgreSQL in the
production variant): a request for quotes and a negotiated block trade each print off the book,
settle by DvP on chain and carry their origin in the store and on settlement notices."""

from __future__ import annotations

from decimal import Decimal

from market.model import SettlementState
from tests.venue.conftest import RunningVenue
from tests.venue.test_e2e import client, wait_for
from venue.bots import OffBookTrader
from venue.demo import BLOCK_LOTS, FAIR_PRICE, SYMBOL
from venue.runtime import Venue


async def test_an_rfq_and_a_block_settle_on_chain(running: RunningVenue) -> None:
    venue = running.venue
    wallets = {p: running.keys[p]["wallet"] for p in ("mm-1", "inv-1", "inv-2")}
    before = {p: venue.admin.balances(w) for p, w in wallets.items()}
    async with client(running, "mm-1") as mm, client(running, "inv-1") as inv1, client(running, "inv-2") as inv2:
        rfq = await inv1.request_quotes(SYMBOL, "buy", 2, ttl_s=30)
        quote = await mm.quote_rfq(rfq["rfq_id"], "45020.00", 2)
        rfq_done = await inv1.accept_quote(rfq["rfq_id"], quote["quote_id"])
        await inv2.submit_block("e2e-1", SYMBOL, "sell", "45000.00", BLOCK_LOTS, counterparty="mm-1")
        block_done = await mm.submit_block("e2e-1", SYMBOL, "buy", "45000.00", BLOCK_LOTS, counterparty="inv-2")
        ids = {rfq_done["trade_id"]: "RFQ", block_done["trade_id"]: "BLOCK"}

        async def settled() -> bool:
            trades = [venue.core.trade(i) for i in ids]
            return all(t is not None and t.settlement is SettlementState.CONFIRMED for t in trades)

        await wait_for(settled, timeout=60)
        mine = {t["trade_id"]: t["origin"] for t in await mm.my_fills(SYMBOL)}
        assert mine == {rfq_done["trade_id"]: "rfq", block_done["trade_id"]: "block"}
    notices = {n.trade_id: n for n in venue.core.settlements() if n.trade_id in ids}
    assert {i: n.origin.name for i, n in notices.items()} == ids and all(n.tx_hash for n in notices.values())
    after = {p: venue.admin.balances(w) for p, w in wallets.items()}
    cash = lambda price, qty: int(Decimal(price) * qty * 10**6)  # noqa: E731
    assert after["inv-1"] == (before["inv-1"][0] + 2, before["inv-1"][1] - cash("45020.00", 2))
    assert after["inv-2"] == (before["inv-2"][0] - BLOCK_LOTS, before["inv-2"][1] + cash("45000.00", BLOCK_LOTS))
    assert after["mm-1"] == (before["mm-1"][0] - 2 + BLOCK_LOTS,
                             before["mm-1"][1] + cash("45020.00", 2) - cash("45000.00", BLOCK_LOTS))
    await wait_for(lambda: _stored(venue, ids), timeout=30)
    report = await venue.core.run_reconciliation(operator="test")
    assert report.ok, report.differences

    # the demo's bot (``venue demo``) does one round of each over the same API
    listing = venue.core.listing(SYMBOL)
    assert listing is not None
    async with client(running, "inv-1") as inv1, client(running, "mm-1") as mm:
        bot = OffBookTrader(inv1, mm, SYMBOL, fair=FAIR_PRICE, increment=listing.price_increment,
                            requester_id="inv-1", dealer_id="mm-1", block_qty=BLOCK_LOTS)
        await bot.rfq_round()
        await bot.block_round()
    origins = {t.trade_id: t.origin.name for t in venue.core.trades() if t.trade_id in (*bot.rfq_trades,
                                                                                         *bot.block_trades)}
    assert sorted(origins.values()) == ["BLOCK", "RFQ"]


async def _stored(venue: Venue, ids: dict[int, str]) -> bool:
    rows = {t.trade_id: t.origin for t in venue.store.list_trades() if t.trade_id in ids}
    return rows == {i: origin.lower() for i, origin in ids.items()}
