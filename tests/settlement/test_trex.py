"""Settle against the reference ERC-3643 token (Tokeny T-REX 4.1.6 artifacts from npm) on anvil."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_typing import ChecksumAddress

from settlement import (
    Chain,
    DemoAdmin,
    DemoDeployment,
    SettlementService,
    SettlementStatus,
    SettlementUpdate,
    TradeToSettle,
    deploy_demo,
)
from settlement.deploy import MAX_UINT256
from settlement.trex import TrexSuite, deploy_trex_suite

pytestmark = pytest.mark.anvil


@dataclass
class TrexMarket:
    chain: Chain
    suite: TrexSuite
    deployment: DemoDeployment  # our DvP contract + demo stablecoin
    admin: DemoAdmin
    seller: ChecksumAddress
    buyer: ChecksumAddress
    outsider: ChecksumAddress
    service: SettlementService
    updates: list[SettlementUpdate]

    def trade(self, trade_id: int, quantity: int, cash: int, *, buyer: str | None = None) -> TradeToSettle:
        return TradeToSettle(
            trade_id=trade_id,
            token=self.suite.token.address,
            seller=self.seller,
            buyer=buyer or self.buyer,
            quantity=quantity,
            cash_token=self.deployment.stablecoin,
            cash_amount=cash,
        )

    def balances(self, wallet: str) -> tuple[int, int]:
        return (
            self.suite.token.functions.balanceOf(wallet).call(),
            self.admin.stablecoin.functions.balanceOf(wallet).call(),
        )


@pytest.fixture
def trex(anvil: Chain) -> TrexMarket:
    chain = anvil
    owner, settler = chain.accounts[0], chain.accounts[1]
    suite = deploy_trex_suite(chain, owner=owner)
    deployment = deploy_demo(chain, admin=owner, settler=settler)
    admin = DemoAdmin(chain, deployment)
    seller, buyer, outsider = chain.new_account(), chain.new_account(), chain.new_account()
    suite.register(seller, 756)
    suite.register(buyer, 276)
    suite.mint(seller, 100)
    admin.fund_cash(buyer, 10**9)
    admin.fund_cash(outsider, 10**9)
    for wallet in (seller, buyer, outsider):
        chain.transact(suite.token.functions.approve(deployment.settlement, MAX_UINT256), wallet)
        chain.transact(admin.stablecoin.functions.approve(deployment.settlement, MAX_UINT256), wallet)
    updates: list[SettlementUpdate] = []
    service = SettlementService(
        chain, deployment.settlement, chain.private_key(settler), on_update=updates.append
    )
    return TrexMarket(chain, suite, deployment, admin, seller, buyer, outsider, service, updates)


def test_trex_identity_registry_is_what_the_token_consults(trex: TrexMarket) -> None:
    token, registry = trex.suite.token, trex.suite.identity_registry
    assert token.functions.identityRegistry().call() == registry.address
    assert registry.functions.isVerified(trex.buyer).call()
    assert not registry.functions.isVerified(trex.outsider).call()


def test_trex_batch_settles_good_trades_and_isolates_bad_ones(trex: TrexMarket) -> None:
    updates = trex.service.settle_batch(
        [
            trex.trade(1, 10, 1_000),
            trex.trade(2, 5, 500, buyer=trex.outsider),  # not registered: T-REX refuses
            trex.trade(3, 1_000, 1_000),  # more than the seller holds
            trex.trade(4, 20, 2_000),
        ]
    )
    by_id = {u.trade_id: u for u in updates}
    assert by_id[1].status is SettlementStatus.CONFIRMED
    assert by_id[4].status is SettlementStatus.CONFIRMED
    assert by_id[2].status is SettlementStatus.FAILED
    assert by_id[2].reason == "delivery leg (token) failed: Transfer not possible"
    assert by_id[3].status is SettlementStatus.FAILED
    assert by_id[3].reason == "delivery leg (token) failed: Insufficient Balance"
    assert trex.balances(trex.buyer) == (30, 10**9 - 3_000)
    assert trex.balances(trex.seller) == (70, 3_000)
    assert trex.balances(trex.outsider) == (0, 10**9)


def test_trex_payment_failure_reverts_delivery(trex: TrexMarket) -> None:
    [update] = trex.service.settle_batch([trex.trade(1, 10, 10**9 + 1)])
    assert update.status is SettlementStatus.FAILED
    assert update.reason is not None and update.reason.startswith("payment leg (cash) failed")
    assert trex.balances(trex.seller) == (100, 0)
    assert trex.balances(trex.buyer) == (0, 10**9)


def test_trex_frozen_wallet_and_replay(trex: TrexMarket) -> None:
    trex.suite.freeze(trex.seller)
    [update] = trex.service.settle_batch([trex.trade(7, 10, 1_000)])
    assert update.status is SettlementStatus.FAILED
    assert update.reason == "delivery leg (token) failed: wallet is frozen"
    failed_in = update.block
    trex.suite.freeze(trex.seller, False)
    # issue 12: the failed id is decided; its replay moves nothing (it used to settle here)
    [update] = trex.service.settle_batch([trex.trade(7, 10, 1_000)])
    assert update.status is SettlementStatus.FAILED
    assert update.reason == f"already failed on chain in block {failed_in}"
    assert trex.balances(trex.buyer) == (0, 10**9)
    [update] = trex.service.settle_batch([trex.trade(8, 10, 1_000)])  # a new trade id settles
    assert update.status is SettlementStatus.CONFIRMED
    [update] = trex.service.settle_batch([trex.trade(8, 10, 1_000)])
    assert update.status is SettlementStatus.CONFIRMED and update.reason is not None
    assert trex.balances(trex.buyer) == (10, 10**9 - 1_000)
