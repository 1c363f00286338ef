"""Composition root: builds every part from a ``VenueConfig`` and runs them in one process.

    store (SQLAlchemy) ─┐
    chain + contracts ──┼─> gatekeeper (cache <- chain watcher) ─┐
    journal -> engine ──┴─> sequencer ──────────────────────────┴─> VenueCore -> gateway app (uvicorn)
                                                                     └─> settlement service -> chain

The in-process EVM is not thread-safe, and the settlement service, the chain watcher and operator
chain actions do their RPC in worker threads, so every provider request goes through one lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

import compliance
import store as store_pkg
from engine import RULES_VERSION, AddInstrument, Engine, InstrumentSpec, InstrumentStatus, ResultCode
from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.guards import guards_of
from gateway.metrics import MetricsMiddleware, metrics_router, observe_venue
from gateway.operator import ConsoleAuth, operator_router
from gateway.ports import ApiKey, AuditEntry, Listing, Role, SettlementNotice, SettlementState, TradeRecord
from gateway.server import uvicorn_options
from journal import Journal, Sequencer, recover
from settlement.chain import Chain, connect, in_process_chain, start_anvil
from settlement.deploy import DemoAdmin, DemoDeployment, deploy_demo
from settlement.reconcile import reconcile
from settlement.service import SettlementService, SettlementUpdate, TradeToSettle
from venue.config import VenueConfig
from venue.core import VenueCore
from venue.ledger import Ledger
from venue.listings import ListingError, ListingRules, load_rules

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The venue cannot start with this configuration (the message says why)."""


# ---------------------------------------------------------------- chain


def _serialise_provider(chain: Chain) -> None:
    provider = chain.w3.provider
    original = provider.make_request
    lock = threading.RLock()

    def make_request(method: Any, params: Any) -> Any:
        with lock:
            return original(method, params)

    provider.make_request = make_request  # type: ignore[method-assign]


def open_chain(config: VenueConfig) -> Chain:
    if config.chain == "inprocess":
        chain = in_process_chain()
    elif config.chain == "anvil":
        chain = start_anvil(block_time=config.anvil_block_time)
    elif config.chain.startswith(("http://", "https://")):  # web3 8 has no sync websocket provider
        if not config.settler_key:
            raise StartupError("a JSON-RPC chain needs settler_key (VENUE_SETTLER_KEY)")
        chain = connect(config.chain, private_keys=[bytes.fromhex(config.settler_key.removeprefix("0x"))])
    else:
        raise StartupError(f"chain must be 'inprocess', 'anvil' or an http(s) JSON-RPC URL, not {config.chain!r}")
    _serialise_provider(chain)
    return chain


def deploy_or_load(chain: Chain, config: VenueConfig, *, fresh: bool = False) -> DemoDeployment:
    """Reuse the deployment file when it matches this chain (same chain id and code at the DvP
    address); otherwise deploy the demo contract set and write the file."""
    path = config.deployment_path
    if path.exists() and not fresh:
        deployment = DemoDeployment.load(path)
        if deployment.chain_id == chain.w3.eth.chain_id and chain.w3.eth.get_code(deployment.settlement):
            return deployment
        if any((config.journal_dir).glob("*")):
            raise StartupError(
                f"{config.data_dir} holds a journal for contracts that are not on this chain (an in-process "
                "or anvil chain lives only as long as its process): use a fresh --data-dir, or a persistent chain")
        log.warning("deployment file %s does not match this chain: deploying afresh", path)
    if len(chain.accounts) < 2:
        raise StartupError("deploying needs two funded accounts with known keys (admin, settler)")
    deployment = deploy_demo(chain, admin=chain.accounts[0], settler=chain.accounts[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    deployment.save(path)
    return deployment


def check_rules_version(journal_dir: Path) -> None:
    """Refuse to replay a journal written under other matching rules (see ``engine.version``).
    A journal from before the marker existed is adopted as the current version."""
    journal_dir.mkdir(parents=True, exist_ok=True)
    marker = journal_dir / "ENGINE_RULES_VERSION"
    if marker.exists():
        written = marker.read_text().strip()
        if written != str(RULES_VERSION):
            raise StartupError(
                f"the journal in {journal_dir} was written under engine rules version {written}, this engine is "
                f"version {RULES_VERSION}: replaying it could build a different book. Replay it with the engine "
                "that wrote it, or start from a fresh data dir")
        return
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(f"{RULES_VERSION}\n")
    tmp.replace(marker)


# ---------------------------------------------------------------- conversions


def listing_from_record(inst: store_pkg.Instrument) -> Listing:
    spec = InstrumentSpec(
        symbol=inst.symbol, tick_size=inst.tick_size, lot_size=inst.lot_size, min_qty=inst.min_qty,
        max_qty=inst.max_qty, band_low=inst.band_low, band_high=inst.band_high,
        status=InstrumentStatus[inst.status.name],
    )
    return Listing(
        spec=spec, name=inst.name, token_address=inst.token_address, cash_token_address=inst.cash_token_address,
        token_decimals=inst.token_decimals, cash_decimals=inst.cash_decimals, maturity_ts=inst.maturity_ts,
    )


def kyc_ts(expiry: dt.date | None) -> int | None:
    if expiry is None:
        return None
    return int(dt.datetime.combine(expiry, dt.time(), tzinfo=dt.UTC).timestamp()) * 10**9


def compliance_participant(p: store_pkg.Participant, wallet: str | None) -> compliance.Participant:
    status = (compliance.ParticipantStatus.ACTIVE if p.status is store_pkg.ParticipantStatus.ACTIVE
              else compliance.ParticipantStatus.SUSPENDED)
    return compliance.Participant(
        id=p.id, status=status, category=compliance.InvestorCategory(p.investor_category),
        jurisdiction=p.jurisdiction, kyc_expiry_ts=kyc_ts(p.kyc_expiry), wallet=wallet,
    )


def instrument_rules(listing: Listing, rules: ListingRules) -> compliance.InstrumentRules:
    return compliance.InstrumentRules.from_spec(
        listing.spec, token=listing.token_address, cash_token=listing.cash_token_address,
        allowed_categories=frozenset(compliance.InvestorCategory(c) for c in rules.allowed_categories),
        allowed_jurisdictions=frozenset(rules.allowed_jurisdictions),
        blocked_jurisdictions=frozenset(rules.blocked_jurisdictions),
        holding_cap=rules.holding_cap, max_holders=rules.max_holders,
        lockup_until_ts=rules.lockup_until_ts, trading_end_ts=rules.trading_end_ts,
    )


# ---------------------------------------------------------------- store adapter


class StoreAdapter:
    """What the core needs from the store. Projection goes through the async ``StoreWriter``;
    settlement records and eligibility decisions are batched and written by a background task
    (never on the order path); audit entries are written at once (operator actions are rare)."""

    def __init__(self, store: store_pkg.Store, writer: store_pkg.StoreWriter) -> None:
        self.store = store
        self.writer = writer
        self._settlements: list[store_pkg.SettlementUpdate] = []
        self._decisions: list[store_pkg.EligibilityDecision] = []
        self._lock = threading.Lock()

    def enqueue(self, cmd_seq: int, cmd: Any, result: Any) -> None:
        self.writer.enqueue(cmd_seq, cmd, result)

    def record_settlement(self, notice: SettlementNotice) -> None:
        update = store_pkg.SettlementUpdate(
            trade_id=notice.trade_id, status=store_pkg.SettlementStatus(notice.state.value),
            tx_hash=notice.tx_hash, block=notice.block, gas_used=notice.gas_used, reason=notice.reason,
            updated_ts=time.time_ns(),
        )
        with self._lock:
            self._settlements.append(update)

    def record_decision(self, record: compliance.DecisionRecord) -> None:
        decision = store_pkg.EligibilityDecision(
            ts=record.ts, participant=record.participant, symbol=record.symbol,
            outcome=store_pkg.Outcome.ACCEPTED if record.ok else store_pkg.Outcome.REJECTED,
            code=str(record.code) if record.code else "OK", message=record.message,
        )
        with self._lock:
            self._decisions.append(decision)

    def flush(self) -> int:
        with self._lock:
            settlements, self._settlements = self._settlements, []
            decisions, self._decisions = self._decisions, []
        for update in settlements:
            try:
                self.store.record_settlement(update)
            except store_pkg.StoreError:
                log.exception("cannot record settlement of trade %s", update.trade_id)
        if decisions:
            try:
                self.store.record_eligibility_decisions(decisions)
            except store_pkg.StoreError:
                log.exception("cannot record %d eligibility decisions", len(decisions))
        return len(settlements) + len(decisions)

    def audit(self, actor: str, action: str, details: dict[str, Any]) -> None:
        self.store.append_audit(actor, action, details)

    def set_participant_status(self, participant: str, status: str) -> None:
        self.store.update_participant(participant, status=status)

    def audit_entries(self, limit: int) -> list[AuditEntry]:
        return [
            AuditEntry(id=e.id, ts=e.ts, actor=e.actor, action=e.action, details=e.details, hash=e.hash)
            for e in self.store.list_audit(limit=limit)
        ]

    def audit_ok(self) -> bool:
        return self.store.verify_audit_chain().ok


class SettlementAdapter:
    """The core's settlement port: queue trades, turn service updates into core notices."""

    def __init__(self, service: SettlementService) -> None:
        self.service = service

    def submit_trade(self, **trade: Any) -> None:
        self.service.submit(TradeToSettle(**trade))


class ChainActions:
    """Operator actions that touch the chain, run in worker threads."""

    def __init__(self, venue: Venue) -> None:
        self._venue = venue

    async def freeze(self, wallet: str, frozen: bool) -> str:
        receipt = await asyncio.to_thread(self._venue.admin.freeze, wallet, frozen)
        return "0x" + bytes(receipt["transactionHash"]).hex()

    async def reconcile(self) -> list[str]:
        return await self._venue.reconcile()


# ---------------------------------------------------------------- the venue


class Venue:
    """One venue process. ``await start()`` builds and starts everything; ``app`` is the ASGI app;
    ``await stop()`` drains and closes in reverse order."""

    def __init__(self, config: VenueConfig, *, fresh_chain: bool = False, gateway: GatewayConfig | None = None) -> None:
        self.config = config
        self._fresh_chain = fresh_chain
        self._gateway_config = gateway or GatewayConfig(
            rate_per_s=config.rate_limit_per_s, rate_burst=config.rate_limit_burst)
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

        check_rules_version(cfg.journal_dir)
        self.journal = Journal.open(cfg.journal_dir)
        engine, _ = recover(cfg.journal_dir, journal=self.journal)
        self.engine: Engine = engine
        self.sequencer = Sequencer(engine, self.journal)
        self.writer = store_pkg.StoreWriter(self.store)
        self.store_adapter = StoreAdapter(self.store, self.writer)
        # the projection catches up with commands journaled before the last crash
        await asyncio.to_thread(store_pkg.sync_from_journal, self.journal, self.store)

        self.cache = compliance.ChainStateCache()
        self.gatekeeper = compliance.Gatekeeper(
            self.cache, settlement_address=self.deployment.settlement, on_decision=self.store_adapter.record_decision)
        self.watcher = compliance.ChainWatcher(self.chain.w3, self.cache, poll_interval_s=0.25)
        self.settlement = SettlementService(
            self.chain, self.deployment.settlement, self.chain.private_key(self.deployment.settler),
            on_update=self._on_settlement_update, max_batch=cfg.settlement_batch, confirmations=cfg.confirmations,
        )
        self.ledger = Ledger()
        self.core = VenueCore(
            engine=engine, sequencer=self.sequencer, listings=(), compliance=self.gatekeeper,
            settlement=SettlementAdapter(self.settlement), store=self.store_adapter,
            operator_actions=ChainActions(self),
        )
        self.core.subscribe_settlements(self._on_notice)
        await self.sequencer.start()
        await self.writer.start()
        await self.load_reference_data()
        await asyncio.to_thread(self.watcher.poll_once)
        self.recover_positions()
        self.ledger.baseline(self._chain_balances_sync())

        self.app = self._build_app()
        self._tasks = [
            asyncio.create_task(self.watcher.run(self._stop), name="chain-watcher"),
            self.settlement.start(),
            asyncio.create_task(self._flush_loop(), name="store-flush"),
            asyncio.create_task(self._snapshot_loop(), name="snapshots"),
            asyncio.create_task(self._reference_loop(), name="reference-data"),
        ]
        self._unobserve = observe_venue(self.core)
        self.store.append_audit("venue", "venue.start", {"chain": cfg.chain, "db": self.store.dialect,
                                                         "settlement": self.deployment.settlement})
        # everything built so far lives as long as the process: keep the cyclic GC from re-scanning
        # it (with a large recovered book, full collections otherwise pause matching for 100s of ms)
        gc.collect()
        gc.freeze()

    def _build_app(self) -> FastAPI:
        app = create_app(
            self.core, config=self._gateway_config,
            extra_routers=[operator_router(self.core, console_auth=self.console_auth), metrics_router(self.core)],
        )
        app.add_middleware(MetricsMiddleware)
        return app

    async def stop(self) -> None:
        gc.unfreeze()  # a process that builds another venue (tests) must not keep this one forever
        self._stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._served.wait(), 10)
        self.settlement.stop()
        # Every background loop watches the stop event and finishes the worker-thread call it has in
        # flight (a settlement batch, a store write, a chain poll): cancelling would leave that thread
        # using the store or the chain after they are closed. Only a loop stuck past the grace
        # period is cancelled.
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
        self.store_adapter.flush()
        with contextlib.suppress(Exception):
            self.sequencer.snapshot(self.config.journal_dir)
        self.journal.close()
        self.store.close()
        self.chain.close()

    # -------------------------------------------------- reference data

    async def load_reference_data(self) -> None:
        """Instruments, participants, wallets and keys from the store into engine, gatekeeper, core."""
        rules = load_rules(self.config.data_dir)
        for inst in self.store.list_instruments():
            await self.add_listing(listing_from_record(inst), rules.get(inst.symbol, ListingRules()), persist=False)
        for p in self.store.list_participants():
            wallets = self.store.list_wallets(p.id)
            self.register_participant(p, wallets[0].address if wallets else None)
        for key in self.store.list_api_keys():
            self.core.add_key(ApiKey(key_id=key.key_id, participant=key.participant, role=Role(key.role.value),
                                     public_key=key.public_key))

    async def add_listing(self, listing: Listing, rules: ListingRules, *, persist: bool = True) -> None:
        if self.engine.spec(listing.symbol) is None:
            result = await self.sequencer.submit(AddInstrument(ts=0, spec=listing.spec))
            if result.code is not ResultCode.OK:
                raise StartupError(f"engine refused instrument {listing.symbol}: {result.code.name}")
        self.core.add_listing(listing)
        self.gatekeeper.set_rules(instrument_rules(listing, rules))
        self.cache.track_token(listing.token_address)
        self.cache.track_cash_token(listing.cash_token_address)
        self.cache.track_spender(self.deployment.settlement)

    def recover_positions(self) -> None:
        """After a restart: funding holds of the orders the journal put back on the book, the
        obligations of trades not yet settled, and those trades back into the settlement service
        (``recover`` asks the contract first, so a trade settled before the crash is not sent twice)."""
        for view in self.engine.open_orders():
            try:
                self.gatekeeper.adopt_order(view)
            except compliance.ComplianceError as exc:
                log.warning("order %s keeps no funding hold: %s", view.order_id, exc)
        unfinished: list[TradeToSettle] = []
        for t in self.store.list_trades():
            if t.settlement_status not in (store_pkg.SettlementStatus.PENDING, store_pkg.SettlementStatus.SUBMITTED):
                continue
            buy_order, sell_order = ((t.taker_order_id, t.maker_order_id) if t.aggressor == "buy"
                                     else (t.maker_order_id, t.taker_order_id))
            self.core.restore_trade(TradeRecord(
                trade_id=t.trade_id, symbol=t.symbol, price=t.price, qty=t.qty, aggressor_buy=t.aggressor == "buy",
                ts=t.ts, buyer=t.buyer, seller=t.seller, buy_order_id=buy_order, sell_order_id=sell_order,
                settlement=SettlementState(t.settlement_status.value),
            ))
            self.gatekeeper.adopt_trade(trade_id=t.trade_id, symbol=t.symbol, price=t.price, qty=t.qty,
                                        buyer=t.buyer, seller=t.seller)
            listing = self.core.listing(t.symbol)
            buyer, seller = self.core.wallet_of(t.buyer), self.core.wallet_of(t.seller)
            if listing is None or buyer is None or seller is None:
                self.core.on_settlement_update(t.trade_id, SettlementState.FAILED, reason="NO_WALLET_AFTER_RESTART")
                continue
            unfinished.append(TradeToSettle(
                trade_id=t.trade_id, token=listing.token_address, seller=seller, buyer=buyer,
                quantity=listing.spec.token_amount(t.qty), cash_token=listing.cash_token_address,
                cash_amount=listing.spec.cash_amount(t.price, t.qty),
            ))
        if unfinished:
            confirmed = self.settlement.recover(unfinished)
            log.warning("recovered %d unsettled trades (%d already settled on chain)", len(unfinished), len(confirmed))

    def register_participant(self, p: store_pkg.Participant, wallet: str | None) -> None:
        self.gatekeeper.upsert_participant(compliance_participant(p, wallet))
        if wallet is not None:
            self.core.set_wallet(p.id, wallet)
            self.cache.track_wallet(wallet)

    # -------------------------------------------------- settlement & reconciliation

    def _on_settlement_update(self, update: SettlementUpdate) -> None:
        self.core.on_settlement_update(
            update.trade_id, SettlementState(update.status.value), tx_hash=update.tx_hash, block=update.block,
            gas_used=update.gas_used, reason=update.reason,
        )

    def _on_notice(self, notice: SettlementNotice) -> None:
        if notice.state is not SettlementState.CONFIRMED:
            return
        listing = self.core.listing(notice.symbol)
        record = self.core.trade(notice.trade_id)
        buyer, seller = self.core.wallet_of(notice.buyer), self.core.wallet_of(notice.seller)
        if listing is None or record is None or buyer is None or seller is None:
            return
        self.ledger.apply_trade(
            listing.token_address, listing.cash_token_address, buyer=buyer, seller=seller,
            quantity=listing.spec.token_amount(record.qty), cash=listing.spec.cash_amount(record.price, record.qty),
        )

    def _chain_balances_sync(self) -> dict[tuple[str, str], int]:
        balances: dict[tuple[str, str], int] = {}
        for listing in self.core.listings():
            for participant in self.core.participant_ids():
                wallet = self.core.wallet_of(participant)
                if wallet is None:
                    continue
                for asset in (listing.token_address, listing.cash_token_address):
                    balances[(asset, wallet)] = self.cache.balance(asset, wallet) or 0
        return balances

    async def reconcile(self) -> list[str]:
        """Chain balances vs. the venue ledger (baseline at start + every confirmed trade)."""
        await self.settlement.drain(timeout=30)
        lines: list[str] = []
        for listing in self.core.listings():
            expected = self.ledger.expected(listing.token_address, listing.cash_token_address)
            diffs = await asyncio.to_thread(
                reconcile, self.chain, listing.token_address, listing.cash_token_address, expected)
            lines.extend(
                f"{listing.symbol} {d.wallet} {d.asset}: ledger {d.expected}, chain {d.actual} (delta {d.delta:+d})"
                for d in diffs
            )
        return lines

    def rebaseline(self) -> None:
        """Accept current chain balances as the ledger's new starting point (after funding)."""
        self.ledger.baseline(self._chain_balances_sync())

    # -------------------------------------------------- background loops

    async def _pause(self, seconds: float) -> bool:
        """Sleep ``seconds``; True (at once) when the venue is stopping."""
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _flush_loop(self) -> None:
        while not await self._pause(0.2):
            await asyncio.to_thread(self.store_adapter.flush)

    async def _reference_loop(self) -> None:
        """Participants, wallets and keys added with the CLI while the venue runs. The store is
        read in a worker thread; only applying the (usually empty) changes runs on the loop."""
        while not await self._pause(2.0):
            try:
                snapshot = await asyncio.to_thread(self._read_reference_data)
                instruments = await asyncio.to_thread(self.store.list_instruments)
            except store_pkg.StoreError:
                log.exception("cannot refresh reference data")
                continue
            await self._open_new_instruments(instruments)
            self.apply_reference_data(*snapshot)

    async def _open_new_instruments(self, instruments: list[store_pkg.Instrument]) -> None:
        """Instruments listed with ``venue instruments add`` while the venue runs."""
        new = [inst for inst in instruments if self.core.listing(inst.symbol) is None]
        if not new:
            return
        try:
            rules = load_rules(self.config.data_dir)
        except ListingError as exc:
            log.error("cannot open new instruments: %s", exc)
            return
        for inst in new:
            try:
                await self.add_listing(listing_from_record(inst), rules.get(inst.symbol, ListingRules()))
            except (StartupError, compliance.ComplianceError) as exc:
                log.error("cannot open instrument %s: %s", inst.symbol, exc)
            else:
                self.store.append_audit("venue", "instrument.open", {"symbol": inst.symbol})

    def _read_reference_data(
        self,
    ) -> tuple[list[store_pkg.Participant], dict[str, str], list[store_pkg.ApiKeyRecord]]:
        wallets: dict[str, str] = {}
        for wallet in self.store.list_wallets():
            wallets.setdefault(wallet.participant_id, wallet.address)
        return self.store.list_participants(), wallets, self.store.list_api_keys()

    def refresh_reference_data(self) -> None:
        self.apply_reference_data(*self._read_reference_data())

    def apply_reference_data(
        self, participants: list[store_pkg.Participant], wallets: dict[str, str], keys: list[store_pkg.ApiKeyRecord]
    ) -> None:
        for p in participants:
            current = self.gatekeeper.participant(p.id)
            wallet = wallets.get(p.id)
            if current is None or (current.wallet or "").lower() != (wallet or "").lower():
                self.register_participant(p, wallet)
        for key in keys:
            if self.core.api_key(key.key_id) is None:
                self.core.add_key(ApiKey(key_id=key.key_id, participant=key.participant,
                                         role=Role(key.role.value), public_key=key.public_key))

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
        ready.add("stopping", lambda: "venue is stopping" if self._stop.is_set() else None)
        ready.add("journal", lambda: None if self.sequencer.running else
                  f"journal cannot write: {self.sequencer.failure!r}")
        ready.add("store_backlog", lambda: None if self.writer.pending <= 100_000 else
                  f"store backlog {self.writer.pending} commands (bound 100000)")
        server = uvicorn.Server(uvicorn.Config(self.app, host=self.config.host, port=self.config.port,
                                               log_level="warning", lifespan="on", **uvicorn_options(self.app)))
        self._served.clear()
        self._server = server
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
            stop_wait.cancel()
            self._server = None
            self._served.set()


async def serve(config: VenueConfig) -> None:
    venue = Venue(config)
    await venue.start()
    try:
        await venue.serve(on_ready=lambda: print(
            f"venue listening on {venue.base_url}\nconsole: {venue.console_url()}", flush=True))
    finally:
        await venue.stop()
