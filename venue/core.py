"""The venue core: the gateway's ``VenuePort`` and ``OperatorPort`` over the parts that do the work.

    reference   venue.reference.ReferenceData   listings, keys, wallets (+ participants/rules into the gate)
    pipeline    venue.pipeline.OrderPipeline    gate -> sequencer -> post-trade -> fan-out
    trades      venue.trades.TradeBook          trades and their settlement state machine
    operations  venue.operations.Operations     participant status, freezes, reconciliation, audit
    rfqs        venue.rfq.RfqDesk               requests for quotes -> Cross through the pipeline
    blocks      venue.blocks.BlockDesk          negotiated block trades -> Cross through the pipeline

This class only builds and delegates; it owns no state of its own. Collaborators are typed by
protocols; the optional ones (compliance, settlement, store, chain admin) may be ``None``, which
gives a bare in-memory venue over a real engine (tests, benchmarks).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from engine import (
    AmendOrder,
    CancelOrder,
    Command,
    Event,
    InstrumentStatus,
    L2Snapshot,
    MassCancel,
    NewOrder,
    OrderView,
    Result,
    ResultCode,
    SetInstrumentStatus,
)
from market.history import OrderRecord, Page, TradeQuery
from market.model import (
    ApiKey,
    AuditEntry,
    Listing,
    OrderAck,
    Outcome,
    ParticipantView,
    ReconciliationReport,
    Rejection,
    RejectionRecord,
    SettlementNotice,
    SettlementState,
    Trade,
)
from venue.blocks import BlockDesk
from venue.history import VenueHistory
from venue.offbook import Eligibility
from venue.operations import AuditLog, ChainAdmin, CoreError, Operations, OperatorGate, Reconcile
from venue.pipeline import Gate, OrderPipeline, Projection, Sequencing
from venue.reference import ParticipantGate, ReferenceData, WalletTracker
from venue.rfq import RfqDesk
from venue.trades import SettlementQueue, SettlementRecorder, TradeBook, TradeCheck, Unsubscribe, VenueLedger

log = logging.getLogger(__name__)

__all__ = ["CoreError", "VenueCore"]


class Sequencer(Sequencing, Protocol):
    async def submit(self, cmd: Command) -> Result: ...


class EngineReader(Protocol):
    def l2(self, symbol: str, depth: int | None = None) -> L2Snapshot: ...

    def order(self, order_id: int) -> OrderView | None: ...

    def open_orders(self, participant: str | None = None, symbol: str | None = None) -> list[OrderView]: ...


class Compliance(Gate, TradeCheck, OperatorGate, ParticipantGate, Eligibility, Protocol):
    """Everything the venue asks of ``compliance.Gatekeeper``."""


class StoreSink(Projection, SettlementRecorder, AuditLog, Protocol):
    """Everything the venue hands to the store (``venue.runtime.StoreAdapter``)."""


class VenueCore:
    def __init__(
        self,
        *,
        engine: EngineReader,
        sequencer: Sequencer,
        listings: Iterable[Listing] = (),
        keys: Iterable[ApiKey] = (),
        wallets: dict[str, str] | None = None,
        reference: ReferenceData | None = None,
        compliance: Compliance | None = None,
        settlement: SettlementQueue | None = None,
        store: StoreSink | None = None,
        tracker: WalletTracker | None = None,  # with ``reference``: give them to it instead
        ledger: VenueLedger | None = None,
        admin: ChainAdmin | None = None,
        reconciler: Reconcile | None = None,
        clock: Callable[[], int] | None = None,
        positions: Callable[[int], int] | None = None,  # the journal's ``position``; default: the command seq
    ) -> None:
        clock = clock or time.time_ns
        self._positions = positions
        self._position_of = (0, 0)  # (command seq, its position): asked once per event, computed once per command
        self._engine = engine
        self._sequencer = sequencer
        self.reference = reference or ReferenceData(listings=listings, keys=keys, wallets=wallets, gate=compliance,
                                                    tracker=tracker)
        self.trades_book = TradeBook(self.reference, gate=compliance, settlement=settlement, recorder=store,
                                     ledger=ledger)
        self.pipeline = OrderPipeline(sequencer=sequencer, orders=engine, listings=self.reference,
                                      trades=self.trades_book, gate=compliance, projection=store, clock=clock)
        self.operations = Operations(sequencer=sequencer, reference=self.reference, gate=compliance, audit=store,
                                     admin=admin, reconciler=reconciler, clock=clock)
        self.rfqs = RfqDesk(self.reference, self.pipeline, gate=compliance, clock=clock)
        self.blocks = BlockDesk(self.reference, self.pipeline, clock=clock)
        self.intake_refusal: Callable[[], Rejection | None] | None = None  # checked before every new order
        self.history = VenueHistory(recent_trades=self.trades_book.recent, current_trade=self.trades_book.trade,
                                    live_order=engine.order)

    # ------------------------------------------------------------ reference data

    def add_listing(self, listing: Listing) -> None:
        self.reference.add_listing(listing)

    def add_key(self, key: ApiKey) -> None:
        self.reference.add_key(key)

    def set_wallet(self, participant: str, wallet: str) -> None:
        self.reference.set_wallet(participant, wallet)

    def wallet_of(self, participant: str) -> str | None:
        return self.reference.wallet_of(participant)

    def participant_ids(self) -> list[str]:
        return self.reference.participant_ids()

    def listings(self) -> list[Listing]:
        return self.reference.listings()

    def listing(self, symbol: str) -> Listing | None:
        return self.reference.listing(symbol)

    def api_key(self, key_id: str) -> ApiKey | None:
        return self.reference.api_key(key_id)

    # ------------------------------------------------------------ commands

    async def submit(self, participant: str, cmd: NewOrder | AmendOrder | CancelOrder | MassCancel) -> Outcome:
        if cmd.participant != participant:
            raise CoreError("command participant does not match the authenticated participant")
        if isinstance(cmd, NewOrder) and (refused := self._intake_refused(participant, cmd)) is not None:
            return refused
        return await self.pipeline.submit(participant, cmd)

    def _intake_refused(self, participant: str, cmd: NewOrder) -> Outcome | None:
        refusal = self.intake_refusal() if self.intake_refusal is not None else None
        if refusal is None:
            return None
        self.pipeline.rejections.record(participant, cmd.symbol, refusal.code, refusal.message)  # never dropped
        return Outcome(rejection=refusal, ack=OrderAck.rejected(refusal, client_order_id=cmd.client_order_id,
                                                                 symbol=cmd.symbol))

    async def submit_batch(self, participant: str,
                           cmds: Sequence[NewOrder | CancelOrder | MassCancel]) -> list[Outcome]:
        if any(cmd.participant != participant for cmd in cmds):
            raise CoreError("command participant does not match the authenticated participant")
        first_new = next((cmd for cmd in cmds if isinstance(cmd, NewOrder)), None)
        if first_new is not None and (refused := self._intake_refused(participant, first_new)) is not None:
            return [refused for _ in cmds]  # the store is behind: the whole quote is refused, nothing replaced
        return await self.pipeline.submit_batch(participant, cmds)

    async def set_status(self, symbol: str, status: InstrumentStatus, *, operator: str) -> Outcome:
        result = await self._sequencer.submit(SetInstrumentStatus(ts=0, symbol=symbol, status=status))
        self.operations.audit(operator, "instrument.status", {"symbol": symbol, "status": status.name,
                                                              "result": result.code.name})
        log.log(logging.INFO if result.code is ResultCode.OK else logging.WARNING,
                "instrument %s status -> %s by %s: %s", symbol, status.name, operator, result.code.name)
        return Outcome(result=result)

    # ------------------------------------------------------------ trades and settlement

    def restore_trade(self, trade: Trade) -> None:
        self.trades_book.restore(trade)

    def trade(self, trade_id: int) -> Trade | None:
        return self.trades_book.trade(trade_id)

    def on_settlement_update(self, trade_id: int, state: SettlementState, *, tx_hash: str | None = None,
                             block: int | None = None, gas_used: int | None = None, reason: str | None = None) -> None:
        self.trades_book.on_settlement_update(trade_id, state, tx_hash=tx_hash, block=block, gas_used=gas_used,
                                              reason=reason)

    def trades(self, *, symbol: str | None = None, participant: str | None = None, limit: int = 100) -> list[Trade]:
        return self.trades_book.trades(symbol=symbol, participant=participant, limit=limit)

    def settlements(self, limit: int = 200) -> list[SettlementNotice]:
        return self.trades_book.settlements(limit)

    def settlement_counts(self) -> dict[str, int]:
        return self.trades_book.settlement_counts()

    # ------------------------------------------------------------ reads and subscriptions

    def l2(self, symbol: str, depth: int | None = None) -> L2Snapshot:
        return self._engine.l2(symbol, depth)

    def order(self, order_id: int) -> OrderView | None:
        return self._engine.order(order_id)

    def open_orders(self, participant: str, symbol: str | None = None) -> list[OrderView]:
        return self._engine.open_orders(participant, symbol)

    async def order_record(self, participant: str, order_id: int) -> OrderRecord | None:
        return await self.history.order_record(participant, order_id)

    async def order_by_client_id(self, participant: str, client_order_id: str) -> OrderRecord | None:
        return await self.history.order_by_client_id(participant, client_order_id)

    async def trade_history(self, query: TradeQuery) -> Page[Trade]:
        return await self.history.trade_history(query)

    def subscribe_events(self, listener: Callable[[Event], None]) -> Unsubscribe:
        return self.pipeline.events.add(listener)

    @property
    def stream_seq(self) -> int:
        """The journal position of the command whose events are being fanned out, or of the last
        one applied (the state reads answer from): ``CommandJournal.position``."""
        seq = self.pipeline.command_seq
        if self._positions is None:
            return seq
        if self._position_of[0] != seq:
            self._position_of = (seq, self._positions(seq))
        return self._position_of[1]

    def subscribe_settlements(self, listener: Callable[[SettlementNotice], None]) -> Unsubscribe:
        return self.trades_book.notices.add(listener)

    # ------------------------------------------------------------ operator side

    def participants(self) -> list[ParticipantView]:
        return self.operations.participants()

    async def set_participant_status(self, participant: str, status: str, *, operator: str) -> None:
        await self.operations.set_participant_status(participant, status, operator=operator)

    async def freeze_wallet(self, participant: str, frozen: bool, *, operator: str) -> str:
        return await self.operations.freeze_wallet(participant, frozen, operator=operator)

    def rejection_counts(self) -> dict[str, int]:
        return self.pipeline.rejections.counts()

    def recent_rejections(self, limit: int = 100) -> list[RejectionRecord]:
        return self.pipeline.rejections.recent(limit)

    def reconciliation(self) -> ReconciliationReport:
        return self.operations.reconciliation()

    async def run_reconciliation(self, *, operator: str) -> ReconciliationReport:
        return await self.operations.run_reconciliation(operator=operator)

    def audit_log(self, limit: int = 200) -> list[AuditEntry]:
        return self.operations.audit_log(limit)

    def audit_chain_ok(self) -> bool:
        return self.operations.audit_chain_ok()
