"""One ``OperatorPort`` contract, run against every implementation: the real ``venue.core.VenueCore``
over a real ``journal.Sequencer`` (no journal, store or chain: the console suites' gate, chain
stand-in and audit memory plugged in) and the console suites' ``FakeVenue``. Participants,
rejection counts, settlements and the audit log must read the same on both."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from engine import AddInstrument, Engine, Fill, InstrumentStatus, NewOrder, ResultCode, Side
from gateway.ports import OperatorPort, VenuePort
from journal import Sequencer
from market.model import SettlementState
from tests.console.fakes import LISTINGS, NOTES, SYMBOL, FakeChain, FakeVenue, MemoryAudit, Parts
from venue.core import VenueCore


@dataclasses.dataclass(frozen=True, slots=True)
class Subject:
    core: VenueCore  # both implementations are typed by the two ports below; the core also settles
    chain: FakeChain
    audit: MemoryAudit

    @property
    def operator(self) -> OperatorPort:
        return self.core

    @property
    def venue(self) -> VenuePort:
        return self.core


@pytest.fixture(params=["core", "console-fake"])
async def subject(request: pytest.FixtureRequest) -> AsyncIterator[Subject]:
    if request.param == "console-fake":
        fake = FakeVenue()
        yield Subject(core=fake, chain=fake.chain, audit=fake.audit_memory)
        return
    engine = Engine()
    sequencer = Sequencer(engine, None)
    await sequencer.start()
    for listing in LISTINGS:
        await sequencer.submit(AddInstrument(ts=0, spec=listing.spec))
    parts = Parts.build()
    try:
        yield Subject(core=parts.core(engine, sequencer), chain=parts.chain, audit=parts.audit)
    finally:
        await sequencer.stop()


def _order(who: str, side: Side, qty: int, price: int) -> NewOrder:
    return NewOrder(ts=0, participant=who, symbol=SYMBOL, side=side, qty=qty, price=price)


async def _trade(subject: Subject, qty: int = 2, price: int = 10_000) -> int:
    await subject.venue.submit("alice", _order("alice", Side.SELL, qty, price))
    outcome = await subject.venue.submit("bob", _order("bob", Side.BUY, qty, price))
    assert outcome.result is not None
    [fill] = [e for e in outcome.result.events if isinstance(e, Fill)]
    return fill.trade_id


async def test_participants_come_from_the_gate(subject: Subject) -> None:
    people = subject.operator.participants()
    assert [p.participant for p in people] == ["alice", "bob", "carol"]
    alice, bob, carol = people
    assert (alice.status, alice.eligible, alice.reason, alice.frozen, alice.note_balance) == (
        "active", True, None, False, NOTES)
    assert bob.eligible and bob.wallet is not None
    assert (carol.wallet, carol.eligible, carol.reason) == (None, False, "NO_WALLET")


async def test_a_suspension_refuses_orders_and_cancels_resting_ones(subject: Subject) -> None:
    placed = await subject.venue.submit("bob", _order("bob", Side.BUY, 1, 9_000))
    assert placed.result is not None and placed.result.code is ResultCode.OK
    await subject.operator.set_participant_status("bob", "suspended", operator="ops")
    assert subject.venue.open_orders("bob") == []
    bob = subject.operator.participants()[1]
    assert (bob.status, bob.eligible, bob.reason) == ("suspended", False, "PARTICIPANT_SUSPENDED")
    refused = await subject.venue.submit("bob", _order("bob", Side.BUY, 1, 9_000))
    assert refused.rejection is not None and refused.rejection.code == "PARTICIPANT_SUSPENDED"
    assert [e.action for e in subject.operator.audit_log()] == ["orders.cancel_ineligible", "participant.status"]
    await subject.operator.set_participant_status("bob", "active", operator="ops")
    again = await subject.venue.submit("bob", _order("bob", Side.BUY, 1, 9_000))
    assert again.result is not None and again.result.code is ResultCode.OK


async def test_rejections_are_counted_by_code_newest_first(subject: Subject) -> None:
    await subject.venue.set_status(SYMBOL, InstrumentStatus.HALTED, operator="ops")
    await subject.venue.submit("alice", _order("alice", Side.SELL, 1, 10_000))
    await subject.operator.set_participant_status("bob", "suspended", operator="ops")
    await subject.venue.submit("bob", _order("bob", Side.BUY, 1, 10_000))
    assert subject.operator.rejection_counts() == {"INSTRUMENT_HALTED": 1, "PARTICIPANT_SUSPENDED": 1}
    recent = subject.operator.recent_rejections()
    assert [(r.participant, r.code, r.symbol) for r in recent] == [
        ("bob", "PARTICIPANT_SUSPENDED", SYMBOL), ("alice", "INSTRUMENT_HALTED", SYMBOL)]
    assert subject.operator.recent_rejections(limit=1) == recent[:1]


async def test_settlements_follow_the_state_machine(subject: Subject) -> None:
    first = await _trade(subject)
    second = await _trade(subject)
    notices = subject.operator.settlements()
    assert [(n.trade_id, n.state, n.buyer, n.seller) for n in notices] == [
        (second, SettlementState.PENDING, "bob", "alice"), (first, SettlementState.PENDING, "bob", "alice")]
    subject.core.on_settlement_update(first, SettlementState.CONFIRMED, tx_hash="0x" + "ee" * 32, block=7,
                                      gas_used=150_000)
    subject.core.on_settlement_update(first, SettlementState.FAILED, reason="late duplicate")  # terminal: ignored
    counts = subject.operator.settlement_counts()
    assert (counts["pending"], counts["confirmed"], counts["failed"]) == (1, 1, 0)
    confirmed = subject.operator.settlements()[1]
    assert (confirmed.state, confirmed.tx_hash, confirmed.block, confirmed.gas_used) == (
        SettlementState.CONFIRMED, "0x" + "ee" * 32, 7, 150_000)
    assert subject.operator.settlements(limit=1)[0].trade_id == second


async def test_freeze_goes_through_the_chain_admin_and_is_audited(subject: Subject) -> None:
    tx = await subject.operator.freeze_wallet("alice", True, operator="ops")
    assert tx.startswith("0x") and len(tx) == 66
    alice = subject.operator.participants()[0]
    assert (alice.frozen, alice.eligible, alice.reason) == (True, False, "WALLET_FROZEN")
    refused = await subject.venue.submit("alice", _order("alice", Side.SELL, 1, 10_000))
    assert refused.rejection is not None and refused.rejection.code == "WALLET_FROZEN"
    subject.chain.down = True
    with pytest.raises(Exception, match="connection refused"):
        await subject.operator.freeze_wallet("alice", False, operator="ops")
    assert subject.operator.participants()[0].frozen is True
    [entry] = subject.operator.audit_log()
    assert (entry.actor, entry.action) == ("ops", "wallet.freeze") and tx in entry.details


async def test_reconciliation_is_kept_and_audited(subject: Subject) -> None:
    before = subject.operator.reconciliation()
    assert (before.ts, before.ok, before.differences) == (None, True, [])
    subject.chain.differences = ["bob cash: venue 10, chain 8"]
    report = await subject.operator.run_reconciliation(operator="ops")
    assert report.ok is False and report.differences == ["bob cash: venue 10, chain 8"] and report.ts is not None
    assert subject.operator.reconciliation() == report
    assert [e.action for e in subject.operator.audit_log()] == ["reconciliation.run"]


async def test_the_audit_log_is_a_hash_chain(subject: Subject) -> None:
    for status in (InstrumentStatus.HALTED, InstrumentStatus.OPEN):
        await subject.venue.set_status(SYMBOL, status, operator="ops")
    entries = subject.operator.audit_log()
    assert [(e.id, e.action) for e in entries] == [(2, "instrument.status"), (1, "instrument.status")]
    assert '"status":"OPEN"' in entries[0].details
    assert subject.operator.audit_log(limit=1) == entries[:1]
    assert subject.operator.audit_chain_ok() is True
    subject.audit.entries[1] = dataclasses.replace(subject.audit.entries[1], details="{}")
    assert subject.operator.audit_chain_ok() is False
