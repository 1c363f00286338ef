"""Issue 16: investor-signed orders enforced by the DvP contract. Every refusal moves nothing and
fails only its trade. Runs on the in-process EVM and on anvil."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_account import Account

from settlement import SettlementStatus, TradeToSettle, TransactionRevertedError, load
from settlement.investor import DvPCancelLogs
from tests.settlement.conftest import BUYER_CASH, SELLER_NOTES, Market
from tests.settlement.signed_world import Signer, domain, fresh_key, investor, now, per_unit, signed_trade
from venueclient.signed_orders import OrderDomain, recover_signer, sign_permit

CONFIRMED, FAILED = SettlementStatus.CONFIRMED, SettlementStatus.FAILED
PRICE = per_unit(100, 1)  # 100 cash base units per note base unit


@pytest.fixture
def signer(market: Market) -> Signer:
    return Signer(market, domain(market))


def _settle(market: Market, *trades: TradeToSettle) -> dict[int, tuple[SettlementStatus, str]]:
    return {u.trade_id: (u.status, u.reason or "") for u in market.service().settle_batch(list(trades))}


def _unchanged(market: Market) -> None:
    assert market.admin.balances(market.seller) == (SELLER_NOTES, 0)
    assert market.admin.balances(market.buyer) == (0, BUYER_CASH)


def test_the_contract_digest_is_the_clients(market: Market, signer: Signer) -> None:
    order = signer.order(market.buyer, sell=False, limit_price=PRICE, max_quantity=10)
    contract = market.chain.our_contract("DvPSettlement", market.deployment.settlement)
    assert bytes(contract.functions.hashOrder(order.as_tuple()).call()) == signer.digest(order)
    assert recover_signer(order.to_wire(), signer.domain) == market.buyer


def test_signed_trade_settles_and_a_registered_order_needs_no_second_signature(
    market: Market, signer: Signer
) -> None:
    sell = signer.order(market.seller, sell=True, limit_price=PRICE, max_quantity=30)
    buy = signer.order(market.buyer, sell=False, limit_price=PRICE, max_quantity=30)
    first = signed_trade(market, 10, 1_000, sell_order=sell, buy_order=buy)
    assert _settle(market, first)[first.trade_id][0] is CONFIRMED
    assert investor(market).order_state(market.buyer, signer.digest(buy)) == (True, False, 10)
    # the same orders again without their signatures: the contract knows them
    second = signed_trade(market, 5, 500, sell_order=replace(sell, signature=b""),
                          buy_order=replace(buy, signature=b""))
    assert _settle(market, second)[second.trade_id][0] is CONFIRMED
    assert market.admin.balances(market.buyer) == (15, BUYER_CASH - 1_500)
    assert investor(market).order_state(market.seller, signer.digest(sell)) == (True, False, 15)


def test_an_unregistered_order_without_signature_is_refused(market: Market, signer: Signer) -> None:
    buy = signer.order(market.buyer, sell=False, limit_price=PRICE, max_quantity=30)
    trade = signed_trade(market, 10, 1_000, buy_order=replace(buy, signature=b""))
    status, reason = _settle(market, trade)[trade.trade_id]
    assert status is FAILED and reason.startswith("BadSignature")
    _unchanged(market)


def test_wrong_signer_is_refused(market: Market, signer: Signer) -> None:
    forged = signer.order(market.buyer, sell=False, limit_price=PRICE, max_quantity=10, key=fresh_key())
    trade = signed_trade(market, 10, 1_000, buy_order=forged)
    status, reason = _settle(market, trade)[trade.trade_id]
    assert status is FAILED and reason.startswith("BadSignature")
    _unchanged(market)


def test_an_order_of_another_wallet_is_refused(market: Market, signer: Signer) -> None:
    # validly signed by the outsider, but the buyer's cash would move
    other = signer.order(market.outsider, sell=False, limit_price=PRICE, max_quantity=10)
    trade = signed_trade(market, 10, 1_000, buy_order=other)
    status, reason = _settle(market, trade)[trade.trade_id]
    assert status is FAILED and "OrderMismatch" in reason and "wallet" in reason
    _unchanged(market)


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_price_beyond_the_limit_is_refused(market: Market, signer: Signer, side: str) -> None:
    if side == "buy":  # pays 1,001 where the limit allows 1,000
        order = signer.order(market.buyer, sell=False, limit_price=PRICE, max_quantity=10)
        trade = signed_trade(market, 10, 1_001, buy_order=order)
    else:  # receives 999 where the limit asks 1,000
        order = signer.order(market.seller, sell=True, limit_price=PRICE, max_quantity=10)
        trade = signed_trade(market, 10, 999, sell_order=order)
    status, reason = _settle(market, trade)[trade.trade_id]
    assert status is FAILED and reason.startswith("PriceBeyondLimit")
    _unchanged(market)


def test_a_better_price_than_the_limit_settles(market: Market, signer: Signer) -> None:
    buy = signer.order(market.buyer, sell=False, limit_price=PRICE, max_quantity=10)
    sell = signer.order(market.seller, sell=True, limit_price=PRICE // 2, max_quantity=10)
    trade = signed_trade(market, 10, 900, buy_order=buy, sell_order=sell)
    assert _settle(market, trade)[trade.trade_id][0] is CONFIRMED


def test_overfill_across_batches_is_refused(market: Market, signer: Signer) -> None:
    buy = signer.order(market.buyer, sell=False, limit_price=PRICE, max_quantity=15)
    a = signed_trade(market, 10, 1_000, buy_order=buy)
    assert _settle(market, a)[a.trade_id][0] is CONFIRMED
    b, c = signed_trade(market, 6, 600, buy_order=buy), signed_trade(market, 5, 500, buy_order=buy)
    outcomes = _settle(market, b, c)
    assert outcomes[b.trade_id][0] is FAILED and outcomes[b.trade_id][1].startswith("Overfill")
    assert outcomes[c.trade_id][0] is CONFIRMED  # exactly the maximum
    d = signed_trade(market, 1, 100, buy_order=buy)
    assert _settle(market, d)[d.trade_id][1].startswith("Overfill")
    assert market.admin.balances(market.buyer) == (15, BUYER_CASH - 1_500)
    assert investor(market).order_status(buy) == (False, 15)


def test_an_order_filled_by_one_trade_consumes_its_nonce_and_cannot_fill_again(market: Market, signer: Signer) -> None:
    buy = signer.order(market.buyer, sell=False, limit_price=PRICE, max_quantity=10, nonce=5)
    a = signed_trade(market, 10, 1_000, buy_order=buy)
    assert _settle(market, a)[a.trade_id][0] is CONFIRMED
    assert investor(market).order_state(market.buyer, signer.digest(buy)) == (False, False, 0)  # no order slot
    assert investor(market).order_status(buy) == (False, 10)
    investor(market).raise_min_nonce(market.buyer, 3)  # the consumed nonce stays consumed in the moved window
    b = signed_trade(market, 1, 100, buy_order=buy)
    status, reason = _settle(market, b)[b.trade_id]
    assert status is FAILED and reason.startswith("Overfill")
    # another order with the same nonce is refused too: a nonce is one order
    same_nonce = signer.order(market.buyer, sell=False, limit_price=PRICE, max_quantity=3, nonce=5)
    c = signed_trade(market, 1, 100, buy_order=same_nonce)
    assert _settle(market, c)[c.trade_id][1].startswith("Overfill")
    assert market.admin.balances(market.buyer) == (10, BUYER_CASH - 1_000)


def test_expired_order_is_refused(market: Market, signer: Signer) -> None:
    buy = signer.order(market.buyer, sell=False, limit_price=PRICE, max_quantity=10, expiry=now(market.chain))
    trade = signed_trade(market, 10, 1_000, buy_order=buy)
    status, reason = _settle(market, trade)[trade.trade_id]
    assert status is FAILED and reason.startswith("OrderExpired")
    _unchanged(market)


def test_order_cancelled_by_hash_is_refused_and_a_strangers_cancel_does_nothing(
    market: Market, signer: Signer
) -> None:
    buy = signer.order(market.buyer, sell=False, limit_price=PRICE, max_quantity=20)
    investor(market).cancel_orders(market.outsider, [signer.digest(buy)])  # not the buyer's to cancel
    a = signed_trade(market, 10, 1_000, buy_order=buy)
    assert _settle(market, a)[a.trade_id][0] is CONFIRMED
    investor(market).cancel_orders(market.buyer, [signer.digest(buy)])
    assert investor(market).order_state(market.buyer, signer.digest(buy)) == (True, True, 10)
    b = signed_trade(market, 1, 100, buy_order=buy)
    status, reason = _settle(market, b)[b.trade_id]
    assert status is FAILED and reason.startswith("OrderCancelledError")
    assert market.admin.balances(market.buyer) == (10, BUYER_CASH - 1_000)


def test_orders_below_the_minimum_nonce_are_refused(market: Market, signer: Signer) -> None:
    old = signer.order(market.buyer, sell=False, limit_price=PRICE, max_quantity=10, nonce=4)
    new = signer.order(market.buyer, sell=False, limit_price=PRICE, max_quantity=10, nonce=5)
    investor(market).raise_min_nonce(market.buyer, 5)
    with pytest.raises(TransactionRevertedError, match="NonceNotRaised"):
        investor(market).raise_min_nonce(market.buyer, 5)
    a, b = signed_trade(market, 1, 100, buy_order=old), signed_trade(market, 1, 100, buy_order=new)
    outcomes = _settle(market, a, b)
    assert outcomes[a.trade_id][0] is FAILED and outcomes[a.trade_id][1].startswith("NonceTooLow")
    assert outcomes[b.trade_id][0] is CONFIRMED


def test_the_cancel_state_a_restarted_venue_reads_is_the_contracts(market: Market, signer: Signer) -> None:
    """What ``CancelWatcher.catch_up`` asks after a restart: cancels made while the venue was down."""
    state = DvPCancelLogs(market.chain, market.deployment.settlement).state
    buy = signer.order(market.buyer, sell=False, limit_price=PRICE, max_quantity=20)
    assert state(market.buyer, signer.digest(buy)) == (False, 0)
    investor(market).cancel_orders(market.buyer, [signer.digest(buy)])
    investor(market).raise_min_nonce(market.buyer, 7)
    assert state(market.buyer, signer.digest(buy)) == (True, 7)
    assert state(market.seller, signer.digest(buy)) == (False, 0)  # keyed by wallet too


@pytest.mark.parametrize("mismatch", ["other_contract", "other_chain"])
def test_an_order_signed_for_another_domain_is_refused(market: Market, signer: Signer, mismatch: str) -> None:
    foreign = (OrderDomain(chain_id=signer.domain.chain_id, verifying_contract=market.deployment.token)
               if mismatch == "other_contract"
               else OrderDomain(chain_id=signer.domain.chain_id + 1,
                                verifying_contract=market.deployment.settlement))
    buy = signer.order(market.buyer, sell=False, limit_price=PRICE, max_quantity=10, domain=foreign)
    trade = signed_trade(market, 10, 1_000, buy_order=buy)
    status, reason = _settle(market, trade)[trade.trade_id]
    assert status is FAILED and reason.startswith("BadSignature")
    _unchanged(market)


def test_a_signed_only_wallet_cannot_be_settled_without_its_order(market: Market, signer: Signer) -> None:
    """The settler submits a trade the investor never signed: nothing moves, by either entry point."""
    investor(market).set_signed_only(market.buyer)
    assert investor(market).signed_only(market.buyer)
    plain = market.trade(10, 1_000)
    status, reason = _settle(market, plain)[plain.trade_id]
    assert status is FAILED and reason.startswith("OrderRequired")
    # in a signed batch, with only the seller's order
    sell = signer.order(market.seller, sell=True, limit_price=PRICE, max_quantity=10)
    half = signed_trade(market, 10, 1_000, sell_order=sell)
    status, reason = _settle(market, half)[half.trade_id]
    assert status is FAILED and reason.startswith("OrderRequired")
    _unchanged(market)
    # with the buyer's signed order it settles
    buy = signer.order(market.buyer, sell=False, limit_price=PRICE, max_quantity=10)
    both = signed_trade(market, 10, 1_000, sell_order=sell, buy_order=buy)
    assert _settle(market, both)[both.trade_id][0] is CONFIRMED


def test_one_signed_side_is_checked_on_that_side_only(market: Market, signer: Signer) -> None:
    sell = signer.order(market.seller, sell=True, limit_price=PRICE, max_quantity=11)
    ok = signed_trade(market, 10, 1_000, sell_order=sell)  # buyer unsigned, not signed-only
    low = signed_trade(market, 1, 1, sell_order=sell)
    outcomes = _settle(market, ok, low)
    assert outcomes[ok.trade_id][0] is CONFIRMED
    assert outcomes[low.trade_id][1].startswith("PriceBeyondLimit")


def _smart_wallet(market: Market, owner_key: bytes) -> str:
    chain, dep = market.chain, market.deployment
    owner = chain.add_key(owner_key)
    chain.transfer_eth(chain.accounts[0], owner, 10**18)
    wallet = chain.deploy(load("DemoSmartWallet"), owner, owner).address
    market.admin.register_investor(wallet, 276)
    market.admin.fund_cash(wallet, 10_000)
    cash = chain.our_contract("DemoStablecoin", dep.stablecoin)
    approve = cash.encode_abi("approve", [dep.settlement, 2**256 - 1])
    wallet_contract = chain.our_contract("DemoSmartWallet", wallet)
    chain.transact(wallet_contract.functions.execute(dep.stablecoin, approve), owner)
    return str(wallet)


@pytest.mark.parametrize("signed_by_owner", [True, False])
def test_an_erc1271_contract_wallet_accepts_its_owners_signature_only(
    market: Market, signer: Signer, signed_by_owner: bool
) -> None:
    owner_key = fresh_key()
    wallet = _smart_wallet(market, owner_key)
    key = owner_key if signed_by_owner else fresh_key()
    buy = signer.order(wallet, sell=False, limit_price=PRICE, max_quantity=10, key=key)
    assert recover_signer(buy.to_wire(), signer.domain) == Account.from_key(key).address
    trade = signed_trade(market, 10, 1_000, buy_order=buy, buyer=wallet)
    status, reason = _settle(market, trade)[trade.trade_id]
    if signed_by_owner:
        assert status is CONFIRMED
        assert market.admin.balances(wallet) == (10, 9_000)
    else:
        assert status is FAILED and reason.startswith("BadSignature")
        assert market.admin.balances(wallet) == (0, 10_000)


def test_a_permit_signed_off_chain_replaces_the_cash_approval(market: Market) -> None:
    chain, dep = market.chain, market.deployment
    buyer = chain.new_account()
    market.admin.register_investor(buyer, 276)
    market.admin.fund_cash(buyer, 5_000)
    cash = chain.our_contract("DemoStablecoin", dep.stablecoin)
    refused = market.trade(1, 100, buyer=buyer)
    assert _settle(market, refused)[refused.trade_id][0] is FAILED  # no allowance yet
    permit = sign_permit(token=dep.stablecoin, token_name=cash.functions.name().call(),
                         chain_id=int(chain.w3.eth.chain_id), owner_key=chain.private_key(buyer),
                         spender=dep.settlement, value=2_000, nonce=cash.functions.nonces(buyer).call(),
                         deadline=now(chain) + 3_600)
    investor(market).submit_permit(dep.stablecoin, permit, sender=market.outsider)  # anyone may relay it
    assert cash.functions.allowance(buyer, dep.settlement).call() == 2_000
    trade = market.trade(1, 100, buyer=buyer)
    assert _settle(market, trade)[trade.trade_id][0] is CONFIRMED
    assert market.admin.balances(buyer) == (1, 4_900)
