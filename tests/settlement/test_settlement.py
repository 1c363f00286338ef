"""Shared settlement suite: runs on the in-process EVM and on anvil."""

from __future__ import annotations

import asyncio

import pytest

from settlement import (
    InvalidAddressError,
    InvalidTradeError,
    SettlementService,
    SettlementStatus,
    SettlementUpdate,
    TransactionRevertedError,
    reconcile,
)
from tests.settlement.conftest import BUYER_CASH, SELLER_NOTES, Market

CONFIRMED, FAILED = SettlementStatus.CONFIRMED, SettlementStatus.FAILED


def _by_id(updates: list[SettlementUpdate]) -> dict[int, SettlementUpdate]:
    return {u.trade_id: u for u in updates}


def test_one_trade_moves_both_legs(market: Market) -> None:
    [update] = market.service().settle_batch([market.trade(10, 2_500_000)])
    assert update.status is CONFIRMED
    assert update.tx_hash is not None and update.block is not None and update.gas_used
    assert market.admin.balances(market.seller) == (SELLER_NOTES - 10, 2_500_000)
    assert market.admin.balances(market.buyer) == (10, BUYER_CASH - 2_500_000)
    assert market.admin.settlement.functions.settled(update.trade_id).call()  # a bit per id (issue 16), no block


def test_failing_payment_leg_reverts_the_delivery_leg(market: Market) -> None:
    before = market.balances()
    # delivery would succeed (seller has notes, approved), payment cannot: buyer lacks cash
    [update] = market.service().settle_batch([market.trade(5, BUYER_CASH + 1)])
    assert update.status is FAILED
    assert update.reason is not None
    assert update.reason.startswith("payment leg (cash) failed: ERC20InsufficientBalance")
    assert market.balances() == before
    assert not market.admin.settlement.functions.settled(update.trade_id).call()


def test_failing_delivery_leg_moves_nothing(market: Market) -> None:
    before = market.balances()
    [update] = market.service().settle_batch([market.trade(SELLER_NOTES + 1)])
    assert update.status is FAILED
    assert update.reason == (
        f"delivery leg (token) failed: InsufficientUnfrozenBalance(wallet={market.seller}, "
        f"available={SELLER_NOTES}, needed={SELLER_NOTES + 1})"
    )
    assert market.balances() == before


def test_bad_trade_in_a_batch_fails_alone(market: Market) -> None:
    good1, bad, good2 = market.trade(1, 100), market.trade(1, 100, buyer=market.outsider), market.trade(2, 200)
    result = _by_id(market.service().settle_batch([good1, bad, good2]))
    assert result[good1.trade_id].status is CONFIRMED
    assert result[good2.trade_id].status is CONFIRMED
    assert result[bad.trade_id].status is FAILED
    assert result[bad.trade_id].reason == (
        f"delivery leg (token) failed: RecipientNotVerified(wallet={market.outsider})"
    )
    assert market.admin.balances(market.buyer) == (3, BUYER_CASH - 300)
    assert market.admin.balances(market.outsider) == (0, 0)
    assert market.admin.balances(market.seller) == (SELLER_NOTES - 3, 300)


@pytest.mark.parametrize(
    ("setup", "expected_reason"),
    [
        (lambda m: m.admin.freeze(m.seller), "delivery leg (token) failed: WalletFrozen(wallet={seller})"),
        (lambda m: m.admin.freeze(m.buyer), "delivery leg (token) failed: WalletFrozen(wallet={buyer})"),
        (lambda m: m.admin.pause(), "delivery leg (token) failed: TokenPaused()"),
        (
            lambda m: m.admin.freeze_tokens(m.seller, SELLER_NOTES - 5),
            "delivery leg (token) failed: InsufficientUnfrozenBalance(wallet={seller}, available=5, needed=10)",
        ),
        (
            lambda m: m.admin.remove_investor(m.buyer),
            "delivery leg (token) failed: RecipientNotVerified(wallet={buyer})",
        ),
        (
            lambda m: m.admin.set_max_balance(9),
            "delivery leg (token) failed: ComplianceRejected(from={seller}, to={buyer}, amount=10)",
        ),
    ],
    ids=["seller-frozen", "buyer-frozen", "paused", "tokens-frozen", "buyer-removed", "holding-cap"],
)
def test_erc3643_rules_fail_the_trade_with_a_readable_reason(
    market: Market, setup: object, expected_reason: str
) -> None:
    setup(market)  # type: ignore[operator]
    before = market.balances()
    [update] = market.service().settle_batch([market.trade(10, 1_000)])
    assert update.status is FAILED
    assert update.reason == expected_reason.format(seller=market.seller, buyer=market.buyer)
    assert market.balances() == before


def test_max_holders_rule(market: Market) -> None:
    market.admin.set_max_holders(1)  # the seller is the only holder
    [update] = market.service().settle_batch([market.trade(10, 1_000)])
    assert update.status is FAILED and update.reason is not None and "ComplianceRejected" in update.reason
    # selling everything frees the slot
    [update] = market.service().settle_batch([market.trade(SELLER_NOTES, 1_000)])
    assert update.status is CONFIRMED
    assert market.admin.compliance.functions.holderCount().call() == 1


def test_missing_approval_fails(market: Market) -> None:
    market.chain.transact(market.admin.stablecoin.functions.approve(market.deployment.settlement, 0), market.buyer)
    [update] = market.service().settle_batch([market.trade(1, 10)])
    assert update.status is FAILED
    assert update.reason is not None
    assert update.reason.startswith("payment leg (cash) failed: ERC20InsufficientAllowance")


def test_trade_id_settles_once(market: Market) -> None:
    trade = market.trade(10, 1_000)
    service = market.service()
    [first] = service.settle_batch([trade])
    [again] = service.settle_batch([trade])
    assert first.status is CONFIRMED and again.status is CONFIRMED
    assert again.block == first.block
    assert again.reason == f"already settled on chain in block {first.block}"
    assert market.admin.balances(market.buyer) == (10, BUYER_CASH - 1_000)


def test_duplicate_id_within_one_batch_settles_once(market: Market) -> None:
    trade = market.trade(10, 1_000)
    updates = market.service().settle_batch([trade, trade])
    assert [u.status for u in updates] == [CONFIRMED, CONFIRMED]
    assert market.admin.balances(market.buyer) == (10, BUYER_CASH - 1_000)


def test_same_id_different_terms_is_refused(market: Market) -> None:
    service = market.service()
    service.settle_batch([market.trade(10, 1_000, trade_id=77)])
    [update] = service.settle_batch([market.trade(20, 2_000, trade_id=77)])
    assert update.status is CONFIRMED  # the id is settled; the new terms are ignored
    assert market.admin.balances(market.buyer) == (10, BUYER_CASH - 1_000)


def test_only_the_settler_may_settle(market: Market) -> None:
    intruder = market.chain.accounts[2]
    service = SettlementService(
        market.chain,
        market.deployment.settlement,
        market.chain.private_key(intruder),
        on_update=market.updates.append,
    )
    before = market.balances()
    [update] = service.settle_batch([market.trade(1, 10)])
    assert update.status is FAILED
    assert update.reason is not None
    assert update.reason.startswith(f"AccessControlUnauthorizedAccount(account={intruder}")
    assert market.balances() == before
    market.admin.grant_settler(intruder)
    [update] = service.settle_batch([market.trade(1, 10)])
    assert update.status is CONFIRMED


def test_settle_one_is_not_callable_from_outside(market: Market) -> None:
    fn = market.admin.settlement.functions.settleOne(market.trade(1, 10).as_tuple())
    with pytest.raises(TransactionRevertedError) as err:
        market.chain.transact(fn, market.deployment.settler)
    assert err.value.reason == "OnlySelf()"


def test_token_that_is_not_a_contract_fails_the_trade(market: Market) -> None:
    [update] = market.service().settle_batch([market.trade(1, 10, token=market.outsider)])
    assert update.status is FAILED
    assert update.reason == f"NotAContract(account={market.outsider})"


@pytest.mark.parametrize(
    "changes",
    [{"quantity": 0}, {"cash_amount": -1}, {"trade_id": 0}, {"seller": "0x1234"}, {"buyer": "seller"}],
    ids=["zero-qty", "negative-cash", "zero-id", "bad-address", "self-trade"],
)
def test_malformed_trades_are_refused_before_the_chain(market: Market, changes: dict[str, object]) -> None:
    base = market.trade()
    fields = {f: getattr(base, f) for f in base.__dataclass_fields__}
    for k, v in changes.items():
        fields[k] = fields["seller"] if v == "seller" else v
    bad = type(base)(**fields)
    service = market.service()
    with pytest.raises(InvalidTradeError):
        service.submit(bad)
    with pytest.raises(InvalidTradeError):
        service.settle_batch([bad])
    assert service.pending == 0
    assert market.updates == []


def test_crash_after_broadcast_then_recover_settles_exactly_once(market: Market) -> None:
    sent, unsent = [market.trade(1, 10), market.trade(2, 20)], [market.trade(3, 30)]

    class Crash(Exception):
        pass

    def crash_on_submitted(update: SettlementUpdate) -> None:
        if update.status is SettlementStatus.SUBMITTED:
            raise Crash

    crashed = SettlementService(
        market.chain,
        market.deployment.settlement,
        market.chain.private_key(market.deployment.settler),
        on_update=crash_on_submitted,
    )
    with pytest.raises(Crash):
        crashed.settle_batch(sent)
    market.chain.mine(1)  # the broadcast transaction lands while the settler is down

    restarted = market.service()
    already = restarted.recover([*sent, *unsent])
    assert {u.trade_id for u in already} == {t.trade_id for t in sent}
    assert all(u.status is CONFIRMED for u in already)
    assert restarted.pending == 1
    updates = _by_id(restarted.settle_batch([market.trade(3, 30, trade_id=unsent[0].trade_id)]))
    assert updates[unsent[0].trade_id].status is CONFIRMED
    assert market.admin.balances(market.buyer) == (6, BUYER_CASH - 60)
    # resubmitting everything again is harmless
    again = restarted.settle_batch([*sent, *unsent])
    assert all(u.status is CONFIRMED and u.reason and "already settled" in u.reason for u in again)
    assert market.admin.balances(market.buyer) == (6, BUYER_CASH - 60)


async def test_run_loop_batches_and_reports_every_stage(market: Market) -> None:
    service = market.service(max_batch=3)
    trades = [market.trade(1, 10) for _ in range(5)] + [market.trade(1, 10, buyer=market.outsider)]
    for t in trades:
        service.submit(t)
    with pytest.raises(InvalidTradeError, match="already queued"):
        service.submit(trades[0])
    task = service.start()
    await service.drain(timeout=120)
    service.stop()
    await asyncio.wait_for(task, 10)
    statuses: dict[int, list[SettlementStatus]] = {}
    for u in market.updates:
        statuses.setdefault(u.trade_id, []).append(u.status)
    for t in trades[:5]:
        assert statuses[t.trade_id] == [SettlementStatus.PENDING, SettlementStatus.SUBMITTED, CONFIRMED]
    assert statuses[trades[5].trade_id][-1] is FAILED
    tx_hashes = {u.tx_hash for u in market.updates if u.status is CONFIRMED}
    assert len(tx_hashes) == 2  # 6 trades, batches of 3
    assert market.admin.balances(market.buyer) == (5, BUYER_CASH - 50)


def test_reconcile_reports_differences(market: Market) -> None:
    market.service().settle_batch([market.trade(10, 1_000)])
    ledger = {market.seller: (SELLER_NOTES - 10, 1_000), market.buyer: (10, BUYER_CASH - 1_000)}
    dep = market.deployment
    assert reconcile(market.chain, dep.token, dep.stablecoin, ledger) == []
    # a transfer outside the venue shows up
    market.chain.transact(market.admin.token.functions.transfer(market.seller, 4), market.buyer)
    [diff_buyer, diff_seller] = sorted(
        reconcile(market.chain, dep.token, dep.stablecoin, ledger), key=lambda d: d.delta
    )
    assert (diff_buyer.wallet, diff_buyer.asset, diff_buyer.expected, diff_buyer.actual) == (
        market.buyer, "token", 10, 6,
    )
    assert diff_buyer.delta == -4
    assert (diff_seller.wallet, diff_seller.asset, diff_seller.delta) == (market.seller, "token", 4)


def test_admin_rejects_bad_addresses_and_reports_agent_errors(market: Market) -> None:
    with pytest.raises(InvalidAddressError, match="not an EVM address: 'nope'"):
        market.admin.freeze("nope")
    with pytest.raises(TransactionRevertedError) as err:
        market.admin.unfreeze_tokens(market.seller, 1)
    assert err.value.reason == f"AmountExceedsFrozen(wallet={market.seller}, frozen=0, amount=1)"
    with pytest.raises(TransactionRevertedError) as err:
        market.chain.transact(market.admin.token.functions.pause(), market.seller)
    assert err.value.reason == f"NotAgent(account={market.seller})"


def test_failed_trade_id_stays_failed_after_the_cause_is_removed(market: Market) -> None:
    """Issue 12 defect 1: a trade that failed on chain (seller frozen) settled when resubmitted
    after the unfreeze. The contract records a failed id as decided; a resubmission moves nothing."""
    trade = market.trade(10, 1_000)
    service = market.service()
    market.admin.freeze(market.seller)
    [first] = service.settle_batch([trade])
    assert first.status is FAILED
    market.admin.freeze(market.seller, False)
    before = market.balances()
    [again] = service.settle_batch([trade])
    assert again.status is FAILED
    assert again.reason == f"already failed on chain in block {first.block}"
    assert market.balances() == before
    assert not market.admin.settlement.functions.settled(trade.trade_id).call()
