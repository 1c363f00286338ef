"""Reference data added while the venue runs: participants, wallets and keys written with the CLI
(``venue participants add``, ``venue keys create``) and instruments listed with ``venue instruments
add``. The store is read in a worker thread; only applying the (usually empty) changes runs on the
event loop. Kept out of ``venue.runtime`` (wiring and lifecycle only)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import compliance
import store as store_pkg
from market.model import Listing
from venue.boot import StartupError
from venue.listings import ListingError, ListingRules, load_rules
from venue.reference import ReferenceData, listing_from_record, read_store

log = logging.getLogger(__name__)

AddListing = Callable[[Listing, ListingRules], Awaitable[None]]


class ReferenceRefresh:
    def __init__(self, store: store_pkg.Store, reference: ReferenceData, add_listing: AddListing,
                 data_dir: Path, *, interval_s: float = 2.0) -> None:
        self._store = store
        self._reference = reference
        self._add_listing = add_listing
        self._data_dir = data_dir
        self.interval_s = interval_s

    async def run(self, stop: asyncio.Event) -> None:
        while not await _pause(stop, self.interval_s):
            try:
                snapshot = await asyncio.to_thread(read_store, self._store)
                instruments = await asyncio.to_thread(self._store.list_instruments)
            except store_pkg.StoreError:
                log.exception("cannot refresh reference data")
                continue
            await self.open_new_instruments(instruments)
            self._reference.apply(*snapshot)

    async def open_new_instruments(self, instruments: list[store_pkg.Instrument]) -> None:
        new = [inst for inst in instruments if self._reference.listing(inst.symbol) is None]
        if not new:
            return
        try:
            rules = load_rules(self._data_dir)
        except ListingError as exc:
            log.error("cannot open new instruments: %s", exc)
            return
        for inst in new:
            try:
                await self._add_listing(listing_from_record(inst), rules.get(inst.symbol, ListingRules()))
            except (StartupError, compliance.ComplianceError) as exc:
                log.error("cannot open instrument %s: %s", inst.symbol, exc)
            else:
                self._store.append_audit("venue", "instrument.open", {"symbol": inst.symbol})


async def _pause(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``; True (at once) when the venue is stopping."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
