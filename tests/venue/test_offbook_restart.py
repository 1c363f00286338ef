"""Restart: a negotiated trade is a journaled ``Cross``, so it comes back with its origin from the
journal (engine replay and store projection); requests for quotes and unmatched block sides live
in memory only and are simply gone, which equals their expiry (no funds were moved or kept)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import store as store_pkg
from engine import AddInstrument, Engine, Side
from journal import Journal, Sequencer, recover
from market.offbook import RfqState
from tests.gateway.fakes import make_listing
from venue.core import VenueCore
from venue.listings import ListingRules

SYMBOL = "OMN-A"
WALLETS = {"alice": "0x" + "aa" * 20, "bob": "0x" + "bb" * 20}
RULES = ListingRules(min_block_lots=20)


async def _core(directory: Path, journal: Journal, engine: Engine) -> tuple[VenueCore, Sequencer]:
    sequencer = Sequencer(engine, journal)
    await sequencer.start()
    listing = make_listing(SYMBOL)
    if engine.spec(SYMBOL) is None:
        await sequencer.submit(AddInstrument(ts=0, spec=listing.spec))
    core = VenueCore(engine=engine, sequencer=sequencer, wallets=WALLETS)
    core.reference.add_listing(listing, RULES)
    return core, sequencer


async def test_negotiated_trades_survive_a_restart_and_open_requests_do_not(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "journal"
    journal = Journal.open(directory)
    core, sequencer = await _core(directory, journal, Engine())
    rfq = core.rfqs.request("alice", symbol=SYMBOL, side=Side.BUY, qty=3, ttl_s=30)
    quote = core.rfqs.quote("bob", rfq.rfq_id, price=1_000, qty=3)
    traded = await core.rfqs.accept("alice", rfq.rfq_id, quote.quote_id)
    await core.blocks.submit("alice", block_id="b", symbol=SYMBOL, side=Side.SELL, price=990, qty=20,
                             counterparty="bob")
    block = await core.blocks.submit("bob", block_id="b", symbol=SYMBOL, side=Side.BUY, price=990, qty=20,
                                     counterparty="alice")
    open_rfq = core.rfqs.request("alice", symbol=SYMBOL, side=Side.SELL, qty=1, ttl_s=30)
    await core.blocks.submit("bob", block_id="pending", symbol=SYMBOL, side=Side.SELL, price=990, qty=20,
                             counterparty="alice")
    await sequencer.stop()
    journal.close()

    journal = Journal.open(directory)
    engine, _ = recover(directory, journal=journal)
    restarted, sequencer = await _core(directory, journal, engine)
    assert restarted.rfqs.all() == [] and restarted.blocks.all() == []  # in memory only: gone, like an expiry
    assert restarted.rfqs.rfqs_of("alice") == []
    db = store_pkg.Store.open(f"sqlite:///{tmp_path / 'venue.db'}")
    try:
        with caplog.at_level(logging.WARNING, logger="store"):
            store_pkg.sync_from_journal(journal, db)
        stored = {t.trade_id: t.to_trade() for t in db.list_trades()}
    finally:
        db.close()
    assert not [r for r in caplog.records if "not in the store" in r.message]  # no order rows expected for them
    assert traded.trade_id is not None and block.trade_id is not None
    assert {k: (t.origin.name, t.buyer, t.seller, t.price, t.qty) for k, t in stored.items()} == {
        traded.trade_id: ("RFQ", "alice", "bob", 1_000, 3), block.trade_id: ("BLOCK", "bob", "alice", 990, 20)}
    again = restarted.rfqs.request("alice", symbol=SYMBOL, side=Side.SELL, qty=1, ttl_s=30)
    assert again.state is RfqState.OPEN and again.rfq_id > open_rfq.rfq_id  # ids from the clock: never reused
    await sequencer.stop()
    journal.close()
