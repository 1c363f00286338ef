"""Item 6 (detection): the watcher reports typed eligibility-loss events for freezes, identity removal,
claim revocation and token pause, on the in-process EVM and on anvil; and its lag (item 5) grows
during an RPC outage."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from web3 import Web3
from web3.middleware import Web3Middleware
from web3.types import MakeRequestFn, RPCEndpoint, RPCResponse

from compliance import ChainStateCache, ChainSyncError, ChainWatcher
from compliance.eligibility import EligibilityLoss, EligibilityLost
from tests.compliance.kyc_venue import DE, kyc_venue
from tests.trex_kyc import KycTrex

L = EligibilityLoss


def test_freeze_identity_removal_claim_revocation_and_pause_are_reported_once(kyc_trex: KycTrex) -> None:
    venue = kyc_venue(kyc_trex, {"alice": DE, "bob": DE, "carol": DE})
    alice, bob, carol = (venue.wallets[n] for n in ("alice", "bob", "carol"))
    assert venue.lost() == set()
    kyc_trex.suite.freeze(alice)
    venue.watcher.poll_once()
    assert venue.lost() == {("alice", L.WALLET_FROZEN)}
    kyc_trex.suite.freeze(alice, False)
    venue.watcher.poll_once()
    assert venue.lost() == set()
    kyc_trex.chain.transact(kyc_trex.suite.identity_registry.functions.deleteIdentity(bob), kyc_trex.owner)
    kyc_trex.revoke(carol)
    venue.watcher.poll_once()
    events = list(venue.events)
    assert venue.lost() == {("bob", L.IDENTITY_REMOVED), ("carol", L.CLAIM_REVOKED)}
    assert {e.block for e in events} == {venue.watcher.last_head}
    kyc_trex.chain.transact(kyc_trex.token.functions.pause(), kyc_trex.owner)
    venue.watcher.poll_once()
    assert venue.lost() == {("alice", L.TOKEN_PAUSED), ("bob", L.TOKEN_PAUSED), ("carol", L.TOKEN_PAUSED)}
    venue.watcher.poll_once()
    assert venue.lost() == set()
    assert venue.watcher.eligibility_events == 6


def test_state_lost_before_the_first_poll_is_reported_on_it(kyc_trex: KycTrex) -> None:
    """After a restart, a wallet frozen while the venue was down must still have its orders cancelled."""
    venue = kyc_venue(kyc_trex, {"alice": DE, "bob": DE})
    kyc_trex.suite.freeze(venue.wallets["alice"])
    fresh: list[EligibilityLost] = []
    cache = ChainStateCache()
    cache.track_token(kyc_trex.token.address)
    for wallet in venue.wallets.values():
        cache.track_wallet(wallet)
    ChainWatcher(kyc_trex.chain.w3, cache, on_eligibility_lost=fresh.append).poll_once()
    assert [(e.wallet, e.reason) for e in fresh] == [(venue.wallets["alice"].lower(), L.WALLET_FROZEN)]


def test_a_failing_listener_does_not_stop_the_others_or_the_watcher(kyc_trex: KycTrex) -> None:
    venue = kyc_venue(kyc_trex, {"alice": DE})

    def boom(event: EligibilityLost) -> None:
        raise RuntimeError("listener bug")

    venue.watcher._listeners.insert(0, boom)
    kyc_trex.suite.freeze(venue.wallets["alice"])
    venue.watcher.poll_once()
    assert venue.lost() == {("alice", L.WALLET_FROZEN)}
    assert venue.cache.frozen(kyc_trex.token.address, venue.wallets["alice"]) is True


class Outage:
    """A separate ``Web3`` on the same node whose requests fail like a dead node while ``down`` (or,
    with ``only_block_number``, fail everything but ``eth_blockNumber``)."""

    def __init__(self, w3: Web3) -> None:
        self.down = False
        self.only_block_number = False
        outage = self

        class _Middleware(Web3Middleware):
            def wrap_make_request(self, make_request: MakeRequestFn) -> MakeRequestFn:
                def request(method: RPCEndpoint, params: Any) -> RPCResponse:
                    if outage.down:
                        raise ConnectionRefusedError("connection refused (test outage)")
                    if outage.only_block_number and method != "eth_blockNumber":
                        raise ConnectionResetError("connection reset (test outage)")
                    return make_request(method, params)

                return request

        self.w3 = Web3(w3.provider)
        self.w3.middleware_onion.add(_Middleware, "outage")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rpc_outage_makes_the_lag_grow(kyc_trex: KycTrex) -> None:
    chain = kyc_trex.chain
    provider = Outage(chain.w3)
    clock = Clock()
    cache = ChainStateCache()
    cache.track_token(kyc_trex.token.address)
    watcher = ChainWatcher(provider.w3, cache, clock=clock)
    assert watcher.lag.synced is False and watcher.lag.blocks is None
    clock.now += 3
    assert watcher.lag.seconds == 3 and watcher.is_stale(2)  # never synced: stale from the start
    watcher.poll_once()
    after = watcher.lag
    assert (after.seconds, after.blocks, after.synced) == (0, 0, True)
    assert not watcher.is_stale(2, max_blocks=0)

    provider.down = True
    for _ in range(3):
        clock.now += 1.5
        with pytest.raises(ChainSyncError):
            watcher.poll_once()
    assert watcher.lag.seconds == pytest.approx(4.5)
    assert watcher.is_stale(2) and not watcher.is_stale(5)

    provider.down = False
    chain.mine(3)
    watcher.poll_once()
    assert watcher.lag.seconds == 0 and watcher.lag.blocks == 0 and not watcher.is_stale(2, max_blocks=0)


def test_lag_in_blocks_counts_a_head_seen_but_not_applied(kyc_trex: KycTrex) -> None:
    """The node answers ``eth_blockNumber`` but fails the reads: blocks behind grow with the chain."""
    chain = kyc_trex.chain
    provider = Outage(chain.w3)
    cache = ChainStateCache()
    cache.track_token(kyc_trex.token.address)
    cache.track_wallet(chain.accounts[0])
    watcher = ChainWatcher(provider.w3, cache, resync_interval_s=1e-9)  # every poll reads every fact
    watcher.poll_once()
    applied = watcher.last_head
    provider.only_block_number = True
    chain.mine(4)
    with pytest.raises(ChainSyncError):
        watcher.poll_once()
    assert watcher.last_head == applied
    assert watcher.lag.blocks is not None and watcher.lag.blocks >= 4
    assert watcher.is_stale(3600, max_blocks=3)


async def _until(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def test_running_watcher_streams_events_and_reports_lag_through_an_outage(kyc_trex: KycTrex) -> None:
    """``run()`` as the venue uses it: events arrive on the loop; during an outage the loop keeps going,
    ``last_error`` is set and the lag grows past the limit; after it the watcher catches up."""
    venue = kyc_venue(kyc_trex, {"alice": DE, "bob": DE})
    outage = Outage(kyc_trex.chain.w3)
    events: list[EligibilityLost] = []
    watcher = ChainWatcher(outage.w3, venue.cache, poll_interval_s=0.05, on_eligibility_lost=events.append)
    alice, bob = venue.wallets["alice"].lower(), venue.wallets["bob"].lower()

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(watcher.run(stop))
        try:
            await _until(lambda: watcher.lag.synced)
            kyc_trex.suite.freeze(venue.wallets["alice"])
            await _until(lambda: bool(events))
            assert [(e.wallet, e.reason) for e in events] == [(alice, L.WALLET_FROZEN)]
            outage.down = True
            await _until(lambda: watcher.last_error is not None and watcher.is_stale(0.3))
            kyc_trex.revoke(venue.wallets["bob"])  # happens during the outage
            assert not any(e.wallet == bob for e in events)
            outage.down = False
            await _until(lambda: any(e.wallet == bob for e in events))
            assert events[-1].reason is L.CLAIM_REVOKED and not watcher.is_stale(5)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)

    asyncio.run(scenario())
