"""Reconciliation on a schedule (``venue.records.reconcile_tasks``): it runs at start and then every
interval, not only when an operator clicks; the scheduled runs audit only a change of outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from market.model import AuditEntry
from venue.operations import Operations
from venue.records import reconcile_tasks


class _Audit:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, dict[str, object]]] = []

    def audit(self, actor: str, action: str, details: Mapping[str, object]) -> None:
        self.entries.append((actor, action, dict(details)))

    def audit_entries(self, limit: int) -> list[AuditEntry]:
        return []

    def audit_ok(self) -> bool:
        return True

    def set_participant_status(self, participant: str, status: str) -> None:
        return None


class _Reference:
    def wallet_of(self, participant: str) -> str | None:
        return None


async def test_scheduled_runs_start_at_once_repeat_and_audit_only_changes() -> None:
    outcomes: list[list[str]] = [[], [], ["OMN1 0xabc token: ledger 1, chain 2 (delta +1)"], [], []]
    calls = 0

    async def reconciler() -> list[str]:
        nonlocal calls
        calls += 1
        return outcomes[min(calls - 1, len(outcomes) - 1)]

    audit = _Audit()
    reference: Any = _Reference()
    sequencer: Any = None
    ops = Operations(sequencer=sequencer, reference=reference, audit=audit, reconciler=reconciler)
    stop = asyncio.Event()
    tasks = reconcile_tasks(ops, 0.01, stop)
    for _ in range(500):  # bounded: 5 runs come within a few event-loop turns of 10 ms
        if calls >= 5:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.gather(*tasks)
    assert calls >= 5 and ops.reconciliation().ts is not None
    audited = [(actor, details["ok"]) for actor, action, details in audit.entries if action == "reconciliation.run"]
    assert audited == [("scheduler", True), ("scheduler", False), ("scheduler", True)]  # first, change, change back
    await ops.run_reconciliation(operator="alice")  # an operator's run is always audited
    assert audit.entries[-1][0] == "alice"


async def test_no_interval_no_schedule() -> None:
    assert reconcile_tasks(Operations(sequencer=None, reference=_Reference()), None, asyncio.Event()) == []  # type: ignore[arg-type]
