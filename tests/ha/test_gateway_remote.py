"""``RemoteVenue`` (the gateway process's port) against ``LeaderResponder`` (the leader's side) on
one NATS server of our own, with a counting stand-in for the leader's core: a command retried
under one request id runs once; a command sent while nobody leads is answered once a leader
subscribes; with no leader at all the gateway answers ``LEADER_UNAVAILABLE``; events arrive in
order on the gateway's loop, and a gap is noticed."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from engine import NewOrder, OrderCancelled, OrderType, OrderView, Side, TimeInForce
from engine.codes import CancelReason
from market import wire
from market.codes import Unavailable
from market.history import OrderRecord
from market.model import ApiKey, OrderAck, OrderStatus, Outcome, Rejection, Role, SettlementNotice, SettlementState
from tests.ha.cluster import NatsCluster
from venue.gatewayproc import RemoteVenue, close_revoked_sessions
from venue.remote import LeaderResponder, recorded_ack, resting_ack, subjects

_names = itertools.count(1)


class Core:
    """The calls a gateway forwards, counted; ``submit`` waits for ``release``."""

    def __init__(self) -> None:
        self.submits: list[NewOrder] = []
        self.release = asyncio.Event()
        self.release.set()
        self.events: list[Callable[[Any], None]] = []
        self.notices: list[Callable[[SettlementNotice], None]] = []
        self.stream_seq = 0  # the journal position the events being fanned out come from

    async def submit(self, participant: str, cmd: NewOrder) -> Outcome:
        self.submits.append(cmd)
        await self.release.wait()
        return Outcome(rejection=Rejection(code="TEST", message=f"#{len(self.submits)}"))

    listed: list[Any] = []

    def listings(self) -> list[Any]:
        return self.listed

    def open_orders(self, participant: str, symbol: str | None = None) -> list[Any]:
        return []

    def subscribe_events(self, listener: Callable[[Any], None]) -> Callable[[], None]:
        self.events.append(listener)
        return lambda: None

    def subscribe_settlements(self, listener: Callable[[SettlementNotice], None]) -> Callable[[], None]:
        self.notices.append(listener)
        return lambda: None


def _order(coid: str) -> NewOrder:
    return NewOrder(ts=0, participant="p", symbol="S", side=Side.BUY, qty=1, price=10, client_order_id=coid)


def _cancelled(seq: int) -> OrderCancelled:
    return OrderCancelled(seq=seq, ts=0, order_id=seq, participant="p", symbol="S", side=Side.BUY, remaining=1,
                          reason=CancelReason.USER)


@pytest.fixture
def stream(nats_node: NatsCluster) -> Iterator[tuple[list[str], str]]:
    yield [n.url for n in nats_node.nodes], f"GW{next(_names)}"


async def test_a_request_retried_under_its_id_runs_once(stream: tuple[list[str], str]) -> None:
    servers, name = stream
    core = Core()
    leader = LeaderResponder(core, servers, name)
    await leader.start()
    try:
        assert leader.nc is not None
        core.release.clear()
        payload = wire.dumps({"op": "submit", "args": ["p", _order("c-1")], "kw": {}, "id": "gw-1"})
        first = asyncio.ensure_future(leader.nc.request(subjects(name)[0], payload, timeout=10))
        for _ in range(200):
            if core.submits:
                break
            await asyncio.sleep(0.01)
        second = asyncio.ensure_future(leader.nc.request(subjects(name)[0], payload, timeout=10))  # while running
        await asyncio.sleep(0.05)
        core.release.set()
        third = await leader.nc.request(subjects(name)[0], payload, timeout=10)  # after it answered
        answers = [wire.loads(m.data) for m in (await first, await second, third)]
        assert len(core.submits) == 1
        assert answers[0] == answers[1] == answers[2] == {"ok": Outcome(rejection=Rejection(code="TEST", message="#1")),
                                                          "pos": 0}
        bad = wire.loads((await leader.nc.request(subjects(name)[0], b'{"op": "os.system"}', timeout=10)).data)
        assert bad["err"] == "REMOTE_BAD_REQUEST"
    finally:
        await leader.stop()


async def test_the_gateway_waits_for_a_leader_and_gives_up_with_a_code(stream: tuple[list[str], str]) -> None:
    servers, name = stream
    remote = await asyncio.to_thread(RemoteVenue, servers, name, forward_timeout_s=0.5, read_timeout_s=0.5)
    try:
        await remote.start()
        with pytest.raises(Unavailable) as nobody:
            await remote.submit("p", _order("c-0"))
        assert nobody.value.code == "LEADER_UNAVAILABLE"
        deposed_core = Core()
        deposed = LeaderResponder(deposed_core, servers, name, alive=lambda: False)  # fenced, still subscribed
        await deposed.start()
        try:
            with pytest.raises(Unavailable):
                await remote.submit("p", _order("c-0"))
            assert deposed_core.submits == []  # it neither ran nor answered the command
        finally:
            await deposed.stop()
        with pytest.raises(Unavailable):
            remote.open_orders("p")
        remote.forward_timeout_s = 30.0
        core = Core()
        pending = asyncio.ensure_future(remote.submit("p", _order("c-1")))  # in flight: nobody leads yet
        await asyncio.sleep(0.3)
        assert not pending.done()
        leader = LeaderResponder(core, servers, name)
        await leader.start()
        try:
            outcome = await asyncio.wait_for(pending, 30)
            assert outcome == Outcome(rejection=Rejection(code="TEST", message="#1"))
            assert [c.client_order_id for c in core.submits] == ["c-1"]

            seen: list[Any] = []
            positions: list[tuple[int, int]] = []
            notices: list[SettlementNotice] = []
            remote.subscribe_events(seen.append)
            remote.subscribe_events(lambda e: positions.append((e.seq, remote.stream_seq)))
            remote.subscribe_settlements(notices.append)
            core.stream_seq = 7
            core.events[0](_cancelled(1))
            core.stream_seq = 8  # a batch of two journal messages: each event keeps its own position
            core.events[0](_cancelled(2))
            await asyncio.sleep(0)  # one batch
            core.stream_seq = 11
            core.events[0](_cancelled(5))  # 3 and 4 never published (a leader died in between)
            for _ in range(500):
                if len(seen) == 3:
                    break
                await asyncio.sleep(0.01)
            assert [e.seq for e in seen] == [1, 2, 5] and remote.gaps == 1
            assert seen[0] == _cancelled(1)
            assert positions == [(1, 7), (2, 8), (5, 11)]
            notice = SettlementNotice(trade_id=3, symbol="S", buyer="a", seller="b", state=SettlementState.FINAL)
            core.notices[0](notice)
            for _ in range(500):
                if notices:
                    break
                await asyncio.sleep(0.01)
            assert notices == [notice]
        finally:
            await leader.stop()
    finally:
        await asyncio.to_thread(remote.close)


def test_an_ack_found_finished_is_the_orders() -> None:
    record = OrderRecord(order_id=4, client_order_id="c", participant="p", symbol="S", side=Side.BUY,
                         order_type=OrderType.LIMIT, tif=TimeInForce.IOC, price=10, qty=5, filled=2, remaining=0,
                         state=OrderStatus.EXPIRED, reason="expired", expire_ts=None, accepted_ts=7, updated_ts=8)
    outcome = recorded_ack(record)
    assert outcome.result is not None and outcome.result.order_id == 4
    assert outcome.ack == OrderAck(order_id=4, client_order_id="c", symbol="S", side=Side.BUY,
                                   status=OrderStatus.CANCELLED, price=10, qty=5, filled=2, remaining=0, ts=7)


def test_an_ack_found_resting_is_the_orders() -> None:
    view = OrderView(order_id=9, client_order_id="c", participant="p", session="", symbol="S", side=Side.SELL,
                     price=10, qty=5, remaining=3, tif=TimeInForce.GTC, expire_ts=None, accepted_ts=7)
    outcome = resting_ack(view)
    assert outcome.rejection is None and outcome.result is not None and outcome.result.order_id == 9
    assert outcome.ack == OrderAck(order_id=9, client_order_id="c", symbol="S", side=Side.SELL,
                                   status=OrderStatus.PARTIALLY_FILLED, price=10, qty=5, filled=2, remaining=3, ts=7)


async def test_stale_listings_are_served_from_the_cache_and_refreshed_in_the_background(
        stream: tuple[list[str], str]) -> None:
    servers, name = stream
    core = Core()
    core.listed = ["first"]
    leader = LeaderResponder(core, servers, name)
    await leader.start()
    remote = await asyncio.to_thread(RemoteVenue, servers, name, cache_s=0.0)
    try:  # read from a thread: the leader answers on this loop
        assert await asyncio.to_thread(remote.listings) == ["first"]  # nothing cached: read
        core.listed = ["second"]
        assert await asyncio.to_thread(remote.listings) == ["first"]  # stale: the cache answers, a refresh starts
        for _ in range(500):
            if await asyncio.to_thread(remote.listings) == ["second"]:
                break
            await asyncio.sleep(0.01)
        assert await asyncio.to_thread(remote.listings) == ["second"]
        await leader.stop()  # no leader: the cache still answers
        assert await asyncio.to_thread(remote.listings) == ["second"]
    finally:
        await asyncio.to_thread(remote.close)


class _Reference:
    def __init__(self) -> None:
        self.leader_closed: list[str] = []
        self.on_keys_revoked: Callable[[list[ApiKey]], object] | None = (
            lambda keys: self.leader_closed.extend(k.key_id for k in keys))


class _Session:
    """A logged-in websocket session as ``gateway.sessions`` sees it."""

    def __init__(self, key: ApiKey) -> None:
        self.id, self.key = f"ws-{key.key_id}", key
        self.ended: tuple[int, str] | None = None

    def end(self, code: int, reason: str) -> None:
        self.ended = (code, reason)


async def test_a_revoked_keys_sessions_on_a_gateway_are_closed(stream: tuple[list[str], str]) -> None:
    """Before: a gateway never heard of a revocation, so its sessions of the key stayed open."""
    servers, name = stream
    core = Core()
    core.reference = _Reference()  # type: ignore[attr-defined]
    leader = LeaderResponder(core, servers, name)
    await leader.start()
    remote = await asyncio.to_thread(RemoteVenue, servers, name)
    try:
        await remote.start()
        keys = [ApiKey(key_id=k, participant="p", role=Role.TRADER, public_key=b"\0" * 32) for k in ("k1", "k2")]
        sessions = [_Session(k) for k in keys]
        state = SimpleNamespace(sessions=set(sessions))  # the part of GatewayState sessions live in
        close_revoked_sessions(remote, state)  # type: ignore[arg-type]
        core.reference.on_keys_revoked([keys[0]])  # type: ignore[attr-defined]  # the leader's reference refresh
        for _ in range(500):
            if sessions[0].ended is not None:
                break
            await asyncio.sleep(0.01)
        assert sessions[0].ended == (4010, "KEY_REVOKED")
        assert sessions[1].ended is None  # another key's session stays
        assert core.reference.leader_closed == ["k1"]  # type: ignore[attr-defined]  # the leader's own, still
    finally:
        await asyncio.to_thread(remote.close)
        await leader.stop()
