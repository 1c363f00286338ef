"""Issue 12 items 8 and 9 against the reference T-REX suite with a real KYC claim topic and a trusted
ClaimIssuer: the venue's order path (real engine + sequencer + gate + eligibility enforcer) refuses
what the token's compliance would refuse, and a claim revoked on chain blocks the participant's
next order and cancels its resting orders within one poll."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from compliance import ReasonCode
from engine import AddInstrument, Engine, Fill, InstrumentSpec, NewOrder, Side
from journal import Sequencer
from market.model import Listing, Outcome
from tests.compliance.kyc_venue import DE, SYMBOL, KycVenue, kyc_venue
from tests.trex_kyc import COUNTRY_RESTRICT, KycTrex
from venue.core import VenueCore
from venue.enforcement import EligibilityEnforcer

FR = 250


@dataclass
class OrderPath:
    kv: KycVenue
    core: VenueCore
    enforcer: EligibilityEnforcer
    audit: list[tuple[str, dict[str, object]]]

    async def sell(self, who: str, price: int, qty: int = 10) -> Outcome:
        return await self.core.submit(who, NewOrder(ts=0, participant=who, symbol=SYMBOL, side=Side.SELL,
                                                    qty=qty, price=price))


class _Audit:
    def __init__(self, sink: list[tuple[str, dict[str, object]]]) -> None:
        self._sink = sink

    def audit(self, actor: str, action: str, details: object) -> None:
        assert isinstance(details, dict)
        self._sink.append((action, dict(details)))


async def _order_path(kv: KycVenue) -> AsyncIterator[OrderPath]:
    rules = kv.gk.rules(SYMBOL)
    assert rules is not None
    spec = InstrumentSpec(symbol=SYMBOL, tick_size=1, lot_size=1)
    listing = Listing(spec=spec, name="kyc", token_address=rules.token, cash_token_address=rules.cash_token,
                      token_decimals=0, cash_decimals=0)
    engine = Engine()
    sequencer = Sequencer(engine, None)
    await sequencer.start()
    await sequencer.submit(AddInstrument(ts=0, spec=spec))
    core = VenueCore(engine=engine, sequencer=sequencer, listings=[listing], compliance=kv.gk,
                     wallets={name: w for name, w in kv.wallets.items()})
    audit: list[tuple[str, dict[str, object]]] = []
    enforcer = EligibilityEnforcer(sequencer=sequencer, orders=core, gate=kv.gk, parties=core.reference,
                                   audit=_Audit(audit))
    enforcer.attach(asyncio.get_running_loop())
    kv.watcher.add_eligibility_listener(enforcer.on_eligibility_lost)
    try:
        yield OrderPath(kv=kv, core=core, enforcer=enforcer, audit=audit)
    finally:
        await sequencer.stop()


@pytest.fixture
async def path(kyc_trex: KycTrex) -> AsyncIterator[OrderPath]:
    async for p in _order_path(kyc_venue(kyc_trex, {"alice": DE, "bob": DE})):
        yield p


async def _settled(path: OrderPath) -> None:
    for _ in range(20):  # the mass cancel is journaled and applied by the sequencer task
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)


async def test_a_revoked_claim_blocks_the_next_order_and_cancels_resting_orders_within_one_poll(
    path: OrderPath, kyc_trex: KycTrex,
) -> None:
    first = await path.sell("alice", 100)
    second = await path.sell("alice", 101)
    assert first.ack is not None and second.ack is not None and first.rejection is None
    assert len(path.core.open_orders("alice")) == 2 and path.kv.gk.open_holds() == 2
    assert (await path.sell("bob", 100)).rejection is None

    kyc_trex.revoke(path.kv.wallets["alice"])  # ClaimIssuer.revokeClaim: alice is no longer verified
    path.kv.watcher.poll_once()  # one poll
    await _settled(path)

    assert path.core.open_orders("alice") == []
    assert path.kv.gk.open_holds() == 1  # alice's holds released, bob's kept
    assert len(path.core.open_orders("bob")) == 1
    [(action, details)] = path.audit
    assert action == "orders.cancel_ineligible"
    assert (details["participant"], details["reason"], details["cancelled"]) == ("alice", "CLAIM_REVOKED", 2)
    refused = await path.sell("alice", 100)
    assert refused.rejection is not None and refused.rejection.code == ReasonCode.IDENTITY_NOT_VERIFIED


async def test_identity_removed_cancels_too(path: OrderPath, kyc_trex: KycTrex) -> None:
    assert (await path.sell("alice", 100)).rejection is None
    kyc_trex.remove_claim(path.kv.wallets["alice"])  # the identity owner drops its KYC claim
    path.kv.watcher.poll_once()
    await _settled(path)
    assert path.core.open_orders("alice") == [] and path.kv.gk.open_holds() == 0


# ---------------------------------------------------------------- item 8: the token's own canTransfer


async def test_token_compliance_refusal_is_known_at_entry_and_before_settlement(kyc_trex: KycTrex) -> None:
    kyc_trex.add_module("country", COUNTRY_RESTRICT)
    kv = kyc_venue(kyc_trex, {"alice": DE, "bob": FR, "carol": DE}, probes=(1, 100))
    bob = kv.gk.participant("bob")
    assert bob is not None
    kv.gk.upsert_participant(dataclasses.replace(bob, jurisdiction="FR"))
    kyc_trex.call_module("country", "addCountryRestriction", FR)  # FR may not receive notes
    kv.watcher.poll_once()

    # entry: bob (FR) can buy from nobody; alice (DE) can still sell (to carol)
    bob_buys = kv.gk.check_new_order(participant="bob", symbol=SYMBOL, side=Side.BUY, qty=10, price=1,
                                     now_ts=_now())
    assert bob_buys.code == ReasonCode.TOKEN_COMPLIANCE_REFUSED
    assert kv.sell("alice") is None
    # pre-settlement: a trade alice -> bob would fail on chain; the venue knows before sending it
    fill = Fill(seq=1, md_seq=1, ts=_now(), trade_id=7, symbol=SYMBOL, price=1, qty=10, aggressor=Side.SELL,
                maker_order_id=1, maker_participant="bob", maker_remaining=0, taker_order_id=2,
                taker_participant="alice", taker_remaining=0)
    decision = kv.gk.check_trade(fill, now_ts=_now())
    assert not decision.ok and decision.code == ReasonCode.TOKEN_COMPLIANCE_REFUSED and decision.participant == "bob"
    assert kyc_trex.suite.compliance.functions.canTransfer(kv.wallets["alice"], kv.wallets["bob"], 10).call() is False
    # alice -> carol is fine
    to_carol = Fill(seq=2, md_seq=2, ts=_now(), trade_id=8, symbol=SYMBOL, price=1, qty=10, aggressor=Side.SELL,
                    maker_order_id=3, maker_participant="carol", maker_remaining=0, taker_order_id=4,
                    taker_participant="alice", taker_remaining=0)
    assert kv.gk.check_trade(to_carol, now_ts=_now()).ok
    # the restriction lifts within one poll
    kyc_trex.call_module("country", "removeCountryRestriction", FR)
    kv.watcher.poll_once()
    assert kv.gk.check_trade(fill, now_ts=_now()).ok


def _now() -> int:
    return time.time_ns()
