"""The venue core: one object that implements the gateway's ``VenuePort`` and ``OperatorPort``.

Order path: eligibility + funding (compliance) -> sequencer (journal, group commit) -> engine.
Event path (sequencer listener, in command order, after durability): funding bookkeeping,
trade records, pre-settlement re-check, settlement queue, fan-out to subscribers, store.

Funding holds are made before a command is sequenced, when the order id is not yet known; they
are keyed by ``(participant, client_order_id)`` (the core guarantees a client order id) and bound
to the engine's order id in the listener when the ``OrderAccepted`` event of that command arrives,
before any fill of the same command is booked.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar

from engine import (
    AmendOrder,
    CancelOrder,
    Command,
    Event,
    Fill,
    InstrumentStatus,
    L2Snapshot,
    MassCancel,
    NewOrder,
    OrderAccepted,
    OrderAmended,
    OrderRejected,
    OrderView,
    Result,
    ResultCode,
    SetInstrumentStatus,
)
from gateway.ports import (
    AuditEntry,
    ParticipantView,
    ReconciliationReport,
    RejectionRecord,
    Unsubscribe,
)
from market.codes import engine_message
from market.history import OrderRecord, Page, TradeQuery
from market.model import ApiKey, Listing, Outcome, Rejection, SettlementNotice, SettlementState, Trade
from venue.history import VenueHistory

log = logging.getLogger(__name__)
T = TypeVar("T")

_RECENT_TRADES = 10_000
_RECENT_SETTLEMENTS = 5_000
_RECENT_REJECTIONS = 2_000


class SequencerLike(Protocol):
    async def submit(self, cmd: Command) -> Result: ...

    def subscribe(self, listener: Callable[[int, Command, Result], None]) -> Callable[[], None]: ...


class EngineReader(Protocol):
    def l2(self, symbol: str, depth: int | None = None) -> L2Snapshot: ...

    def order(self, order_id: int) -> OrderView | None: ...

    def open_orders(self, participant: str | None = None, symbol: str | None = None) -> list[OrderView]: ...


class CoreError(Exception):
    """Root of the core's exceptions (broken wiring, never expected rejections)."""


class _Fanout(Generic[T]):
    def __init__(self) -> None:
        self._listeners: dict[int, Callable[[T], None]] = {}
        self._ids = itertools.count(1)

    def add(self, listener: Callable[[T], None]) -> Unsubscribe:
        key = next(self._ids)
        self._listeners[key] = listener

        def unsubscribe() -> None:
            self._listeners.pop(key, None)

        return unsubscribe

    def emit(self, item: T) -> None:
        for listener in list(self._listeners.values()):
            try:
                listener(item)
            except Exception:  # a broken subscriber must not stop the venue
                log.exception("subscriber failed")


@dataclasses.dataclass(slots=True)
class _TradeState:
    record: Trade
    notice: SettlementNotice


class VenueCore:
    """Composition of the running venue's in-process parts. Collaborators are injected by
    ``venue.runtime``; the optional ones (compliance, settlement, store) may be ``None`` in tests."""

    def __init__(
        self,
        *,
        engine: EngineReader,
        sequencer: SequencerLike,
        listings: Iterable[Listing],
        keys: Iterable[ApiKey] = (),
        compliance: Any | None = None,
        settlement: Any | None = None,
        store: Any | None = None,
        wallets: dict[str, str] | None = None,
        operator_actions: Any | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self._engine = engine
        self._sequencer = sequencer
        self._listings = {listing.symbol: listing for listing in listings}
        self._keys = {key.key_id: key for key in keys}
        self._compliance = compliance
        self._settlement = settlement
        self._store = store
        self._wallets = dict(wallets or {})
        self._operator_actions = operator_actions
        self._events: _Fanout[Event] = _Fanout()
        self._notices: _Fanout[SettlementNotice] = _Fanout()
        self._trades: deque[_TradeState] = deque(maxlen=_RECENT_TRADES)
        self._trade_index: dict[int, _TradeState] = {}
        self._settlement_log: deque[SettlementNotice] = deque(maxlen=_RECENT_SETTLEMENTS)
        self._settlement_counts: dict[str, int] = {s.value: 0 for s in SettlementState}
        self._rejections: deque[RejectionRecord] = deque(maxlen=_RECENT_REJECTIONS)
        self._rejection_counts: dict[str, int] = {}
        self._holds: dict[tuple[str, str], Any] = {}
        self._amend_holds: dict[int, Any] = {}
        self._amending: set[int] = set()
        self._coid_counter = itertools.count(1)
        self._reconciliation = ReconciliationReport(ts=None, ok=True, differences=[])
        self._clock = clock or time.time_ns
        self._unsubscribe = sequencer.subscribe(self._on_command)
        self.history = VenueHistory(recent_trades=lambda: (s.record for s in reversed(self._trades)),
                                    current_trade=self.trade, live_order=engine.order)

    # ------------------------------------------------------------ registry

    def add_listing(self, listing: Listing) -> None:
        self._listings[listing.symbol] = listing

    def add_key(self, key: ApiKey) -> None:
        self._keys[key.key_id] = key

    def set_wallet(self, participant: str, wallet: str) -> None:
        self._wallets[participant] = wallet

    def wallet_of(self, participant: str) -> str | None:
        return self._wallets.get(participant)

    def participant_ids(self) -> list[str]:
        return sorted(self._wallets)

    def restore_trade(self, record: Trade) -> None:
        """After a restart: an unsettled trade from the store, so its settlement updates land."""
        notice = SettlementNotice(trade_id=record.trade_id, symbol=record.symbol, buyer=record.buyer,
                                  seller=record.seller, state=record.settlement)
        state = _TradeState(record=record, notice=notice)
        self._trades.append(state)
        self._trade_index[record.trade_id] = state
        self._settlement_counts[record.settlement.value] += 1

    def trade(self, trade_id: int) -> Trade | None:
        state = self._trade_index.get(trade_id)
        return state.record if state is not None else None

    def listings(self) -> list[Listing]:
        return [self._listings[s] for s in sorted(self._listings)]

    def listing(self, symbol: str) -> Listing | None:
        return self._listings.get(symbol)

    def api_key(self, key_id: str) -> ApiKey | None:
        return self._keys.get(key_id)

    # ------------------------------------------------------------ commands

    async def submit(self, participant: str, cmd: NewOrder | AmendOrder | CancelOrder | MassCancel) -> Outcome:
        if cmd.participant != participant:
            raise CoreError("command participant does not match the authenticated participant")
        if isinstance(cmd, NewOrder):
            return await self._submit_new(cmd)
        if isinstance(cmd, AmendOrder):
            return await self._submit_amend(cmd)
        return Outcome(result=await self._sequencer.submit(cmd))

    async def _submit_new(self, cmd: NewOrder) -> Outcome:
        if not cmd.client_order_id:
            cmd = dataclasses.replace(cmd, client_order_id=f"auto-{next(self._coid_counter)}")
        key = (cmd.participant, cmd.client_order_id)
        if key in self._holds:
            return self._reject(cmd.participant, cmd.symbol, "DUPLICATE_CLIENT_ORDER_ID",
                                f"client order id {cmd.client_order_id!r} is already in flight")
        if self._compliance is not None and cmd.symbol in self._listings:
            decision = self._compliance.check_new_order(
                participant=cmd.participant, symbol=cmd.symbol, side=cmd.side, qty=cmd.qty,
                price=cmd.price, now_ts=self._clock(),
            )
            if not decision.ok:
                return self._reject(cmd.participant, cmd.symbol, str(decision.code), decision.message)
            if decision.hold is not None:
                self._holds[key] = decision.hold
        try:
            result = await self._sequencer.submit(cmd)
        finally:
            hold = self._holds.pop(key, None)
            if hold is not None and self._compliance is not None:
                # the listener binds accepted holds; anything left here never became an order
                self._compliance.release(hold)
        self._count_engine_rejection(cmd.participant, cmd.symbol, result)
        return Outcome(result=result)

    async def _submit_amend(self, cmd: AmendOrder) -> Outcome:
        order = self._engine.order(cmd.order_id)
        if cmd.order_id in self._amending:
            # one amend per order at a time: its funding delta is computed from the current order
            return self._reject(cmd.participant, order.symbol if order else "", "AMEND_IN_FLIGHT",
                                f"order {cmd.order_id} has an amend in flight; retry when it is answered")
        self._amending.add(cmd.order_id)
        try:
            if self._compliance is not None and order is not None and order.participant == cmd.participant:
                decision = self._compliance.check_amend(
                    participant=cmd.participant, order=order, new_price=cmd.price, new_qty=cmd.qty,
                    now_ts=self._clock(),
                )
                if not decision.ok:
                    return self._reject(cmd.participant, order.symbol, str(decision.code), decision.message)
                if decision.hold is not None:
                    self._amend_holds[cmd.order_id] = decision.hold
            try:
                result = await self._sequencer.submit(cmd)
            finally:
                hold = self._amend_holds.pop(cmd.order_id, None)
                if hold is not None and self._compliance is not None:
                    self._compliance.release(hold)
        finally:
            self._amending.discard(cmd.order_id)
        self._count_engine_rejection(cmd.participant, order.symbol if order else "", result)
        return Outcome(result=result)

    async def set_status(self, symbol: str, status: InstrumentStatus, *, operator: str) -> Outcome:
        result = await self._sequencer.submit(SetInstrumentStatus(ts=0, symbol=symbol, status=status))
        self._audit(operator, "instrument.status", {"symbol": symbol, "status": status.name,
                                                     "result": result.code.name})
        return Outcome(result=result)

    def _reject(self, participant: str, symbol: str, code: str, message: str) -> Outcome:
        self._record_rejection(participant, symbol, code, message)
        return Outcome(rejection=Rejection(code=code, message=message))

    def _count_engine_rejection(self, participant: str, symbol: str, result: Result) -> None:
        if result.code is not ResultCode.OK:
            self._record_rejection(participant, symbol, result.code.name, engine_message(result.code))

    def _record_rejection(self, participant: str, symbol: str, code: str, message: str) -> None:
        self._rejection_counts[code] = self._rejection_counts.get(code, 0) + 1
        self._rejections.append(RejectionRecord(ts=self._clock(), participant=participant, symbol=symbol,
                                                code=code, message=message))

    # ------------------------------------------------------------ event path

    def _on_command(self, cmd_seq: int, cmd: Command, result: Result) -> None:
        if self._compliance is not None:
            self._book_funding(cmd, result)
        for event in result.events:
            if isinstance(event, Fill):
                self._on_fill(event)
            self._events.emit(event)
        if self._store is not None:
            self._store.enqueue(cmd_seq, cmd, result)

    def _book_funding(self, cmd: Command, result: Result) -> None:
        assert self._compliance is not None
        for event in result.events:
            if isinstance(event, OrderAccepted):
                hold = self._holds.pop((event.participant, event.client_order_id), None)
                if hold is not None:
                    self._compliance.bind(hold, event.order_id)
            elif isinstance(event, OrderAmended):
                hold = self._amend_holds.pop(event.order_id, None)
                if hold is not None:
                    self._compliance.bind(hold, event.order_id)
            elif isinstance(event, OrderRejected) and isinstance(cmd, AmendOrder):
                hold = self._amend_holds.pop(cmd.order_id, None)
                if hold is not None:
                    self._compliance.release(hold)
        self._compliance.on_engine_events(result.events)

    def _on_fill(self, fill: Fill) -> None:
        record = Trade.from_fill(fill)
        buyer, seller = record.buyer, record.seller
        notice = SettlementNotice(trade_id=fill.trade_id, symbol=fill.symbol, buyer=buyer, seller=seller,
                                  state=SettlementState.PENDING)
        state = _TradeState(record=record, notice=notice)
        if len(self._trades) == self._trades.maxlen:
            self._trade_index.pop(self._trades[0].record.trade_id, None)
        self._trades.append(state)
        self._trade_index[fill.trade_id] = state
        self._settlement_counts[SettlementState.PENDING.value] += 1
        self._publish_notice(notice, previous=None)
        self._send_to_settlement(fill, record)

    def _send_to_settlement(self, fill: Fill, record: Trade) -> None:
        if self._compliance is not None:
            decision = self._compliance.check_trade(fill, now_ts=fill.ts)
            if not decision.ok:
                self.on_settlement_update(fill.trade_id, SettlementState.FAILED,
                                          reason=f"{decision.code}: {decision.message}")
                return
        if self._settlement is None:
            return
        listing = self._listings[fill.symbol]
        buyer_wallet = self._wallets.get(record.buyer)
        seller_wallet = self._wallets.get(record.seller)
        if buyer_wallet is None or seller_wallet is None:
            self.on_settlement_update(fill.trade_id, SettlementState.FAILED, reason="NO_WALLET")
            return
        self._settlement.submit_trade(
            trade_id=fill.trade_id,
            token=listing.token_address,
            seller=seller_wallet,
            buyer=buyer_wallet,
            quantity=listing.token_amount(fill.qty),
            cash_token=listing.cash_token_address,
            cash_amount=listing.cash_amount(fill.price, fill.qty),
        )

    def on_settlement_update(
        self,
        trade_id: int,
        state: SettlementState,
        *,
        tx_hash: str | None = None,
        block: int | None = None,
        gas_used: int | None = None,
        reason: str | None = None,
    ) -> None:
        """Called (on the event loop) by the settlement adapter for every state change."""
        entry = self._trade_index.get(trade_id)
        if entry is None:
            log.warning("settlement update for unknown trade %s", trade_id)
            return
        previous = entry.notice.state
        if previous in (SettlementState.CONFIRMED, SettlementState.FAILED):
            return  # terminal: a late duplicate update must not move it back
        notice = dataclasses.replace(entry.notice, state=state, tx_hash=tx_hash or entry.notice.tx_hash,
                                     block=block, gas_used=gas_used, reason=reason)
        entry.notice = notice
        entry.record = dataclasses.replace(entry.record, settlement=state)
        self._settlement_counts[previous.value] -= 1
        self._settlement_counts[state.value] += 1
        if self._compliance is not None and state in (SettlementState.CONFIRMED, SettlementState.FAILED):
            self._compliance.on_trade_finished(trade_id, block=block, failed=state is SettlementState.FAILED)
        self._publish_notice(notice, previous=previous)

    def _publish_notice(self, notice: SettlementNotice, previous: SettlementState | None) -> None:
        self._settlement_log.append(notice)
        if self._store is not None:
            self._store.record_settlement(notice)
        self._notices.emit(notice)

    # ------------------------------------------------------------ reads

    def l2(self, symbol: str, depth: int | None = None) -> L2Snapshot:
        return self._engine.l2(symbol, depth)

    def order(self, order_id: int) -> OrderView | None:
        return self._engine.order(order_id)

    def open_orders(self, participant: str, symbol: str | None = None) -> list[OrderView]:
        return self._engine.open_orders(participant, symbol)

    def trades(
        self, *, symbol: str | None = None, participant: str | None = None, limit: int = 100
    ) -> list[Trade]:
        out: list[Trade] = []
        for state in reversed(self._trades):
            r = state.record
            if symbol is not None and r.symbol != symbol:
                continue
            if participant is not None and participant not in (r.buyer, r.seller):
                continue
            out.append(r)
            if len(out) >= limit:
                break
        return out

    async def order_record(self, participant: str, order_id: int) -> OrderRecord | None:
        return await self.history.order_record(participant, order_id)

    async def trade_history(self, query: TradeQuery) -> Page[Trade]:
        return await self.history.trade_history(query)

    def subscribe_events(self, listener: Callable[[Event], None]) -> Unsubscribe:
        return self._events.add(listener)

    def subscribe_settlements(self, listener: Callable[[SettlementNotice], None]) -> Unsubscribe:
        return self._notices.add(listener)

    # ------------------------------------------------------------ operator side

    def participants(self) -> list[ParticipantView]:
        if self._compliance is None:
            return []
        views: list[ParticipantView] = self._compliance.participant_views()
        return views

    async def set_participant_status(self, participant: str, status: str, *, operator: str) -> None:
        if self._compliance is None:
            raise CoreError("no compliance component configured")
        self._compliance.set_participant_status(participant, status)
        if self._store is not None:
            self._store.set_participant_status(participant, status)
        self._audit(operator, "participant.status", {"participant": participant, "status": status})
        if status != "active":
            # a suspended participant keeps nothing on the book
            await self._sequencer.submit(MassCancel(ts=0, participant=participant))

    async def freeze_wallet(self, participant: str, frozen: bool, *, operator: str) -> str:
        wallet = self._wallets.get(participant)
        if wallet is None or self._operator_actions is None:
            raise CoreError(f"participant {participant!r} has no wallet or no chain admin is configured")
        tx_hash: str = await self._operator_actions.freeze(wallet, frozen)
        self._audit(operator, "wallet.freeze" if frozen else "wallet.unfreeze",
                    {"participant": participant, "wallet": wallet, "tx": tx_hash})
        return tx_hash

    def rejection_counts(self) -> dict[str, int]:
        return dict(sorted(self._rejection_counts.items()))

    def recent_rejections(self, limit: int = 100) -> list[RejectionRecord]:
        return list(itertools.islice(reversed(self._rejections), limit))

    def settlements(self, limit: int = 200) -> list[SettlementNotice]:
        return [s.notice for s in itertools.islice(reversed(self._trades), limit)]

    def settlement_counts(self) -> dict[str, int]:
        return dict(self._settlement_counts)

    def reconciliation(self) -> ReconciliationReport:
        return self._reconciliation

    async def run_reconciliation(self, *, operator: str) -> ReconciliationReport:
        if self._operator_actions is None:
            report = ReconciliationReport(ts=self._clock(), ok=False, differences=["no chain configured"])
        else:
            differences: list[str] = await self._operator_actions.reconcile()
            report = ReconciliationReport(ts=self._clock(), ok=not differences, differences=differences)
        self._reconciliation = report
        self._audit(operator, "reconciliation.run", {"ok": report.ok, "differences": len(report.differences)})
        return report

    def audit_log(self, limit: int = 200) -> list[AuditEntry]:
        if self._store is None:
            return []
        entries: list[AuditEntry] = self._store.audit_entries(limit)
        return entries

    def audit_chain_ok(self) -> bool:
        return self._store is None or bool(self._store.audit_ok())

    def _audit(self, actor: str, action: str, details: dict[str, Any]) -> None:
        if self._store is not None:
            self._store.audit(actor, action, details)

