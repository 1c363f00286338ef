"""Chain fixtures: every test taking ``market`` runs on the in-process EVM and on anvil (marked)."""

from __future__ import annotations

import time
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
from settlement import Chain, DemoAdmin, DemoDeployment
from tests.chains import deploy_and_fund, in_process_evm

DE = 276
SYMBOL = "OMN24"


# fresh per test: eth-tester slows down as its chain grows (about 3x after 200 blocks)
in_process = pytest.fixture(name="in_process")(in_process_evm)


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
    funded = deploy_and_fund(chain, notes=1_000, cash=10**9, seller_country=DE, buyer_country=DE)
    dep, admin, alice, bob, start = funded.deployment, funded.admin, funded.seller, funded.buyer, funded.start_block
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
