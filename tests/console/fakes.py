"""A hand-written venue for the operator API and console tests: ``VenuePort`` + ``OperatorPort``
over a real ``engine.Engine``, with in-memory participants, settlement states and a hash-chained
audit log. Eligibility is reduced to what the tests exercise (suspended participant, frozen wallet)."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from engine import (
    AddInstrument,
    AmendOrder,
    CancelOrder,
    Event,
    Fill,
    InstrumentSpec,
    InstrumentStatus,
    L2Snapshot,
    MassCancel,
    NewOrder,
    OrderView,
    ResultCode,
    SetInstrumentStatus,
)
from gateway.ports import (
    ApiKey,
    AuditEntry,
    Listing,
    Outcome,
    ParticipantView,
    ReconciliationReport,
    Rejection,
    RejectionRecord,
    Role,
    SettlementNotice,
    SettlementState,
    Trade,
    Unsubscribe,
)
from market.history import OrderRecord, Page, TradeQuery
from market.model import OrderAck
from venue.history import VenueHistory
from venueclient.signing import generate_keypair

SYMBOL = "OMN-2027"
OTHER_SYMBOL = "OMN-2029"


def make_listing(symbol: str, name: str) -> Listing:
    # 1 note per lot (18 decimals), 0.01 cash per tick (6 decimals): 10_000 ticks = 100.00
    spec = InstrumentSpec(symbol=symbol, tick_size=10_000, lot_size=10**18, min_qty=1, max_qty=10_000,
                          band_low=1, band_high=1_000_000)
    return Listing(spec=spec, name=name, token_address="0x" + "11" * 20, cash_token_address="0x" + "22" * 20,
                   token_decimals=18, cash_decimals=6)


@dataclasses.dataclass(slots=True)
class _Participant:
    participant: str
    name: str
    wallet: str | None
    status: str = "active"
    frozen: bool = False


class ChainDown(Exception):
    """What a broken RPC looks like to the router: some exception from the core."""


class FakeVenue:
    def __init__(self, engine: Any | None = None, *, clock: Callable[[], int] = time.time_ns) -> None:
        if engine is None:
            from engine import Engine

            engine = Engine()
        self._engine = engine
        self._clock = clock
        self._last_ts = 0
        self._listings = {s: make_listing(s, n) for s, n in
                          ((SYMBOL, "Omnes Mining Note 2027"), (OTHER_SYMBOL, "Omnes Mining Note 2029"))}
        self.private_keys: dict[str, bytes] = {}
        self._keys: dict[str, ApiKey] = {}
        for key_id, who, role in (("op-key", "ops-alice", Role.OPERATOR), ("trader-key", "alice", Role.TRADER)):
            private, public = generate_keypair()
            self.private_keys[key_id] = private
            self._keys[key_id] = ApiKey(key_id=key_id, participant=who, role=role, public_key=public)
        self._participants = {
            p.participant: p for p in (
                _Participant(participant="alice", name="Alice Capital AG", wallet="0x" + "a1" * 20),
                _Participant(participant="bob", name="Bob Trading Ltd", wallet="0x" + "b2" * 20),
                _Participant(participant="carol", name="Carol Fund SA", wallet=None),
            )
        }
        self._event_listeners: dict[int, Callable[[Event], None]] = {}
        self._notice_listeners: dict[int, Callable[[SettlementNotice], None]] = {}
        self._ids = itertools.count(1)
        self._trades: list[Trade] = []
        self._notices: dict[int, SettlementNotice] = {}
        self._rejections: list[RejectionRecord] = []
        self._reconciliation = ReconciliationReport(ts=None, ok=True, differences=[])
        self._reconcile_differences: list[str] = []
        self._audit: list[AuditEntry] = []
        self.chain_down = False
        for listing in self._listings.values():
            self._process(AddInstrument(ts=0, spec=listing.spec))

    # ------------------------------------------------------------ VenuePort

    def listings(self) -> list[Listing]:
        return [self._listings[s] for s in sorted(self._listings)]

    def listing(self, symbol: str) -> Listing | None:
        return self._listings.get(symbol)

    def api_key(self, key_id: str) -> ApiKey | None:
        return self._keys.get(key_id)

    async def submit_batch(self, participant: str,
                           cmds: Sequence[NewOrder | CancelOrder | MassCancel]) -> list[Outcome]:
        return [await self.submit(participant, cmd) for cmd in cmds]  # the console never batches

    async def submit(self, participant: str, cmd: NewOrder | AmendOrder | CancelOrder | MassCancel) -> Outcome:
        assert cmd.participant == participant
        who = self._participants.get(participant)
        symbol = getattr(cmd, "symbol", None) or ""
        if isinstance(cmd, NewOrder) and who is not None:
            if who.status != "active":
                return self._reject(participant, symbol, "PARTICIPANT_SUSPENDED", "participant is suspended")
            if who.frozen:
                return self._reject(participant, symbol, "WALLET_FROZEN", "wallet is frozen on chain")
        before = self._engine.order(cmd.order_id) if isinstance(cmd, AmendOrder) else None
        result = self._process(cmd)
        if result.code is not ResultCode.OK:
            self._record_rejection(participant, symbol, result.code.name,
                                   result.code.name.replace("_", " ").lower())
        coid = before.client_order_id if before is not None else ""
        return Outcome(result=result, ack=OrderAck.answer(cmd, result, amend_client_order_id=coid))

    async def set_status(self, symbol: str, status: InstrumentStatus, *, operator: str) -> Outcome:
        result = self._process(SetInstrumentStatus(ts=0, symbol=symbol, status=status))
        self._write_audit(operator, "instrument.status",
                          {"symbol": symbol, "status": status.name, "result": result.code.name})
        return Outcome(result=result)

    def l2(self, symbol: str, depth: int | None = None) -> L2Snapshot:
        snap: L2Snapshot = self._engine.l2(symbol, depth)
        return snap

    def order(self, order_id: int) -> OrderView | None:
        view: OrderView | None = self._engine.order(order_id)
        return view

    def open_orders(self, participant: str, symbol: str | None = None) -> list[OrderView]:
        views: list[OrderView] = self._engine.open_orders(participant, symbol)
        return views

    def trades(self, *, symbol: str | None = None, participant: str | None = None,
               limit: int = 100) -> list[Trade]:
        out = [t for t in reversed(self._trades) if symbol is None or t.symbol == symbol]
        if participant is not None:
            out = [t for t in out if participant in (t.buyer, t.seller)]
        return out[:limit]

    async def order_record(self, participant: str, order_id: int) -> OrderRecord | None:
        return await self._history().order_record(participant, order_id)

    async def trade_history(self, query: TradeQuery) -> Page[Trade]:
        return await self._history().trade_history(query)

    def _history(self) -> VenueHistory:  # the core's history without a store: memory only
        return VenueHistory(recent_trades=lambda: reversed(self._trades), current_trade=lambda _: None,
                            live_order=self.order)

    def subscribe_events(self, listener: Callable[[Event], None]) -> Unsubscribe:
        return self._add(self._event_listeners, listener)

    def subscribe_settlements(self, listener: Callable[[SettlementNotice], None]) -> Unsubscribe:
        return self._add(self._notice_listeners, listener)

    # ------------------------------------------------------------ OperatorPort

    def participants(self) -> list[ParticipantView]:
        views = []
        for p in sorted(self._participants.values(), key=lambda p: p.participant):
            reason = "PARTICIPANT_SUSPENDED" if p.status != "active" else "WALLET_FROZEN" if p.frozen else None
            views.append(ParticipantView(
                participant=p.participant, name=p.name, status=p.status, category="MIFID_PROFESSIONAL",
                jurisdiction="CH", kyc_expiry_ts=1_893_456_000 * 10**9, wallet=p.wallet, verified=p.wallet is not None,
                frozen=p.frozen, note_balance=500 * 10**18 + 25 * 10**16, cash_balance=1_250_000 * 10**6,
                open_buy_reserved=0, open_sell_reserved=0, eligible=reason is None, reason=reason,
            ))
        return views

    async def set_participant_status(self, participant: str, status: str, *, operator: str) -> None:
        self._participants[participant].status = status
        self._write_audit(operator, "participant.status", {"participant": participant, "status": status})

    async def freeze_wallet(self, participant: str, frozen: bool, *, operator: str) -> str:
        if self.chain_down:
            raise ChainDown("connection refused")
        p = self._participants[participant]
        p.frozen = frozen
        tx_hash = "0x" + hashlib.sha256(f"{participant}:{frozen}:{len(self._audit)}".encode()).hexdigest()
        self._write_audit(operator, "wallet.freeze" if frozen else "wallet.unfreeze",
                          {"participant": participant, "tx": tx_hash})
        return tx_hash

    def rejection_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self._rejections:
            counts[r.code] = counts.get(r.code, 0) + 1
        return dict(sorted(counts.items()))

    def recent_rejections(self, limit: int = 100) -> list[RejectionRecord]:
        return list(reversed(self._rejections))[:limit]

    def settlements(self, limit: int = 200) -> list[SettlementNotice]:
        return [self._notices[t.trade_id] for t in reversed(self._trades)][:limit]

    def settlement_counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in SettlementState}
        for notice in self._notices.values():
            counts[notice.state.value] += 1
        return counts

    def reconciliation(self) -> ReconciliationReport:
        return self._reconciliation

    async def run_reconciliation(self, *, operator: str) -> ReconciliationReport:
        if self.chain_down:
            raise ChainDown("connection refused")
        diffs = list(self._reconcile_differences)
        self._reconciliation = ReconciliationReport(ts=self._now(), ok=not diffs, differences=diffs)
        self._write_audit(operator, "reconciliation.run", {"ok": not diffs})
        return self._reconciliation

    def audit_log(self, limit: int = 200) -> list[AuditEntry]:
        return list(reversed(self._audit))[:limit]

    def audit_chain_ok(self) -> bool:
        prev = ""
        for entry in self._audit:
            if entry.hash != _chain_hash(prev, entry):
                return False
            prev = entry.hash
        return True

    # ------------------------------------------------------------ test controls

    def settle(self, trade_id: int, state: SettlementState, *, tx_hash: str | None = None,
               block: int | None = None, gas_used: int | None = None, reason: str | None = None) -> None:
        """What the settlement adapter reports; must run on the loop that serves the app."""
        notice = dataclasses.replace(self._notices[trade_id], state=state, tx_hash=tx_hash, block=block,
                                     gas_used=gas_used, reason=reason)
        self._notices[trade_id] = notice
        self._trades = [dataclasses.replace(t, settlement=state) if t.trade_id == trade_id else t
                        for t in self._trades]
        for listener in list(self._notice_listeners.values()):
            listener(notice)

    def set_reconciliation_differences(self, differences: list[str]) -> None:
        self._reconcile_differences = list(differences)

    def tamper_audit(self) -> None:
        self._audit[0] = dataclasses.replace(self._audit[0], actor="mallory")

    # ------------------------------------------------------------ internals

    def _now(self) -> int:
        self._last_ts = max(self._last_ts + 1, self._clock())
        return self._last_ts

    def _process(self, cmd: Any) -> Any:
        result = self._engine.process(dataclasses.replace(cmd, ts=self._now()))
        self._engine.validate()  # the book's invariants hold after every command the console drives
        for event in result.events:
            if isinstance(event, Fill):
                self._on_fill(event)
            for listener in list(self._event_listeners.values()):
                listener(event)
        return result

    def _on_fill(self, fill: Fill) -> None:
        trade = Trade.from_fill(fill)
        buyer, seller = trade.buyer, trade.seller
        self._trades.append(trade)
        notice = SettlementNotice(trade_id=fill.trade_id, symbol=fill.symbol, buyer=buyer, seller=seller,
                                  state=SettlementState.PENDING)
        self._notices[fill.trade_id] = notice
        for listener in list(self._notice_listeners.values()):
            listener(notice)

    def _reject(self, participant: str, symbol: str, code: str, message: str) -> Outcome:
        self._record_rejection(participant, symbol, code, message)
        return Outcome(rejection=Rejection(code=code, message=message))

    def _record_rejection(self, participant: str, symbol: str, code: str, message: str) -> None:
        self._rejections.append(RejectionRecord(ts=self._now(), participant=participant, symbol=symbol,
                                                code=code, message=message))

    def _write_audit(self, actor: str, action: str, details: dict[str, Any]) -> None:
        prev = self._audit[-1].hash if self._audit else ""
        entry = AuditEntry(id=len(self._audit) + 1, ts=self._now(), actor=actor, action=action,
                           details=json.dumps(details, sort_keys=True), hash="")
        self._audit.append(dataclasses.replace(entry, hash=_chain_hash(prev, entry)))

    def _add(self, registry: dict[int, Any], listener: Any) -> Unsubscribe:
        key = next(self._ids)
        registry[key] = listener
        return lambda: registry.pop(key, None) and None


def _chain_hash(prev: str, entry: AuditEntry) -> str:
    body = json.dumps([prev, entry.id, entry.ts, entry.actor, entry.action, entry.details])
    return hashlib.sha256(body.encode()).hexdigest()
