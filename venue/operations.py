"""Operator operations: participant status, wallet freezes on chain, reconciliation, audit.

Each operation takes its collaborators directly (the gate, the chain admin, the sequencer, the
store's audit log, the trade book's ledger), never the ``Venue``: nothing here calls back into
the object that built it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from engine import Command, MassCancel, OrderCancelled, Result
from market.model import AuditEntry, Listing, ParticipantView, ReconciliationReport
from settlement.chain import Chain
from settlement.reconcile import reconcile

log = logging.getLogger(__name__)


class CoreError(Exception):
    """Root of the venue core's exceptions (broken wiring, never expected rejections)."""


class OperatorGate(Protocol):
    def participant_views(self) -> list[ParticipantView]: ...

    def set_participant_status(self, participant: str, status: str) -> None: ...


class AuditLog(Protocol):
    def audit(self, actor: str, action: str, details: Mapping[str, object]) -> None: ...

    def audit_entries(self, limit: int) -> list[AuditEntry]: ...

    def audit_ok(self) -> bool: ...

    def set_participant_status(self, participant: str, status: str) -> None: ...


class CommandSink(Protocol):
    async def submit(self, cmd: Command) -> Result: ...


class ChainAdmin(Protocol):
    """The token agent (``settlement.deploy.DemoAdmin``): blocking chain transactions."""

    def freeze(self, wallet: str, frozen: bool = True) -> Mapping[str, object]: ...


class Wallets(Protocol):
    def wallet_of(self, participant: str) -> str | None: ...

    def listings(self) -> list[Listing]: ...


class Drainable(Protocol):
    async def drain(self, timeout: float) -> object: ...


class ExpectedBalances(Protocol):
    def expected(self, token: str, cash_token: str) -> dict[str, tuple[int, int]]: ...


Reconcile = Callable[[], Awaitable[list[str]]]
"""Runs a reconciliation and returns its differences (``Reconciler``, or a test's stand-in)."""


class Reconciler:
    """Chain balances vs. the venue ledger (baseline at start + every confirmed trade)."""

    def __init__(self, chain: Chain, settlement: Drainable, ledger: ExpectedBalances, reference: Wallets) -> None:
        self._chain = chain
        self._settlement = settlement
        self._ledger = ledger
        self._reference = reference

    async def __call__(self) -> list[str]:
        await self._settlement.drain(timeout=30)
        lines: list[str] = []
        for listing in self._reference.listings():
            expected = self._ledger.expected(listing.token_address, listing.cash_token_address)
            diffs = await asyncio.to_thread(
                reconcile, self._chain, listing.token_address, listing.cash_token_address, expected)
            lines.extend(
                f"{listing.symbol} {d.wallet} {d.asset}: ledger {d.expected}, chain {d.actual} (delta {d.delta:+d})"
                for d in diffs
            )
        return lines


class Operations:
    def __init__(
        self,
        *,
        sequencer: CommandSink,
        reference: Wallets,
        gate: OperatorGate | None = None,
        audit: AuditLog | None = None,
        admin: ChainAdmin | None = None,
        reconciler: Reconcile | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._sequencer = sequencer
        self._reference = reference
        self._gate = gate
        self._audit_log = audit
        self._admin = admin
        self._reconciler = reconciler
        self._clock = clock
        self._reconciliation = ReconciliationReport(ts=None, ok=True, differences=[])

    def participants(self) -> list[ParticipantView]:
        return [] if self._gate is None else self._gate.participant_views()

    async def set_participant_status(self, participant: str, status: str, *, operator: str) -> None:
        if self._gate is None:
            raise CoreError("no compliance component configured")
        if self._audit_log is not None:  # the store first: a database outage changes nothing (503)
            self._audit_log.set_participant_status(participant, status)
        self._gate.set_participant_status(participant, status)
        log.info("participant %s status -> %s by %s", participant, status, operator)
        self.audit(operator, "participant.status", {"participant": participant, "status": status})
        if status != "active":
            # a suspended participant keeps nothing on the book (its holds are released in post-trade)
            result = await self._sequencer.submit(MassCancel(ts=0, participant=participant))
            cancelled = sum(isinstance(e, OrderCancelled) for e in result.events)
            if cancelled:  # an audit entry per action taken, none for an empty cancel
                self.audit(operator, "orders.cancel_ineligible", {
                    "participant": participant, "symbol": None, "reason": "PARTICIPANT_SUSPENDED",
                    "cancelled": cancelled})

    async def freeze_wallet(self, participant: str, frozen: bool, *, operator: str) -> str:
        wallet = self._reference.wallet_of(participant)
        admin = self._admin
        if wallet is None or admin is None:
            raise CoreError(f"participant {participant!r} has no wallet or no chain admin is configured")
        receipt = await asyncio.to_thread(admin.freeze, wallet, frozen)
        tx = receipt["transactionHash"]
        tx_hash = "0x" + bytes(tx).hex() if isinstance(tx, bytes | bytearray) else str(tx)
        self.audit(operator, "wallet.freeze" if frozen else "wallet.unfreeze",
                   {"participant": participant, "wallet": wallet, "tx": tx_hash})
        return tx_hash

    def reconciliation(self) -> ReconciliationReport:
        return self._reconciliation

    async def run_reconciliation(self, *, operator: str, quiet_if_unchanged: bool = False) -> ReconciliationReport:
        """``quiet_if_unchanged`` (the scheduled runs): audit only a run whose outcome differs from the
        previous run's, so a venue in balance does not fill its audit log with identical entries."""
        previous = self._reconciliation
        if self._reconciler is None:
            report = ReconciliationReport(ts=self._clock(), ok=False, differences=["no chain configured"])
        else:
            differences = await self._reconciler()
            report = ReconciliationReport(ts=self._clock(), ok=not differences, differences=differences)
        self._reconciliation = report
        unchanged = previous.ts is not None and (previous.ok, previous.differences) == (report.ok, report.differences)
        if not (quiet_if_unchanged and unchanged):  # a scheduled run logs and audits only a change
            if report.ok:
                log.info("reconciliation by %s: chain balances match the ledger", operator)
            else:
                log.warning("reconciliation by %s: %d differences: %s", operator, len(report.differences),
                            "; ".join(report.differences[:10]))
            self.audit(operator, "reconciliation.run", {"ok": report.ok, "differences": len(report.differences)})
        return report

    def audit_log(self, limit: int = 200) -> list[AuditEntry]:
        return [] if self._audit_log is None else self._audit_log.audit_entries(limit)

    def audit_chain_ok(self) -> bool:
        return self._audit_log is None or self._audit_log.audit_ok()

    def audit(self, actor: str, action: str, details: Mapping[str, object]) -> None:
        if self._audit_log is not None:
            self._audit_log.audit(actor, action, details)
