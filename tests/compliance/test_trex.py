"""The watcher against the reference ERC-3643 implementation (Tokeny T-REX 4.1.6 artifacts)."""

from __future__ import annotations

import time

from web3 import Web3

from compliance import (
    ChainStateCache,
    ChainWatcher,
    Gatekeeper,
    InstrumentRules,
    InvestorCategory,
    ReasonCode,
)
from engine import Side
from settlement import Chain, artifacts
from settlement.trex import deploy_trex_suite
from tests.compliance.conftest import DE, participant

SETTLEMENT = Web3.to_checksum_address("0x" + "d5" * 20)  # only an allowance spender here


def test_trex_freeze_identity_and_pause_reach_the_next_check(chain: Chain) -> None:
    owner = chain.accounts[0]
    start = int(chain.w3.eth.block_number) + 1
    suite = deploy_trex_suite(chain, owner=owner)
    cash = chain.deploy(artifacts.load("DemoStablecoin"), owner, owner)
    alice = chain.new_account()
    suite.register(alice, DE)
    suite.mint(alice, 100)
    chain.transact(suite.token.functions.approve(SETTLEMENT, 100), alice)
    cache = ChainStateCache()
    gk = Gatekeeper(cache, settlement_address=SETTLEMENT)
    gk.set_rules(InstrumentRules(symbol="TOMN", token=suite.token.address, cash_token=cash.address, lot_size=1,
                                 tick_size=1, allowed_categories=frozenset({InvestorCategory.MIFID_PROFESSIONAL})))
    gk.upsert_participant(participant("alice", alice))
    watcher = ChainWatcher(chain.w3, cache, start_block=start)
    watcher.poll_once()

    def sell() -> ReasonCode | None:
        return gk.check_new_order(participant="alice", symbol="TOMN", side=Side.SELL, qty=10, price=1,
                                  now_ts=time.time_ns()).code

    assert sell() is None
    assert cache.holders(suite.token.address) == {alice.lower()}
    suite.freeze(alice)
    watcher.poll_once()
    assert sell() is ReasonCode.WALLET_FROZEN
    suite.freeze(alice, False)
    watcher.poll_once()
    assert sell() is None
    chain.transact(suite.token.functions.freezePartialTokens(alice, 95), owner)
    watcher.poll_once()
    assert sell() is ReasonCode.INSUFFICIENT_NOTES
    chain.transact(suite.token.functions.unfreezePartialTokens(alice, 95), owner)
    chain.transact(suite.token.functions.pause(), owner)
    watcher.poll_once()
    assert sell() is ReasonCode.TOKEN_PAUSED
    chain.transact(suite.token.functions.unpause(), owner)
    watcher.poll_once()
    assert sell() is None
    chain.transact(suite.identity_registry.functions.deleteIdentity(alice), owner)
    watcher.poll_once()
    assert sell() is ReasonCode.IDENTITY_NOT_VERIFIED
