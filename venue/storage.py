"""The venue's port to the store: projection, settlement records, eligibility decisions, audit."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

import compliance
import store as store_pkg
from engine import Command, Result
from market.model import AuditEntry, SettlementNotice, SettlementUpdate

log = logging.getLogger(__name__)


class StoreAdapter:
    """What the core needs from the store. Projection goes through the async ``StoreWriter``;
    settlement records and eligibility decisions are batched and written by a background task
    (never on the order path); audit entries are written at once (operator actions are rare)."""

    def __init__(self, store: store_pkg.Store, writer: store_pkg.StoreWriter) -> None:
        self.store = store
        self.writer = writer
        self._settlements: list[SettlementUpdate] = []
        self._decisions: list[store_pkg.EligibilityDecision] = []
        self._lock = threading.Lock()

    def enqueue(self, cmd_seq: int, cmd: Command, result: Result) -> None:
        self.writer.enqueue(cmd_seq, cmd, result)

    def record_settlement(self, notice: SettlementNotice) -> None:
        update = SettlementUpdate(
            trade_id=notice.trade_id, status=notice.state,
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

    def audit(self, actor: str, action: str, details: Mapping[str, object]) -> None:
        self.store.append_audit(actor, action, dict(details))

    def set_participant_status(self, participant: str, status: str) -> None:
        self.store.update_participant(participant, status=status)

    def audit_entries(self, limit: int) -> list[AuditEntry]:
        return [
            AuditEntry(id=e.id, ts=e.ts, actor=e.actor, action=e.action, details=e.details, hash=e.hash)
            for e in self.store.list_audit(limit=limit)
        ]

    def audit_ok(self) -> bool:
        return self.store.verify_audit_chain().ok
