"""Cash holds across shards (``venue.funding``): two gates (two shards), one wallet, one cash token,
one shared funding bucket on our own nats-server. Without the bucket each shard sees the whole
balance and the two together over-commit it (``test_per_shard_ledgers_alone_over_commit``)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance import Gatekeeper, ReasonCode
from engine import Side
from journal.nats import NatsLoop
from tests.compliance.events import EventMaker
from tests.compliance.world import BUYER_WALLET, CASH, NOW, SELLER_WALLET, SYMBOL, World
from tests.ha.cluster import NatsCluster
from venue.funding import FundingPool, FundingUnavailable

_buckets = itertools.count(1)
PRICE, TICK = 100, 7
UNIT = PRICE * TICK  # the cash one lot at PRICE needs


@pytest.fixture(scope="module")
def conn(nats_node: NatsCluster) -> Iterator[NatsLoop]:
    loop = NatsLoop([f"nats://{nats_node.servers}"], timeout=2.0)
    yield loop
    loop.close()


def _shards(conn: NatsLoop, cash: int, *, shared: bool = True) -> tuple[list[Gatekeeper], FundingPool]:
    """Two gates whose chain view gives the buyer ``cash`` (balance and allowance)."""
    bucket = f"omn_funding_T{next(_buckets)}"
    gates = []
    for name in ("a", "b"):
        gk, _ = World(lot=1, tick=TICK, qty=1, price=PRICE, buyer_cash=cash, buyer_allowance=cash).build()
        if shared:
            gk.share_cash(FundingPool(conn, bucket, name, view_block=_view_of(gk)))
        gates.append(gk)
    return gates, FundingPool(conn, bucket, "observer")


def _view_of(gk: Gatekeeper) -> Callable[[], int]:
    return lambda: gk.cache.block


def _buy(gk: Gatekeeper, qty: int, seq: int) -> ReasonCode | None:
    d = gk.check_new_order(participant="buyer", symbol=SYMBOL, side=Side.BUY, qty=qty, price=PRICE, now_ts=NOW,
                           seq=seq)
    return None if d.ok else d.code


def test_second_buy_on_the_other_shard_is_refused_until_the_first_is_cancelled(conn: NatsLoop) -> None:
    (a, b), pool = _shards(conn, 10 * UNIT)
    ev = EventMaker()
    assert _buy(a, 10, seq=1) is None
    a.on_command(1, [ev.accepted(1, "buyer", Side.BUY, 10, PRICE)])
    assert pool.holds(BUYER_WALLET, CASH) == {"a": 10 * UNIT}
    assert _buy(b, 10, seq=1) is ReasonCode.INSUFFICIENT_CASH  # shard b alone would see 10 * UNIT free
    assert _buy(b, 1, seq=2) is ReasonCode.INSUFFICIENT_CASH
    a.on_command(2, [ev.cancelled(1, "buyer", Side.BUY, 10)])  # released on shard a, published
    assert pool.holds(BUYER_WALLET, CASH) == {"a": 0}
    assert _buy(b, 10, seq=3) is None
    assert pool.holds(BUYER_WALLET, CASH) == {"a": 0, "b": 10 * UNIT}


def test_a_settled_release_counts_until_the_readers_chain_view_has_its_block(conn: NatsLoop) -> None:
    """Shard a's buyer trade settles in block 11; shard b's watcher is still at block 10, where the
    wallet still holds the cash: b must not spend it again."""
    (a, b), pool = _shards(conn, 10 * UNIT)  # both chain views at block 10
    ev = EventMaker()
    assert _buy(a, 10, seq=1) is None
    a.on_command(1, [ev.accepted(1, "buyer", Side.BUY, 10, PRICE)])
    a.on_command(2, [ev.fill(maker=(1, "buyer", 0), taker=(2, "seller", 0), aggressor=Side.SELL, price=PRICE,
                             qty=10)])
    assert pool.holds(BUYER_WALLET, CASH) == {"a": 10 * UNIT}  # the order's hold became the trade's obligation
    a.cache.set_balance(CASH, BUYER_WALLET, 0)  # shard a's view of block 11: the cash has left
    a.cache.mark_synced(11, NOW)
    a.on_settled(ev.trade_id, block=11)
    assert a.reserved_cash(BUYER_WALLET, CASH) == 0
    assert pool.holds(BUYER_WALLET, CASH) == {"a": 0}
    assert _buy(b, 10, seq=1) is ReasonCode.INSUFFICIENT_CASH  # b, at block 10, still sees the old balance
    b.cache.set_balance(CASH, BUYER_WALLET, 10 * UNIT)  # by block 12 the wallet was funded again
    b.cache.mark_synced(12, NOW)
    assert _buy(b, 10, seq=2) is None


def test_per_shard_ledgers_alone_over_commit(conn: NatsLoop) -> None:
    """The failure the bucket prevents: each shard accepts a buy the balance covers only once."""
    (a, b), _ = _shards(conn, 10 * UNIT, shared=False)
    assert _buy(a, 10, seq=1) is None
    assert _buy(b, 10, seq=1) is None
    held = a.reserved_cash(BUYER_WALLET, CASH) + b.reserved_cash(BUYER_WALLET, CASH)
    assert held == 20 * UNIT > 10 * UNIT


def test_recovery_rederives_the_shards_own_entry(conn: NatsLoop) -> None:
    (a, b), pool = _shards(conn, 10 * UNIT)
    FundingPool(conn, pool.bucket, "a").rederive({})  # the first start: an empty bucket
    assert _buy(a, 6, seq=1) is None
    # shard a restarts with only 2 lots still held (the rest filled and settled meanwhile)
    fresh = FundingPool(conn, pool.bucket, "a")
    fresh.rederive({(BUYER_WALLET, CASH): 2 * UNIT})
    assert pool.holds(BUYER_WALLET, CASH) == {"a": 2 * UNIT}
    assert _buy(b, 8, seq=1) is None
    assert _buy(b, 1, seq=2) is ReasonCode.INSUFFICIENT_CASH
    fresh.rederive({})  # nothing held any more: its entry is zeroed
    assert pool.holds(BUYER_WALLET, CASH) == {"a": 0, "b": 8 * UNIT}


def test_a_deposed_leader_of_a_shard_cannot_overwrite_its_successor(conn: NatsLoop) -> None:
    """Shard a's old leader (claimed at stream sequence 5) resumes after a new one (claimed at 9)
    re-derived the shard's entries: its writes change nothing; the new leader's always land."""
    bucket = f"omn_funding_T{next(_buckets)}"
    old = FundingPool(conn, bucket, "a", epoch=5)
    assert old.reserve(BUYER_WALLET, CASH, 4 * UNIT, 10 * UNIT) is None
    new = FundingPool(conn, bucket, "a", epoch=9)
    new.rederive({(BUYER_WALLET, CASH): 6 * UNIT})
    old.publish(BUYER_WALLET, CASH, 0)  # a release the old leader still had in hand: not written
    with pytest.raises(FundingUnavailable):
        old.reserve(BUYER_WALLET, CASH, 1 * UNIT, 10 * UNIT)
    assert old.holds(BUYER_WALLET, CASH) == {"a": 6 * UNIT}
    stale = FundingPool(conn, bucket, "a", epoch=5)  # an entry the old leader wrote last, for another wallet
    assert stale.reserve(SELLER_WALLET, CASH, 2 * UNIT, 10 * UNIT) is None
    new.publish(SELLER_WALLET, CASH, 0)  # the new leader's view replaces it
    assert new.holds(SELLER_WALLET, CASH) == {"a": 0}


def test_concurrent_reservations_never_exceed_the_limit(conn: NatsLoop, nats_node: NatsCluster) -> None:
    """Two shards (each its own NATS connection) race 1-unit reservations against a limit of 50:
    compare-and-set lets exactly 50 through in all, and the bucket shows what each was granted."""
    bucket = f"omn_funding_T{next(_buckets)}"
    granted = {"a": 0, "b": 0}
    ready = threading.Barrier(2)

    def run(name: str) -> None:
        loop = NatsLoop([f"nats://{nats_node.servers}"], timeout=2.0)
        try:
            pool = FundingPool(loop, bucket, name)
            pool.holds(BUYER_WALLET, CASH)  # the bucket is open before the race starts
            ready.wait(timeout=30)
            for _ in range(40):
                if pool.reserve(BUYER_WALLET, CASH, granted[name] + 1, 50) is None:
                    granted[name] += 1
        finally:
            loop.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in granted]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(granted.values()) == 50
    assert FundingPool(conn, bucket, "observer").holds(BUYER_WALLET, CASH) == granted


_op = st.tuples(st.sampled_from(["buy", "cancel", "fill"]), st.integers(0, 1), st.integers(1, 6))


@settings(max_examples=15, deadline=None)
@given(ops=st.lists(_op, min_size=1, max_size=25))
def test_holds_across_shards_never_exceed_the_balance(conn: NatsLoop, ops: list[tuple[str, int, int]]) -> None:
    """Random buys, cancels and partial fills on two shards: after every step the cash both shards'
    ledgers hold together is within the balance, and the bucket shows each shard's exact holding."""
    balance = 12 * UNIT
    gates, pool = _shards(conn, balance)
    ev = EventMaker()
    seqs = itertools.count(1)
    order_ids = itertools.count(1)
    open_orders: list[dict[int, int]] = [{}, {}]  # per shard: order id -> remaining lots
    for action, shard, qty in ops:
        gk, mine = gates[shard], open_orders[shard]
        if action == "buy":
            seq = next(seqs)
            if _buy(gk, qty, seq) is None:
                oid = next(order_ids)
                gk.on_command(seq, [ev.accepted(oid, "buyer", Side.BUY, qty, PRICE)])
                mine[oid] = qty
        elif mine and action == "cancel":
            oid, remaining = mine.popitem()
            gk.on_command(next(seqs), [ev.cancelled(oid, "buyer", Side.BUY, remaining)])
        elif mine and action == "fill":
            oid = next(iter(mine))
            done = min(qty, mine[oid])
            mine[oid] -= done
            gk.on_command(next(seqs), [ev.fill(maker=(oid, "buyer", mine[oid]), taker=(10_000 + oid, "seller", 0),
                                               aggressor=Side.SELL, price=PRICE, qty=done)])
            if not mine[oid]:
                del mine[oid]
        held = [g.reserved_cash(BUYER_WALLET, CASH) for g in gates]
        assert sum(held) <= balance
        entries = pool.holds(BUYER_WALLET, CASH)
        assert [entries.get("a", 0), entries.get("b", 0)] == held
    for g in gates:
        g.validate()
