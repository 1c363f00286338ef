"""Wiring of the order-entry guards and the eligibility enforcer into a running venue (kept out of
``venue.runtime``): the backlog tracker follows the trade book's settlement notices, the entry
guard sits in the pipeline, the enforcer listens to the chain watcher and the reference-data
reload and sweeps the gate's view every watcher poll interval."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from compliance import ChainWatcher, Gatekeeper
from compliance.sync import ChainLag
from venue.config import VenueConfig
from venue.core import VenueCore
from venue.enforcement import Alerts, CommandQueue, EligibilityEnforcer
from venue.guards import EntryGuard, UnsettledNotional

log = logging.getLogger(__name__)


class LagLog:
    """Log lines for the chain watcher's lag: WARNING when it passes ``threshold_s`` (the venue then
    refuses new orders with CHAIN_STATE_STALE), INFO when it is back, and an INFO line with the
    current lag every ``every_s`` for operators who follow the log."""

    def __init__(self, threshold_s: float, *, every_s: float = 300.0) -> None:
        self.threshold_s = threshold_s
        self.every_s = every_s
        self._behind_since: float | None = None
        self._last_report: float | None = None

    def observe(self, lag: ChainLag, now: float) -> None:
        behind = lag.seconds > self.threshold_s
        if behind and self._behind_since is None:
            self._behind_since = now
            log.warning("chain watcher lagging: last successful poll %.1f s ago, %s blocks behind (limit %.1f s)",
                        lag.seconds, "?" if lag.blocks is None else lag.blocks, self.threshold_s)
        elif not behind and self._behind_since is not None:
            log.info("chain watcher caught up after %.1f s behind", now - self._behind_since)
            self._behind_since = None
        if self._last_report is None or now - self._last_report >= self.every_s:
            self._last_report = now
            log.info("chain watcher lag: %.1f s, %s blocks", lag.seconds, "?" if lag.blocks is None else lag.blocks)


@dataclass(frozen=True, slots=True)
class Safeguards:
    guard: EntryGuard
    backlog: UnsettledNotional
    enforcer: EligibilityEnforcer
    interval_s: float
    watcher: ChainWatcher
    lag_log: LagLog

    def start(self, stop: asyncio.Event) -> asyncio.Task[None]:
        return asyncio.create_task(self.run(stop), name="eligibility-sweep")

    async def run(self, stop: asyncio.Event) -> None:
        """The enforcer's sweep (KYC expiry timer, suspensions, any loss the gate sees) until ``stop``."""
        while not stop.is_set():
            try:
                self.enforcer.sweep()
                self.lag_log.observe(self.watcher.lag, time.monotonic())
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
    return Safeguards(guard=guard, backlog=backlog, enforcer=enforcer, interval_s=watcher.poll_interval_s,
                      watcher=watcher, lag_log=LagLog(config.max_chain_lag_s or 10.0))
