"""A real ``VenueCore`` (real gate, real sequencer, no journal or chain) with listing rules for
requests for quotes and block trades, and a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from compliance import Gatekeeper
from engine import AddInstrument, Engine, InstrumentSpec
from journal import Sequencer
from market.model import Listing
from market.offbook import OffBookNotice
from tests.compliance.world import BUYER_WALLET, CASH, NOW, SELLER_WALLET, SYMBOL, TOKEN, World
from venue.core import VenueCore
from venue.listings import ListingRules

BAND = (50, 200)  # ticks: the test instrument's price band


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 10**9)


@dataclass(slots=True)
class OffBook:
    core: VenueCore
    gate: Gatekeeper
    clock: Clock
    notices: list[OffBookNotice]


@asynccontextmanager
async def off_book(world: World, rules: ListingRules) -> AsyncIterator[OffBook]:
    gate, _ = world.build()
    spec = InstrumentSpec(symbol=SYMBOL, tick_size=world.tick, lot_size=world.lot, band_low=BAND[0],
                          band_high=BAND[1])
    listing = Listing(spec=spec, name="t", token_address=TOKEN, cash_token_address=CASH, token_decimals=0,
                      cash_decimals=0)
    engine = Engine()
    sequencer = Sequencer(engine, None, clock=lambda: NOW)
    await sequencer.start()
    await sequencer.submit(AddInstrument(ts=0, spec=spec))
    clock = Clock()
    core = VenueCore(engine=engine, sequencer=sequencer, compliance=gate, clock=clock,
                     wallets={"buyer": BUYER_WALLET, "seller": SELLER_WALLET})
    core.reference.add_listing(listing, rules)
    notices: list[OffBookNotice] = []
    core.rfqs.subscribe(notices.append)
    core.blocks.subscribe(notices.append)
    try:
        yield OffBook(core=core, gate=gate, clock=clock, notices=notices)
    finally:
        await sequencer.stop()
