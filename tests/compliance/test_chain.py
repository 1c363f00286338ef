"""On-chain ERC-3643 state changes reach the next order check after one poll (one block)."""

from __future__ import annotations

import asyncio
import time

import pytest
from web3 import Web3

from compliance import ChainStateCache, ChainSyncError, ChainWatcher, ReasonCode
from engine import Side
from settlement import SettlementService, SettlementUpdate, TradeToSettle
from tests.compliance.conftest import DE, SYMBOL, Market, participant


def _one_block_later(market: Market, before: int) -> None:
    """The admin action was mined in exactly the next block, and one poll brought the cache there."""
    assert market.block() == before + 1
    market.watcher.poll_once()
    assert market.cache.block == before + 1


def test_initial_sync_accepts_both_sides(market: Market) -> None:
    assert market.sell().ok
    assert market.buy().ok
    assert market.cache.balance(market.deployment.token, market.alice) == 1_000
    assert market.cache.balance(market.deployment.stablecoin, market.bob) == 10**9
    assert market.cache.country(market.deployment.token, market.alice) == DE


def test_freezing_a_wallet_rejects_the_next_order_and_unfreezing_accepts(market: Market) -> None:
    before = market.block()
    market.admin.freeze(market.alice)
    _one_block_later(market, before)
    assert market.sell().code is ReasonCode.WALLET_FROZEN
    assert market.records[-1].code is ReasonCode.WALLET_FROZEN
    before = market.block()
    market.admin.freeze(market.alice, False)
    _one_block_later(market, before)
    assert market.sell().ok


def test_removing_an_identity_rejects_and_registering_again_accepts(market: Market) -> None:
    before = market.block()
    market.admin.remove_investor(market.bob)
    _one_block_later(market, before)
    assert market.buy().code is ReasonCode.IDENTITY_NOT_VERIFIED
    market.admin.register_investor(market.bob, DE)
    market.watcher.poll_once()
    assert market.buy().ok


def test_pausing_the_token_rejects_everyone_and_unpausing_accepts(market: Market) -> None:
    before = market.block()
    market.admin.pause()
    _one_block_later(market, before)
    assert market.sell().code is ReasonCode.TOKEN_PAUSED
    assert market.buy().code is ReasonCode.TOKEN_PAUSED
    market.admin.unpause()
    market.watcher.poll_once()
    assert market.sell().ok and market.buy().ok


def test_country_update_is_seen(market: Market) -> None:
    market.admin.set_country(market.alice, 250)
    market.watcher.poll_once()
    assert market.sell().code is ReasonCode.COUNTRY_MISMATCH


def test_frozen_tokens_reduce_the_free_balance(market: Market) -> None:
    market.admin.freeze_tokens(market.alice, 995)
    market.watcher.poll_once()
    assert market.cache.frozen_tokens(market.deployment.token, market.alice) == 995
    assert market.sell(qty=6).code is ReasonCode.INSUFFICIENT_NOTES
    assert market.sell(qty=5).ok
    market.admin.unfreeze_tokens(market.alice, 995)
    market.watcher.poll_once()
    assert market.sell(qty=900).ok


def test_transfers_update_balances_and_holders(market: Market) -> None:
    token = market.deployment.token
    carol = market.chain.new_account()
    market.admin.register_investor(carol, DE)
    holders = market.cache.holder_count(token)
    contract = market.admin.token
    market.chain.transact(contract.functions.transfer(carol, 400), market.alice)
    market.watcher.poll_once()
    assert market.cache.balance(token, market.alice) == 600
    assert market.cache.balance(token, carol) == 400  # not a participant: balance known from the Transfer
    assert market.cache.holder_count(token) == holders + 1
    assert market.sell(qty=601).code is ReasonCode.INSUFFICIENT_NOTES
    assert market.sell(qty=600).ok
    market.admin.fund_cash(market.bob, 5)
    market.watcher.poll_once()
    assert market.cache.balance(market.deployment.stablecoin, market.bob) == 10**9 + 5


def test_revoking_approval_is_seen(market: Market) -> None:
    market.chain.transact(market.admin.stablecoin.functions.approve(market.deployment.settlement, 1000),
                          market.bob)
    market.watcher.poll_once()
    assert market.cache.allowance(market.deployment.stablecoin, market.bob, market.deployment.settlement) == 1000
    assert market.buy(qty=1, price=10).ok  # 1000 cash units exactly
    assert market.buy(qty=1, price=1).code is ReasonCode.INSUFFICIENT_ALLOWANCE


def test_a_participant_added_later_is_synced_on_the_next_poll(market: Market) -> None:
    dave = market.chain.new_account()
    market.admin.onboard(dave, country=DE, notes=50)
    market.watcher.poll_once()
    market.gk.upsert_participant(participant("dave", dave))
    assert market.order("dave", Side.SELL, qty=50).code is ReasonCode.CHAIN_STATE_UNKNOWN
    market.watcher.poll_once()
    assert market.order("dave", Side.SELL, qty=50).ok


def test_holders_minted_before_the_watcher_started_are_counted(market: Market) -> None:
    fresh = ChainStateCache()
    fresh.track_token(market.deployment.token)
    ChainWatcher(market.chain.w3, fresh, start_block=market.start_block).poll_once()
    assert fresh.holders(market.deployment.token) == {market.alice.lower()}
    no_history = ChainStateCache()
    no_history.track_token(market.deployment.token)
    ChainWatcher(market.chain.w3, no_history).poll_once()
    assert no_history.holder_count(market.deployment.token) == 0  # only tracked wallets without a scan


def test_settled_trade_moves_balances_and_releases_obligations(market: Market) -> None:
    sell, buy = market.sell(qty=10), market.buy(qty=10, price=100)
    assert sell.hold and buy.hold
    from tests.compliance.events import EventMaker

    ev = EventMaker()
    market.gk.on_command(sell.hold.hold_id, [ev.accepted(1, "alice", Side.SELL, 10, 100, symbol=SYMBOL)])
    fill = ev.fill(maker=(1, "alice", 0), taker=(2, "bob", 0), aggressor=Side.BUY, price=100, qty=10, symbol=SYMBOL)
    market.gk.on_command(buy.hold.hold_id, [ev.accepted(2, "bob", Side.BUY, 10, 100, symbol=SYMBOL), fill])
    assert market.gk.check_trade(fill, now_ts=time.time_ns()).ok
    updates: list[SettlementUpdate] = []
    dep = market.deployment
    svc = SettlementService(market.chain, dep.settlement, market.chain.private_key(dep.settler),
                            on_update=updates.append)
    final = svc.settle_batch([TradeToSettle(trade_id=fill.trade_id, token=dep.token, seller=market.alice,
                                            buyer=market.bob, quantity=10, cash_token=dep.stablecoin,
                                            cash_amount=100 * 100 * 10)])
    assert final[-1].status.value == "confirmed" and final[-1].block is not None
    market.gk.on_trade_finished(fill.trade_id, block=final[-1].block)
    assert market.gk.reserved_notes(market.alice, dep.token) == 10  # cache has not seen the block yet
    market.watcher.poll_once()
    assert market.gk.reserved_notes(market.alice, dep.token) == 0
    assert market.cache.balance(dep.token, market.alice) == 990
    assert market.cache.balance(dep.token, market.bob) == 10
    assert market.cache.balance(dep.stablecoin, market.alice) == 100_000
    assert market.sell(qty=990).ok
    market.gk.validate()


def test_trade_check_refuses_a_side_frozen_after_matching(market: Market) -> None:
    from tests.compliance.events import EventMaker

    fill = EventMaker().fill(maker=(1, "alice", 0), taker=(2, "bob", 0), aggressor=Side.BUY, price=100, qty=10,
                             symbol=SYMBOL)
    market.admin.freeze(market.bob)
    market.watcher.poll_once()
    decision = market.gk.check_trade(fill, now_ts=time.time_ns())
    assert decision.code is ReasonCode.WALLET_FROZEN and decision.participant == "bob"


def test_full_resync_repairs_a_corrupted_cache(market: Market) -> None:
    market.cache.set_frozen(market.deployment.token, market.alice, True)  # wrong on purpose
    market.watcher.request_full_resync()
    market.watcher.poll_once()
    assert market.sell().ok
    assert market.watcher.full_syncs == 2


async def test_run_loop_follows_the_chain(market: Market) -> None:
    stop = asyncio.Event()
    market.watcher.poll_interval_s = 0.02
    task = asyncio.create_task(market.watcher.run(stop, in_thread=market.chain.name != "in-process"))
    try:
        market.admin.freeze(market.alice)
        for _ in range(500):
            if market.cache.frozen(market.deployment.token, market.alice):
                break
            await asyncio.sleep(0.01)
        assert market.sell().code is ReasonCode.WALLET_FROZEN
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def test_unreachable_node_raises_chain_sync_error_and_keeps_the_cache() -> None:
    from settlement.chain import free_port

    w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{free_port()}", request_kwargs={"timeout": 2}))
    cache = ChainStateCache()
    watcher = ChainWatcher(w3, cache)
    with pytest.raises(ChainSyncError) as info:
        watcher.poll_once()
    assert info.value.__cause__ is not None
    assert cache.block == -1 and cache.synced_at_ns is None


def test_identity_updated_event_rereads_the_registry(market: Market) -> None:
    token = market.deployment.token
    market.cache.set_verified(market.cache.identity_registry(token) or "", market.alice, False)  # stale on purpose
    assert market.sell().code is ReasonCode.IDENTITY_NOT_VERIFIED
    new_identity = Web3.to_checksum_address("0x" + "ab" * 20)
    market.chain.transact(market.admin.registry.functions.updateIdentity(market.alice, new_identity),
                          market.deployment.admin)
    market.watcher.poll_once()
    assert market.sell().ok


def test_switching_the_identity_registry_is_followed(market: Market) -> None:
    from settlement import artifacts

    admin = market.deployment.admin
    other = market.chain.deploy(artifacts.load("DemoIdentityRegistry"), admin, admin)
    market.chain.transact(other.functions.addAgent(admin), admin)
    market.chain.transact(other.functions.registerIdentity(market.bob, market.bob, DE), admin)
    market.chain.transact(market.admin.token.functions.setIdentityRegistry(other.address), admin)
    market.watcher.poll_once()
    assert market.cache.identity_registry(market.deployment.token) == other.address.lower()
    assert market.sell().code is ReasonCode.IDENTITY_NOT_VERIFIED  # alice is not in the new registry
    assert market.buy().ok


def test_periodic_full_resync(market: Market) -> None:
    now = [0.0]
    cache = ChainStateCache()
    cache.track_token(market.deployment.token)
    cache.track_wallet(market.alice)
    watcher = ChainWatcher(market.chain.w3, cache, resync_interval_s=60, clock=lambda: now[0])
    watcher.poll_once()
    cache.set_balance(market.deployment.token, market.alice, 1)  # drift the cache
    watcher.poll_once()
    assert cache.balance(market.deployment.token, market.alice) == 1 and watcher.full_syncs == 1
    now[0] = 61.0
    watcher.poll_once()
    assert cache.balance(market.deployment.token, market.alice) == 1_000 and watcher.full_syncs == 2


def test_confirmations_delay_what_the_watcher_believes(market: Market) -> None:
    cache = ChainStateCache()
    cache.track_token(market.deployment.token)
    cache.track_wallet(market.alice)
    watcher = ChainWatcher(market.chain.w3, cache, confirmations=1)
    watcher.poll_once()
    market.admin.freeze(market.alice)
    watcher.poll_once()
    assert cache.frozen(market.deployment.token, market.alice) is False  # one block deep: not yet
    market.chain.mine(1)
    watcher.poll_once()
    assert cache.frozen(market.deployment.token, market.alice) is True


def test_a_spender_tracked_later_gets_its_allowances_read(market: Market) -> None:
    other = Web3.to_checksum_address("0x" + "0d" * 20)
    market.chain.transact(market.admin.token.functions.approve(other, 7), market.alice)
    market.cache.track_spender(other)
    assert market.cache.allowance(market.deployment.token, market.alice, other) is None
    market.watcher.poll_once()
    assert market.cache.allowance(market.deployment.token, market.alice, other) == 7
