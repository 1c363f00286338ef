"""Reference data from the store into the running venue: at start (``load``) and every few seconds
(``run``), so participants, wallets, keys, instruments and listing rules written with the CLI or the
operator API are picked up live; ``refresh_now`` applies a change at once (the operator API calls it
after each write). The store is read in a worker thread; only applying the (usually empty) changes
runs on the event loop. Kept out of ``venue.runtime`` (wiring and lifecycle only).

A bad stored record never stops the venue: a participant with an unknown category or country, or
listing rules that do not parse, is reported (ERROR, once per problem) and skipped; its instrument
is not opened until the rules are fixed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import compliance
import store as store_pkg
from market.model import Listing
from venue.boot import StartupError
from venue.listings import ListingRules, load_rules, migrate_file
from venue.reference import ReferenceData, Snapshot, listing_from_record, read_store
from venue.registry import participant_problem

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
        self._applied_rules: dict[str, str] = {}  # symbol -> rules text in force
        self._reported: set[tuple[str, str]] = set()
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """At start: ``listings.json`` of an older version into the database (once), then everything."""
        await asyncio.to_thread(migrate_file, self._data_dir, self._store)
        await self.refresh_now(initial=True)

    async def run(self, stop: asyncio.Event) -> None:
        while not await _pause(stop, self.interval_s):
            try:
                await self.refresh_now()
            except store_pkg.StoreError as exc:
                log.error("cannot refresh reference data: %s", exc)

    async def refresh_now(self, *, initial: bool = False) -> None:
        async with self._lock:
            snapshot, instruments, rules_text = await asyncio.to_thread(self._read)
            await self._listings(instruments, rules_text, audit=not initial)
            self._reference.apply(*self._usable(snapshot))

    def _read(self) -> tuple[Snapshot, list[store_pkg.Instrument], dict[str, str]]:
        return read_store(self._store), self._store.list_instruments(), self._store.list_listing_rules()

    def _report(self, subject: str, problem: str) -> None:
        if (subject, problem) not in self._reported:
            self._reported.add((subject, problem))
            log.error("%s is skipped: %s (fix the record; the venue picks it up)", subject, problem)

    def _usable(self, snapshot: Snapshot) -> Snapshot:
        participants, wallets, keys = snapshot
        good = []
        for p in participants:
            problem = participant_problem(p)
            if problem is None:
                good.append(p)
            else:
                self._report(f"participant {p.id}", problem)
        ids = {p.id for p in good}
        return good, {k: v for k, v in wallets.items() if k in ids}, keys

    async def _listings(self, instruments: list[store_pkg.Instrument], rules_text: dict[str, str], *,
                        audit: bool) -> None:
        parsed, bad = load_rules(rules_text)
        for inst in instruments:
            text = rules_text.get(inst.symbol, "")
            known = self._reference.listing(inst.symbol) is not None
            if known and inst.symbol not in self._applied_rules:  # opened by its lister with these rules
                self._applied_rules[inst.symbol] = text
            if known and self._applied_rules[inst.symbol] == text:
                continue
            if inst.symbol in bad:
                self._report(f"instrument {inst.symbol}", f"its listing rules are unreadable: {bad[inst.symbol]}")
                continue
            try:
                await self._add_listing(listing_from_record(inst), parsed.get(inst.symbol, ListingRules()))
            except (StartupError, compliance.ComplianceError, ValueError) as exc:
                self._report(f"instrument {inst.symbol}", str(exc))
                continue
            self._applied_rules[inst.symbol] = text
            if not audit:
                log.info("instrument %s open for trading (%s)", inst.symbol, inst.name)
                continue
            if known:
                log.info("listing rules of %s now in force: %s", inst.symbol, text or "defaults")
                await asyncio.to_thread(self._store.append_audit, "venue", "instrument.rules_applied",
                                        {"symbol": inst.symbol})
            else:
                log.info("instrument %s open for trading (%s)", inst.symbol, inst.name)
                await asyncio.to_thread(self._store.append_audit, "venue", "instrument.open", {"symbol": inst.symbol})


async def _pause(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``; True (at once) when the venue is stopping."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
