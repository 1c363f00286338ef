"""Settlement as a durable consumer (``venue.settler``): the leader's ``ExternalSettlement``
publishes settle requests, ``Settler`` settles them on the in-process EVM and publishes every state
back; a settler stopped mid-flow (requests delivered, not acknowledged) and a successor settle every
trade exactly once, and a new leader asking again about a decided trade hears its decision."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from market.codes import code_info
from market.model import SettlementState, SettlementUpdate
from settlement import Chain, SettlementService, TradeToSettle
from settlement.service import ChainOutcomes
from tests.chains import Funded, deploy_and_fund, in_process_evm
from venue.settler import ExternalSettlement, Settler, SettlerError, decode_trade, encode_trade

NOTES, CASH = 1_000, 1_000_000_000


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    yield from in_process_evm()


@pytest.fixture
def funded(chain: Chain) -> Funded:
    return deploy_and_fund(chain, notes=NOTES, cash=CASH, seller_country=756, buyer_country=276)


def _trade(funded: Funded, trade_id: int) -> TradeToSettle:
    return TradeToSettle(trade_id=trade_id, token=funded.deployment.token, seller=funded.seller, buyer=funded.buyer,
                         quantity=trade_id, cash_token=funded.deployment.stablecoin, cash_amount=1_000 * trade_id)


Sink = Callable[[SettlementUpdate], None]


def _maker(chain: Chain, funded: Funded, batch: int) -> Callable[[Sink], SettlementService]:
    def make(on_update: Callable[[SettlementUpdate], None]) -> SettlementService:
        return SettlementService(chain, funded.deployment.settlement, chain.private_key(funded.deployment.settler),
                                 on_update=on_update, max_batch=batch)
    return make


def _leader(chain: Chain, funded: Funded, url: str, heard: list[SettlementUpdate]) -> ExternalSettlement:
    return ExternalSettlement(chain, funded.deployment.settlement, chain.private_key(funded.deployment.settler),
                              on_update=heard.append, journal_url=url)


async def _until(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _cancelled(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` until it ends. On Python 3.11 ``asyncio.wait_for`` (inside nats-py's fetch and
    publish) can swallow a cancellation that races with its inner future (fixed in 3.12), and the
    settler would then go on running."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)
    assert task.cancelled()


async def _stopped(first: asyncio.Task[None], second: asyncio.Task[None] | None, leader: ExternalSettlement,
                   leader_task: asyncio.Task[None]) -> None:
    """A test's teardown: both settlers cancelled until they end, then the leader stopped."""
    await _cancelled(first)
    if second is not None:
        await _cancelled(second)
    leader.stop()
    await leader_task


def _confirmed(heard: list[SettlementUpdate]) -> set[int]:
    return {u.trade_id for u in heard if u.status is SettlementState.CONFIRMED}


def test_a_settle_request_round_trips(funded: Funded) -> None:
    trade = _trade(funded, 7)
    assert decode_trade(encode_trade(trade)) == trade


async def test_every_trade_settles_once_across_a_settler_restart(chain: Chain, funded: Funded, stream_url: str) -> None:
    heard: list[SettlementUpdate] = []
    leader = _leader(chain, funded, stream_url, heard)
    leader_task = leader.start()
    before = funded.admin.balances(funded.seller), funded.admin.balances(funded.buyer)
    first_stop = asyncio.Event()
    first = Settler(stream_url, _maker(chain, funded, 1), ack_wait_s=1.5)  # one trade a transaction: slow
    first_task = asyncio.create_task(first.run(first_stop))
    second: Settler | None = None
    second_task: asyncio.Task[None] | None = None
    try:
        await first.ready.wait()
        for trade_id in range(1, 9):
            leader.submit(_trade(funded, trade_id))
        await _until(lambda: len(_confirmed(heard)) >= 2, "the first settlements")
        await _cancelled(first_task)  # stopped mid-flow: requests delivered to it and not acknowledged come again
        for trade_id in range(9, 13):  # trades keep coming while no settler runs
            leader.submit(_trade(funded, trade_id))
        second = Settler(stream_url, _maker(chain, funded, 4), ack_wait_s=1.5)
        second_task = asyncio.create_task(second.run(asyncio.Event()))
        await _until(lambda: _confirmed(heard) == set(range(1, 13)), "every trade confirmed")
        assert {u.trade_id for u in second.published} & set(range(3, 9)), "requests of the stopped settler came again"
        assert not [u for u in heard if u.status is SettlementState.FAILED]

        contract = leader.contract  # on chain: every trade decided and settled, each once
        assert all(tuple(contract.functions.decision(t).call()) == (True, True) for t in range(1, 13))
        moved = sum(range(1, 13))
        (s_notes, s_cash), (b_notes, b_cash) = before
        assert funded.admin.balances(funded.seller) == (s_notes - moved, s_cash + 1_000 * moved)
        assert funded.admin.balances(funded.buyer) == (b_notes + moved, b_cash - 1_000 * moved)

        # the leader dies, a new one asks again about a trade already decided: the settler answers
        # from the chain (the two never run at once: they share the durable consumer of the states)
        leader.stop()
        await leader_task
        heard_again: list[SettlementUpdate] = []
        new_leader = _leader(chain, funded, stream_url, heard_again)
        new_task = new_leader.start()
        await asyncio.sleep(0.2)  # subscribed to the updates
        assert new_leader.recover([_trade(funded, 3)]) == []
        await _until(lambda: 3 in _confirmed(heard_again), "the decision of trade 3 again")
        new_leader.stop()
        await new_task
        assert funded.admin.balances(funded.seller) == (s_notes - moved, s_cash + 1_000 * moved)
    finally:
        await _stopped(first_task, second_task, leader, leader_task)


async def test_states_published_while_no_leader_listens_reach_the_next_one(
        chain: Chain, funded: Funded, stream_url: str) -> None:
    """The settler's states are stored on ``<STREAM>_SETTLED``: a leader that was not consuming
    (stopped, or its NATS connection down) gets them from its durable consumer's ack floor, without
    asking the settler again; what a previous leader acknowledged is not delivered twice."""
    settler = Settler(stream_url, _maker(chain, funded, 4), ack_wait_s=1.5)
    settler_task = asyncio.create_task(settler.run(asyncio.Event()))
    heard: list[SettlementUpdate] = []
    first = _leader(chain, funded, stream_url, heard)
    first_task = first.start()
    try:
        await settler.ready.wait()
        first.submit(_trade(funded, 1))
        await _until(lambda: _confirmed(heard) == {1}, "trade 1 confirmed")
        first.stop()
        await first_task

        heard_later: list[SettlementUpdate] = []
        second = _leader(chain, funded, stream_url, heard_later)  # connected, not consuming states yet
        for trade_id in (2, 3, 4):
            second.submit(_trade(funded, trade_id))
        await _until(lambda: {u.trade_id for u in settler.published if u.status is SettlementState.CONFIRMED}
                     >= {2, 3, 4}, "the settler's states for 2..4")
        second_task = second.start()  # no recover(): the states come from the stream
        await _until(lambda: _confirmed(heard_later) == {2, 3, 4}, "the states published while no leader listened")
        second.stop()
        await second_task
        assert 1 not in {u.trade_id for u in heard_later}, "acknowledged by the first leader: not delivered again"
    finally:
        if not first_task.done():
            first.stop()
            await first_task
        await _cancelled(settler_task)


class _Counting(SettlementService):
    """Records the block range of every scan of the chain's decision events."""

    def __init__(self, *args: Any, scans: list[tuple[int, int]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._scans = scans

    def outcomes_since(self, from_block: int, **kwargs: Any) -> ChainOutcomes:
        scan = super().outcomes_since(from_block, **kwargs)
        self._scans.append((scan.from_block, scan.to_block))
        return scan


async def test_each_batch_scans_only_new_blocks_and_a_restart_resumes_the_position(
        chain: Chain, funded: Funded, stream_url: str, tmp_path: Path) -> None:
    scans: list[tuple[int, int]] = []

    def make(on_update: Sink) -> SettlementService:
        return _Counting(chain, funded.deployment.settlement, chain.private_key(funded.deployment.settler),
                         on_update=on_update, max_batch=4, scans=scans)

    position = tmp_path / "settler.position.json"
    heard: list[SettlementUpdate] = []
    leader = _leader(chain, funded, stream_url, heard)
    leader_task = leader.start()
    first = Settler(stream_url, make, ack_wait_s=1.5, position_path=position)
    first_task = asyncio.create_task(first.run(asyncio.Event()))
    second_task: asyncio.Task[None] | None = None
    try:
        await first.ready.wait()
        leader.submit(_trade(funded, 1))  # one batch after the other: trade 1 is on chain when 2 comes
        await _until(lambda: 1 in _confirmed(heard), "trade 1 confirmed")
        leader.submit(_trade(funded, 2))
        await _until(lambda: 2 in _confirmed(heard), "trade 2 confirmed")
        assert len(scans) == 2 and scans[0][0] == 0, "no position yet: the first scan reads from the deployment"
        assert scans[1][0] == scans[0][1] + 1, f"the second batch scanned only new blocks: {scans}"
        await _cancelled(first_task)
        last = scans[-1][1]

        second = Settler(stream_url, make, ack_wait_s=1.5, position_path=position)  # restarted, same data dir
        second_task = asyncio.create_task(second.run(asyncio.Event()))
        await second.ready.wait()
        leader.submit(_trade(funded, 3))
        await _until(lambda: 3 in _confirmed(heard), "trade 3 confirmed")
        assert scans[2][0] == last + 1, f"the restarted settler resumed from its persisted position: {scans}"

        # a new leader asks about a trade decided before that position: found from the deployment on
        heard_again: list[SettlementUpdate] = []
        new_leader = _leader(chain, funded, stream_url, heard_again)
        new_task = new_leader.start()
        assert new_leader.recover([_trade(funded, 1)]) == []
        await _until(lambda: 1 in {u.trade_id for u in second.published}, "trade 1's decision again")
        new_leader.stop()
        await new_task
        assert scans[-1][0] == 0, f"a decided trade asked again is looked up from the deployment block: {scans}"
        assert [u.status for u in second.published if u.trade_id == 1] == [SettlementState.CONFIRMED]
    finally:
        await _stopped(first_task, second_task, leader, leader_task)


async def test_a_settler_configured_otherwise_than_the_leader_refuses_to_settle(
        chain: Chain, funded: Funded, stream_url: str) -> None:
    """The leader tracks finality (depth 2), the settler does not: it would call ``CONFIRMED`` the
    last word and never send the ``FINAL`` the leader waits for. It stops with a stable code and
    settles nothing; the request stays for a settler run with the leader's settings."""
    heard: list[SettlementUpdate] = []
    leader = ExternalSettlement(chain, funded.deployment.settlement, chain.private_key(funded.deployment.settler),
                                on_update=heard.append, journal_url=stream_url, finality=2)
    leader_task = leader.start()
    good_task: asyncio.Task[None] | None = None
    try:
        leader.submit(_trade(funded, 1))
        wrong = Settler(stream_url, _maker(chain, funded, 4), ack_wait_s=1.5)
        with pytest.raises(SettlerError) as refused:
            await asyncio.wait_for(wrong.run(asyncio.Event()), 60)
        assert refused.value.code == "SETTLEMENT_SETTINGS_MISMATCH" and code_info(refused.value.code) is not None
        assert wrong.published == []
        assert tuple(leader.contract.functions.decision(1).call()) == (False, False)

        def make(on_update: Sink) -> SettlementService:
            return SettlementService(chain, funded.deployment.settlement, chain.private_key(funded.deployment.settler),
                                     on_update=on_update, max_batch=4, finality=2)

        good = Settler(stream_url, make, ack_wait_s=1.5)
        good_task = asyncio.create_task(good.run(asyncio.Event()))
        await _until(lambda: 1 in _confirmed(heard), "trade 1 settled by a settler with the leader's settings")
    finally:
        if good_task is not None:
            await _cancelled(good_task)
        leader.stop()
        await leader_task
