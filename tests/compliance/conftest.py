"""Chain fixtures: every test taking ``market`` runs on the in-process EVM and on anvil (marked)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from eth_typing import ChecksumAddress

from compliance import (
    ChainStateCache,
    ChainWatcher,
    Decision,
    DecisionRecord,
    Gatekeeper,
    InstrumentRules,
    InvestorCategory,
    Participant,
    ParticipantStatus,
)
from engine import Side
from settlement import Chain, DemoAdmin, DemoDeployment, deploy_demo, in_process_chain

DE = 276
SYMBOL = "OMN24"


@pytest.fixture
def in_process() -> Iterator[Chain]:
    # fresh per test: eth-tester slows down as its chain grows (about 3x after 200 blocks)
    chain = in_process_chain()
    yield chain
    chain.close()


@dataclass
class Market:
    """A fresh demo deployment; ``alice`` holds notes, ``bob`` holds cash; both approved the DvP contract."""

    chain: Chain
    deployment: DemoDeployment
    admin: DemoAdmin
    alice: ChecksumAddress
    bob: ChecksumAddress
    cache: ChainStateCache
    gk: Gatekeeper
    watcher: ChainWatcher
    records: list[DecisionRecord] = field(default_factory=list)
    start_block: int = 0  # the deployment's first block

    def order(self, who: str, side: Side, qty: int = 10, price: int | None = 100) -> Decision:
        return self.gk.check_new_order(participant=who, symbol=SYMBOL, side=side, qty=qty, price=price,
                                       now_ts=time.time_ns())

    def sell(self, qty: int = 10) -> Decision:
        return self.order("alice", Side.SELL, qty)

    def buy(self, qty: int = 10, price: int = 100) -> Decision:
        return self.order("bob", Side.BUY, qty, price)

    def block(self) -> int:
        return int(self.chain.w3.eth.block_number)


def participant(pid: str, wallet: str, jurisdiction: str = "DE") -> Participant:
    return Participant(id=pid, status=ParticipantStatus.ACTIVE, category=InvestorCategory.MIFID_PROFESSIONAL,
                       jurisdiction=jurisdiction, kyc_expiry_ts=None, wallet=wallet)


@pytest.fixture
def market(chain: Chain) -> Market:
    admin_addr, settler = chain.accounts[0], chain.accounts[1]
    start = int(chain.w3.eth.block_number) + 1
    dep = deploy_demo(chain, admin=admin_addr, settler=settler)
    admin = DemoAdmin(chain, dep)
    alice, bob = chain.new_account(), chain.new_account()
    admin.onboard(alice, country=DE, notes=1_000)
    admin.onboard(bob, country=DE, cash=10**9)
    cache = ChainStateCache()
    records: list[DecisionRecord] = []
    gk = Gatekeeper(cache, settlement_address=dep.settlement, on_decision=records.append)
    gk.set_rules(InstrumentRules(symbol=SYMBOL, token=dep.token, cash_token=dep.stablecoin, lot_size=1,
                                 tick_size=100, allowed_categories=frozenset({InvestorCategory.MIFID_PROFESSIONAL})))
    gk.upsert_participant(participant("alice", alice))
    gk.upsert_participant(participant("bob", bob))
    watcher = ChainWatcher(chain.w3, cache, start_block=start, max_block_range=500)
    watcher.poll_once()
    return Market(chain=chain, deployment=dep, admin=admin, alice=alice, bob=bob, cache=cache, gk=gk,
                  watcher=watcher, records=records, start_block=start)
