"""The leader lease (JetStream KV with a TTL), the follower's deterministic replay and the takeover
(``venue.ha``) on a JetStream server of the test's own."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from pathlib import Path

import pytest

from engine import AddInstrument, Engine, NewOrder, Side
from journal import JournalFencedError, Sequencer
from journal.nats import NatsJournal, NatsLoop, parse_url
from tests.ha.cluster import NatsCluster
from tests.journal.commands import SPEC
from venue.config import VenueConfig
from venue.ha import Follower, HAError, Lease, become_leader, hold_lease


def _order(i: int) -> NewOrder:
    return NewOrder(ts=0, participant="p" + str(i % 2), symbol=SPEC.symbol, side=Side.BUY if i % 2 else Side.SELL,
                    qty=1 + i % 3, price=100 + i % 4)


def _state(engine: Engine) -> str:
    return json.dumps(engine.snapshot(), sort_keys=True)


@pytest.fixture
def conn(nats_node: NatsCluster) -> NatsLoop:
    loop = NatsLoop(parse_url(nats_node.url())[0], timeout=5.0)
    yield loop  # type: ignore[misc]
    loop.close()


def test_one_holder_at_a_time_until_the_lease_lapses(conn: NatsLoop) -> None:
    a = Lease(conn, ttl=1.0, holder="a")
    b = Lease(conn, ttl=1.0, holder="b")
    assert a.acquire()
    assert not b.acquire()
    assert b.current() == "a"
    assert a.renew()
    for _ in range(200):  # a stops renewing: the key expires after the TTL
        if b.acquire():
            break
        conn.call(asyncio.sleep(0.05))
    else:
        pytest.fail("the lease never lapsed")
    assert b.current() == "b"
    assert not a.renew()  # the deposed holder learns it lost the lease
    b.release()
    assert b.current() is None


def test_a_lease_that_expired_unclaimed_is_taken_again_on_renewal(conn: NatsLoop) -> None:
    """NATS did not answer for longer than the TTL (a node died): the key expired, nobody took it;
    the holder's renewal is refused on the revision, and it takes the free lease again."""
    a = Lease(conn, ttl=0.6, holder="a2")
    if not a.acquire():
        kv = conn.call(conn.js.key_value("omn_leader"))
        conn.call(kv.purge("leader"))
        assert a.acquire()
    for _ in range(200):
        if a.current() is None:
            break
        conn.call(asyncio.sleep(0.05))
    assert a.current() is None  # expired
    assert a.renew()
    assert a.current() == "a2"
    a.release()


async def test_the_keeper_reports_a_lost_lease(conn: NatsLoop) -> None:
    a = Lease(conn, ttl=0.6, holder="a")
    b = Lease(conn, ttl=0.6, holder="b")
    assert a.acquire()
    lost: list[str] = []
    stop = threading.Event()
    keeper = asyncio.create_task(asyncio.to_thread(hold_lease, a, lambda: True, on_lost=lost.append, stop=stop))
    await asyncio.sleep(1.5)  # renewed every 0.2 s: nobody else gets it
    assert not await asyncio.to_thread(b.acquire)
    # another holder overwrites the key (as after a pause longer than the TTL)
    kv = conn.call(conn.js.key_value("omn_leader"))
    conn.call(kv.put("leader", b"b"))
    await asyncio.wait_for(keeper, 5)
    assert lost and "taken" in lost[0]
    stopped: list[str] = []
    c = Lease(conn, ttl=0.6, holder="c")
    await asyncio.wait_for(asyncio.to_thread(hold_lease, c, lambda: False, on_lost=stopped.append, stop=stop), 5)
    assert stopped and "sequencer stopped" in stopped[0]
    conn.call(kv.purge("leader"))


async def test_the_follower_replays_the_leaders_commands_exactly(stream_url: str, tmp_path: Path) -> None:
    leader_journal = NatsJournal.open(stream_url, tmp_path / "leader")
    follower_journal = NatsJournal.open(stream_url, tmp_path / "follower")
    try:
        seq = Sequencer(Engine(), leader_journal)
        await seq.start()
        await seq.submit(AddInstrument(ts=0, spec=SPEC))
        follower = await asyncio.to_thread(Follower, follower_journal, snapshot_every=10)
        for i in range(25):
            await seq.submit(_order(i))
        assert await asyncio.to_thread(follower.catch_up) == 25
        assert follower.applied_seq == seq.applied_seq == 26
        assert _state(follower.engine) == _state(seq.engine)
        assert list((tmp_path / "follower").glob("snapshot-*.json"))  # kept current
        # the follower takes over: claims the stream; the old leader's next command is refused
        follower_journal.claim()
        with pytest.raises(Exception):  # noqa: B017 - SequencerFailedError caused by the fence
            await seq.submit(_order(99))
        assert isinstance(seq.failure, JournalFencedError)
        new = Sequencer(follower.engine, follower_journal)
        await new.start()
        await new.submit(_order(26))
        assert new.applied_seq == 27
        await new.stop()
        await seq.stop()
    finally:
        leader_journal.close()
        follower_journal.close()


async def test_become_leader_waits_for_the_lease_and_fences(nats_node: NatsCluster, tmp_path: Path) -> None:
    url = nats_node.url("TAKE")
    config = VenueConfig(data_dir=tmp_path / "b", journal_url=url, lease_ttl_s=0.8)
    holder_conn = NatsLoop(parse_url(url)[0], timeout=5.0)
    old = NatsJournal.open(url, tmp_path / "a")
    try:
        lease = Lease(holder_conn, ttl=0.8, holder="old")
        if not lease.acquire():
            kv = holder_conn.call(holder_conn.js.key_value("omn_leader"))
            holder_conn.call(kv.purge("leader"))
            assert lease.acquire()
        old.append_batch([(1, AddInstrument(ts=1, spec=SPEC))])
        with pytest.raises(HAError, match="held by old"):
            await become_leader(config, "leader")
        standby = asyncio.create_task(become_leader(config, "auto"))
        for _ in range(5):  # the old leader keeps renewing: the standby waits
            await asyncio.sleep(0.2)
            assert await asyncio.to_thread(lease.renew)
        assert not standby.done()
        old.append_batch([(2, dataclasses.replace(_order(1), ts=5))])
        takeover = await asyncio.wait_for(standby, 30)  # renewals stop: the lease lapses
        assert takeover is not None
        try:
            assert takeover.journal.last_seq == 2
            assert takeover.engine.order(1) is not None  # the follower applied the old leader's order
            with pytest.raises(JournalFencedError):
                old.append_batch([(3, _order(2))])
        finally:
            takeover.lease.release()
            takeover.lease.close()
            takeover.journal.close()
    finally:
        old.close()
        holder_conn.close()


async def test_roles_need_the_replicated_journal(tmp_path: Path) -> None:
    with pytest.raises(HAError, match="journal_url"):
        await become_leader(VenueConfig(data_dir=tmp_path), "auto")
    with pytest.raises(HAError, match="role must be"):
        await become_leader(VenueConfig(data_dir=tmp_path, journal_url="nats://x:1/S"), "boss")
