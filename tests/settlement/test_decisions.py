"""Issue 12: outcomes decided once and read back from chain events, finality, reorgs, each state
reported once. Runs on the in-process EVM and on anvil."""

from __future__ import annotations

import asyncio

import pytest

from settlement import (
    ChainUnavailableError,
    SettlementService,
    SettlementStatus,
    SettlementUpdate,
    connect,
    default_finality,
)
from tests.settlement.conftest import BUYER_CASH, SELLER_NOTES, Market

PENDING, SUBMITTED = SettlementStatus.PENDING, SettlementStatus.SUBMITTED
CONFIRMED, FAILED, FINAL = SettlementStatus.CONFIRMED, SettlementStatus.FAILED, SettlementStatus.FINAL


def _states(updates: list[SettlementUpdate], trade_id: int) -> list[SettlementStatus]:
    return [u.status for u in updates if u.trade_id == trade_id]


def _head(market: Market) -> int:
    return int(market.chain.w3.eth.block_number)


def test_recovery_resolves_unfinished_trades_from_chain_events(market: Market) -> None:
    start = _head(market) + 1
    settled, failing, untouched = market.trade(10, 1_000), market.trade(SELLER_NOTES + 1, 1), market.trade(1, 10)
    market.service().settle_batch([settled, failing])
    updates: list[SettlementUpdate] = []
    restarted = SettlementService(
        market.chain, market.deployment.settlement, market.chain.private_key(market.deployment.settler),
        on_update=updates.append,
    )
    scan = restarted.outcomes_since(start, chunk_size=1)  # one block per eth_getLogs
    assert set(scan.outcomes) == {settled.trade_id, failing.trade_id}
    assert scan.outcomes[settled.trade_id].status is CONFIRMED
    assert scan.outcomes[failing.trade_id].status is FAILED
    assert (scan.outcomes[failing.trade_id].reason or "").startswith("delivery leg (token) failed")
    assert scan.from_block == start and scan.to_block == scan.final_block == _head(market)
    assert restarted.outcomes_since(start, trade_ids=[failing.trade_id]).outcomes.keys() == {failing.trade_id}

    decided = restarted.recover([settled, failing, untouched], from_block=start)
    assert {u.trade_id: u.status for u in decided} == {settled.trade_id: CONFIRMED, failing.trade_id: FAILED}
    assert updates == decided  # the undecided trade is queued again without a second PENDING notice
    assert restarted.pending == 1
    assert restarted.final_through == _head(market)
    # resubmitting everything is harmless: decided ids keep their outcome and move nothing
    again = {u.trade_id: u for u in restarted.settle_batch([settled, failing, untouched])}
    assert again[settled.trade_id].status is CONFIRMED and again[failing.trade_id].status is FAILED
    assert again[failing.trade_id].reason == f"already failed on chain in block {decided[1].block}"
    assert again[untouched.trade_id].status is CONFIRMED
    assert market.admin.balances(market.buyer) == (11, BUYER_CASH - 1_010)


def test_outcome_seen_only_as_already_decided_keeps_its_original_reason(market: Market) -> None:
    trade = market.trade(10, 1_000)
    service = market.service()
    market.admin.freeze(market.seller)
    [failed] = service.settle_batch([trade])
    market.admin.freeze(market.seller, False)
    later = _head(market) + 1
    [again] = service.settle_batch([trade])  # only a TradeAlreadyDecided log from `later` on
    assert again.status is FAILED
    scan = market.service().outcomes_since(later)
    found = scan.outcomes[trade.trade_id]
    assert (found.status, found.block, found.tx_hash) == (FAILED, failed.block, failed.tx_hash)
    assert found.reason == f"delivery leg (token) failed: WalletFrozen(wallet={market.seller})"


def test_confirmed_then_final_and_a_failure_is_reported_once_final(market: Market) -> None:
    service = market.service(finality=3)
    good, bad = market.trade(1, 10), market.trade(SELLER_NOTES + 1, 1)
    result = {u.trade_id: u.status for u in service.settle_batch([good, bad])}
    assert result == {good.trade_id: CONFIRMED, bad.trade_id: FAILED}
    assert _states(market.updates, good.trade_id) == [SUBMITTED, CONFIRMED]
    assert _states(market.updates, bad.trade_id) == [SUBMITTED]  # not final: nobody is told "failed" yet
    assert service.awaiting_finality == 2
    market.chain.mine(2)
    assert service.check_finality() == []
    market.chain.mine(1)
    reported = service.check_finality()
    assert {(u.trade_id, u.status) for u in reported} == {(good.trade_id, FINAL), (bad.trade_id, FAILED)}
    assert _states(market.updates, good.trade_id) == [SUBMITTED, CONFIRMED, FINAL]
    assert _states(market.updates, bad.trade_id) == [SUBMITTED, FAILED]
    assert service.awaiting_finality == 0 and service.final_through == _head(market) - 3
    assert service.check_finality() == []


async def test_reorg_that_drops_a_settlement_puts_the_trade_back_in_the_queue(market: Market) -> None:
    service = market.service(finality=4, finality_poll=0.02)
    trade = market.trade(10, 1_000)
    before_settlement = market.chain.snapshot()
    [first] = service.settle_batch([trade])
    assert first.status is CONFIRMED
    market.chain.revert_to(before_settlement)  # the block holding the settlement leaves the chain
    market.chain.mine(2)
    assert market.admin.settlement.functions.decision(trade.trade_id).call()[0] is False
    [requeued] = service.check_finality()
    assert (requeued.trade_id, requeued.status) == (trade.trade_id, PENDING)
    assert service.pending == 1 and service.awaiting_finality == 0
    task = service.start()
    try:
        await service.drain(timeout=60)
        market.chain.mine(4)
        await service.drain(timeout=60, final=True)
    finally:
        service.stop()
        await asyncio.wait_for(task, 10)
    assert _states(market.updates, trade.trade_id) == [SUBMITTED, CONFIRMED, PENDING, SUBMITTED, CONFIRMED, FINAL]
    final = market.updates[-1]
    # settled by our resubmission (the same signed bytes if nonce and fees came out equal), not "already"
    assert final.reason is None and final.block is not None and final.block > (first.block or 0)
    assert market.admin.balances(market.buyer) == (10, BUYER_CASH - 1_000)


async def test_a_retried_batch_reports_each_state_once(market: Market, monkeypatch: pytest.MonkeyPatch) -> None:
    """The node fails after the broadcast: the batch is retried (the contract answers "already
    decided"), and the trade's owner still sees pending, submitted, confirmed once each."""
    service = market.service(retry_delay=0.01)
    real_receipt = service._receipt
    hiccups = [ChainUnavailableError("node hiccup")]

    def flaky_receipt(tx_hash: bytes) -> object:
        if hiccups:
            raise hiccups.pop()
        return real_receipt(tx_hash)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "_receipt", flaky_receipt)
    trade = market.trade(1, 10)
    service.submit(trade)
    task = service.start()
    try:
        await service.drain(timeout=60)
    finally:
        service.stop()
        await asyncio.wait_for(task, 10)
    assert not hiccups
    assert _states(market.updates, trade.trade_id) == [PENDING, SUBMITTED, CONFIRMED]
    assert market.admin.balances(market.buyer) == (1, BUYER_CASH - 10)


def test_finality_defaults_to_the_finalized_tag_on_a_real_chain(market: Market) -> None:
    assert default_finality(market.chain, dev_depth=5) == 5  # a chain we started ourselves
    url = getattr(market.chain.w3.provider, "endpoint_uri", None)
    if url is not None:  # the same node reached by URL counts as a real chain
        assert default_finality(connect(url)) == "finalized"
    service = market.service(finality="finalized")
    market.chain.mine(3)
    assert service.final_block() == market.chain.w3.eth.get_block("finalized")["number"]
    assert service.final_block() <= market.chain.w3.eth.block_number
