"""Wiring of the order-entry guards and the eligibility enforcer into a running venue (kept out of
``venue.runtime``): the backlog tracker follows the trade book's settlement notices, the entry
guard sits in the pipeline, the enforcer listens to the chain watcher and the reference-data
reload and sweeps the gate's view every watcher poll interval."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from compliance import ChainWatcher, Gatekeeper
from venue.config import VenueConfig
from venue.core import VenueCore
from venue.enforcement import Alerts, CommandQueue, EligibilityEnforcer
from venue.guards import EntryGuard, UnsettledNotional

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Safeguards:
    guard: EntryGuard
    backlog: UnsettledNotional
    enforcer: EligibilityEnforcer
    interval_s: float

    def start(self, stop: asyncio.Event) -> asyncio.Task[None]:
        return asyncio.create_task(self.run(stop), name="eligibility-sweep")

    async def run(self, stop: asyncio.Event) -> None:
        """The enforcer's sweep (KYC expiry timer, suspensions, any loss the gate sees) until ``stop``."""
        while not stop.is_set():
            try:
                self.enforcer.sweep()
            except Exception:  # a sweep bug must not stop the venue; the next sweep retries
                log.exception("eligibility sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)


def install(config: VenueConfig, core: VenueCore, sequencer: CommandQueue, watcher: ChainWatcher,
            gatekeeper: Gatekeeper, audit: Alerts) -> Safeguards:
    """Call on the event loop, after recovery put the unsettled trades back into the trade book."""
    backlog = UnsettledNotional(core.reference)
    backlog.restore(core.trades_book.recent())
    book = core.trades_book
    book.printed.add(backlog.printed)
    book.notices.add(lambda notice: backlog.observe(notice, book.trade(notice.trade_id)))
    guard = EntryGuard(parties=core.reference, backlog=backlog, watcher=watcher,
                       max_chain_lag_s=config.max_chain_lag_s, max_unsettled=config.max_unsettled_notional,
                       max_unsettled_participant=config.max_unsettled_notional_participant, alerts=audit)
    core.pipeline.guard = guard
    enforcer = EligibilityEnforcer(sequencer=sequencer, orders=core, gate=gatekeeper, parties=core.reference,
                                   audit=audit)
    enforcer.attach(asyncio.get_running_loop())
    watcher.add_eligibility_listener(enforcer.on_eligibility_lost)
    core.reference.on_keys_revoked = enforcer.on_keys_revoked
    return Safeguards(guard=guard, backlog=backlog, enforcer=enforcer, interval_s=watcher.poll_interval_s)
