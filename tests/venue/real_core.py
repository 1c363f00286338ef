"""A real ``VenueCore`` over the real gate (``tests.compliance.world``) and the real sequencer, with
no journal, store or chain: the wiring the pipeline and batch tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from compliance import Gatekeeper
from engine import AddInstrument, Engine, InstrumentSpec
from journal import Sequencer
from market.model import Listing
from tests.compliance.world import BUYER_WALLET, CASH, NOW, SELLER_WALLET, SYMBOL, TOKEN, World
from venue.core import VenueCore


@dataclass(frozen=True, slots=True)
class RealCore:
    core: VenueCore
    sequencer: Sequencer
    gate: Gatekeeper


@asynccontextmanager
async def real_core(world: World) -> AsyncIterator[RealCore]:
    gate, _ = world.build()
    spec = InstrumentSpec(symbol=SYMBOL, tick_size=world.tick, lot_size=world.lot)
    listing = Listing(spec=spec, name="t", token_address=TOKEN, cash_token_address=CASH, token_decimals=0,
                      cash_decimals=0)
    engine = Engine()
    sequencer = Sequencer(engine, None, clock=lambda: NOW)
    await sequencer.start()
    await sequencer.submit(AddInstrument(ts=0, spec=spec))
    core = VenueCore(engine=engine, sequencer=sequencer, listings=[listing], compliance=gate, clock=lambda: NOW,
                     wallets={"buyer": BUYER_WALLET, "seller": SELLER_WALLET})
    try:
        yield RealCore(core=core, sequencer=sequencer, gate=gate)
    finally:
        await sequencer.stop()
