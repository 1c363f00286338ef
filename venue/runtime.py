"""Composition root: builds every part from a ``VenueConfig``, runs them in one process, stops them.
Wiring and lifecycle only; the behaviour lives in the parts (see ``venue.core`` for the map).

    store (SQLAlchemy) ─┐
    chain + contracts ──┼─> gatekeeper (cache <- chain watcher) ─┐
    journal -> engine ──┴─> sequencer ──────────────────────────┴─> VenueCore -> gateway app (uvicorn)
                                                                     └─> settlement service -> chain

The in-process EVM is not thread-safe and RPC runs in worker threads: every provider request takes one lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable
from typing import Any

import uvicorn

import compliance
import store as store_pkg
from engine import AddInstrument, Engine, ResultCode
from gateway.config import GatewayConfig
from gateway.guards import guards_of
from gateway.metrics import observe_venue
from gateway.operator import ConsoleAuth
from gateway.server import uvicorn_options
from journal import CommandJournal, Journal, Sequencer, recover
from market.model import Listing, SettlementUpdate
from settlement.deploy import DemoAdmin
from venue import signed_setup as signed_orders
from venue.attestations import Attestations
from venue.auctions import auction_clock
from venue.boot import StartupError, check_rules_version, deploy_or_load, finality_of, open_chain
from venue.config import VenueConfig
from venue.consumers import catch_up_projection, projection_writer
from venue.core import VenueCore
from venue.expiry import ExpiryClock
from venue.ledger import Ledger
from venue.listings import ListingRules
from venue.operations import Reconciler
from venue.records import Records, anchor_tasks, reconcile_tasks
from venue.reference import ReferenceData
from venue.refresh import ReferenceRefresh
from venue.safeguards import install as safeguard
from venue.settler import settlement_service
from venue.signals import drain_on_sigterm
from venue.storage import StoreAdapter
from venue.webapp import build_app

__all__ = ["StartupError", "StoreAdapter", "Venue", "check_rules_version", "deploy_or_load", "open_chain"]

log = logging.getLogger(__name__)


class Venue:
    """One venue process. ``await start()`` builds and starts everything; ``app`` is the ASGI app;
    ``await stop()`` drains and closes in reverse order."""

    def __init__(self, config: VenueConfig, *, fresh_chain: bool = False, gateway: GatewayConfig | None = None,
                 handover: tuple[CommandJournal, Engine] | None = None) -> None:
        self.config = config
        self._handover = handover  # a standby taking over (``venue.ha``): its replicated journal and engine
        self._fresh_chain = fresh_chain
        self._gateway_config = gateway or GatewayConfig(
            rate_per_s=config.rate_limit_per_s, rate_burst=config.rate_limit_burst,
            signature_window_s=config.signature_window_s, replay_memory_path=config.data_dir / "replay-memory.log")
        self._tasks: list[asyncio.Task[Any]] = []
        self._stop = asyncio.Event()
        self._server: uvicorn.Server | None = None
        self._served = asyncio.Event()
        self._served.set()
        self.console_auth = ConsoleAuth()

    # -------------------------------------------------- start / stop

    async def start(self) -> None:
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = store_pkg.Store.open(cfg.database_url)
        self.chain = await asyncio.to_thread(open_chain, cfg)
        self.deployment = await asyncio.to_thread(deploy_or_load, self.chain, cfg, fresh=self._fresh_chain)
        self.admin = DemoAdmin(self.chain, self.deployment)
        self.attestations = await asyncio.to_thread(Attestations.open, self.chain, cfg, self.deployment.settler,
                                                    fresh=self._fresh_chain)

        if self._handover is None:
            check_rules_version(cfg.journal_dir)
            self.journal: CommandJournal = Journal.open(cfg.journal_dir)
            engine, _ = recover(cfg.journal_dir, journal=self.journal)
        else:
            self.journal, engine = self._handover
        self.engine: Engine = engine
        self.sequencer = Sequencer(engine, self.journal)
        self.writer = projection_writer(self.store, external=cfg.store_mode == "external")  # venue.consumers
        self.store_adapter = StoreAdapter(self.store, self.writer)
        # the projection catches up with commands journaled before the last crash (also when a store
        # consumer projects: the unsettled trades recovered below must be in the store)
        await asyncio.to_thread(catch_up_projection, self.journal, self.store, external=cfg.store_mode == "external")

        self.cache = compliance.ChainStateCache()
        self.gatekeeper = compliance.Gatekeeper(
            self.cache, settlement_address=self.deployment.settlement, on_decision=self.store_adapter.record_decision)
        self.watcher = compliance.ChainWatcher(self.chain.w3, self.cache, poll_interval_s=0.25)
        self.settlement = settlement_service(  # in process, or `venue settler`'s (venue.settler)
            cfg.settlement_mode == "external", cfg.journal_url, cfg.journal_replicas,
            self.chain, self.deployment.settlement, self.chain.private_key(self.deployment.settler),
            on_update=self._on_settlement_update, max_batch=cfg.settlement_batch, confirmations=cfg.confirmations,
            finality=finality_of(cfg, self.chain),
        )
        self.ledger = Ledger()
        self.reference = ReferenceData(gate=self.gatekeeper, tracker=self.cache, transferability=self.cache)
        self.core = VenueCore(
            engine=engine, sequencer=self.sequencer, reference=self.reference, compliance=self.gatekeeper,
            settlement=self.settlement, store=self.store_adapter, ledger=self.ledger, admin=self.admin,
            reconciler=Reconciler(self.chain, self.settlement, self.ledger, self.reference),
        )
        self.core.pipeline.remember_client_ids(self.journal.client_order_ids())  # a retry after a restart: refused
        self.signed, self.signed_cancels = signed_orders.install(
            self.core, engine, chain=self.chain, settlement=self.deployment.settlement, store=self.store,
            sequencer=self.sequencer, gate=self.gatekeeper, audit=self.core.operations)
        self.core.trades_book.finality = self.settlement.finality is not None
        self.core.intake_refusal = self.core.pipeline.intake = self.store_adapter.intake_refusal  # + RFQ/blocks
        self.core.history.attach_store(self.store, self.writer, lambda: self.sequencer.applied_seq)
        self.attestations.attach(self.core, pipeline=self.core.pipeline, orders=engine, sequencer=self.sequencer,
                                 audit=self.core.operations.audit, history=self.core.audit_log)
        self.core.trades_book.stamp = self.attestations.premium_stamp(self.store_adapter.record_premium)
        await self.sequencer.start()
        await self.signed_cancels.catch_up()  # cancels made on chain while the venue was down
        await self.writer.start()
        self.refresh = ReferenceRefresh(self.store, self.reference, self.add_listing, cfg.data_dir)
        await self.refresh.load()  # instruments + rules, participants, wallets, keys (bad records skipped)
        await asyncio.to_thread(self.watcher.poll_once)
        self.recover_positions()
        self.safeguards = safeguard(cfg, self.core, self.sequencer, self.watcher, self.gatekeeper, self.store_adapter)
        self.ledger.baseline(self.reference.balances(self.cache.balance))

        self.records = Records(self.store, self.chain, sender=self.deployment.admin)
        self.app, self.health = build_app(self)
        self.expiries = ExpiryClock.follow(self.sequencer, self.engine.open_orders(), self.core.subscribe_events)
        self.auctions = auction_clock(self.sequencer, self.engine, self.attestations.monitor,
                                      self.core.subscribe_events, resume_call_s=cfg.resume_call_s)
        self._tasks = [
            asyncio.create_task(self.expiries.run(self._stop), name="gtd-expiry"),
            asyncio.create_task(self.auctions.run(self._stop), name="call-auctions"),
            asyncio.create_task(self.watcher.run(self._stop), name="chain-watcher"),
            asyncio.create_task(self.core.rfqs.run(self._stop), name="rfq-expiry"),
            asyncio.create_task(self.core.blocks.run(self._stop), name="block-expiry"),
            asyncio.create_task(self.signed_cancels.run(self._stop, self.watcher.poll_interval_s), name="cancels"),
            self.settlement.start(), self.safeguards.start(self._stop),
            asyncio.create_task(self.store_adapter.run(self._stop, lambda: self.settlement.final_through)),
            asyncio.create_task(self._snapshot_loop(), name="snapshots"),
            asyncio.create_task(self.refresh.run(self._stop), name="reference-data"),
            *self.attestations.start(self._stop),
            *anchor_tasks(self.store, self.chain, self.deployment.admin, cfg.audit_anchor_interval_s, self._stop),
            *reconcile_tasks(self.core.operations, cfg.reconcile_interval_s, self._stop),
        ]
        self._unobserve = observe_venue(self.core)
        self.store.append_audit("venue", "venue.start", {"chain": cfg.chain, "db": self.store.dialect,
                                                         "settlement": self.deployment.settlement})
        # everything built so far lives as long as the process: keep the cyclic GC from re-scanning
        # it (with a large recovered book, full collections otherwise pause matching for 100s of ms)
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        gc.unfreeze()  # a process that builds another venue (tests) must not keep this one forever
        self._stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._served.wait(), 10)
        self.settlement.stop()
        # Every background loop watches the stop event and finishes its worker-thread call in flight
        # (cancelling would leave that thread using a closed store or chain); only a stuck one is cancelled.
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=30)
            for task in stuck:
                log.warning("background task %s did not stop in time: cancelled", task.get_name())
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._unobserve()
        await self.sequencer.stop()
        await self.writer.stop()
        self.store_adapter.flush(self.settlement.final_through)
        with contextlib.suppress(Exception):
            self.sequencer.snapshot(self.config.journal_dir)
        self.journal.close()
        self.store.close()
        self.chain.close()

    # -------------------------------------------------- reference data

    async def add_listing(self, listing: Listing, rules: ListingRules) -> None:
        if self.engine.spec(listing.symbol) is None:
            result = await self.sequencer.submit(AddInstrument(ts=0, spec=listing.spec))
            if result.code is not ResultCode.OK:
                raise StartupError(f"engine refused instrument {listing.symbol}: {result.code.name}")
        self.reference.add_listing(listing, rules)
        self.attestations.set_rules(listing.symbol, rules)
        self.signed.set_required(listing.symbol, rules.signed_orders_required)
        self.cache.track_spender(self.deployment.settlement)

    def register_participant(self, p: store_pkg.Participant, wallet: str | None) -> None:
        self.reference.register_participant(p, wallet)
    def recover_positions(self) -> None:
        """After a restart: funding holds of the orders the journal put back on the book, the
        obligations of trades not yet settled, and those trades back into the settlement service
        (``recover`` asks the contract first, so a trade settled before the crash is not sent twice)."""
        for view in self.engine.open_orders():
            try:
                self.gatekeeper.adopt_order(view)
            except compliance.ComplianceError as exc:
                log.warning("order %s keeps no funding hold: %s", view.order_id, exc)
        unfinished = self.core.trades_book.restore_unsettled(t.to_trade() for t in self.store.list_trades())
        if unfinished:  # outcomes from chain events after the last recorded one; never a guess
            known = self.store.settlement_final_through()
            decided = self.settlement.recover(unfinished, from_block=0 if known is None else known + 1)
            log.warning("recovered %d unfinished trades (%d decided on chain)", len(unfinished), len(decided))

    # -------------------------------------------------- settlement & reconciliation

    def _on_settlement_update(self, update: SettlementUpdate) -> None:
        self.core.on_settlement_update(update.trade_id, update.status, tx_hash=update.tx_hash, block=update.block,
                                       gas_used=update.gas_used, reason=update.reason)

    def rebaseline(self) -> None:  # current chain balances become the ledger baseline (after funding)
        self.ledger.baseline(self.reference.balances(self.cache.balance))

    # -------------------------------------------------- background loops

    async def _pause(self, seconds: float) -> bool:
        """Sleep ``seconds``; True (at once) when the venue is stopping."""
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _snapshot_loop(self) -> None:
        last = self.sequencer.applied_seq
        while not await self._pause(1.0):
            if self.sequencer.applied_seq - last >= self.config.snapshot_every:
                last = self.sequencer.applied_seq
                await self.sequencer.snapshot_async(self.config.journal_dir)

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    def console_url(self, operator: str = "operator") -> str:
        """A one-time console login link (the code sits in the fragment, never sent to servers)."""
        return f"{self.base_url}/console#code={self.console_auth.issue_login_code(operator)}"

    async def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        """Run the HTTP/websocket server until ``stop()`` is called or the server exits (Ctrl-C)."""
        ready = guards_of(self.app).readiness  # GET /health/ready (hook: gateway.guards)
        for name, check in self.health.checks().items():  # venue.health: stopping, journal, store, watcher
            ready.add(name, check)
        server = uvicorn.Server(uvicorn.Config(self.app, host=self.config.host, port=self.config.port,
                                               log_level="warning", lifespan="on", **uvicorn_options(self.app),
                                               log_config=None))  # uvicorn's lines go through venue.logconfig
        self._served.clear()
        self._server = server
        # uvicorn restores the handler it found and re-raises the signal it caught: with the default
        # SIGTERM handler the process would die before ``stop()``; ours turns it into a drain
        restore = drain_on_sigterm(self._stop)
        serve_task = asyncio.create_task(server.serve(), name="uvicorn")
        stop_wait = asyncio.create_task(self._stop.wait())
        try:
            while not server.started and not serve_task.done():
                await asyncio.sleep(0.02)
            if on_ready is not None and server.started:
                on_ready()
            await asyncio.wait({serve_task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            server.should_exit = True
            await serve_task
        finally:
            restore()
            stop_wait.cancel()
            self._server = None
            self._served.set()

