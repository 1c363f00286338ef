"""Records in the store: each trade's premium/discount to NAV (``trade_premiums``, read back with
every trade read), audit anchors, settlements of a set of trades, orders live in a time window."""

from __future__ import annotations

from engine import Side
from store import AuditAnchor, SettlementStatus, SettlementUpdate, Store, TradePremium
from tests.store.events import CMD, accepted, cancelled, fill, result


def _trades(store: Store, n: int) -> None:
    store.project([(i, CMD, result(fill(i, maker=2 * i, taker=2 * i + 1, qty=1, maker_remaining=0,
                                        taker_remaining=0, ts=100 + i))) for i in range(1, n + 1)])


def test_a_trade_carries_its_premium_in_every_read(store: Store) -> None:
    _trades(store, 3)
    store.record_trade_premiums([TradePremium(trade_id=1, nav="99.5", premium_bps=50),
                                 TradePremium(trade_id=2, nav="101", premium_bps=-99)])
    trades = {t.trade_id: t for t in store.list_trades()}
    assert (trades[1].premium_bps, trades[1].nav) == (50, "99.5")
    assert (trades[2].premium_bps, trades[2].nav) == (-99, "101")
    assert trades[3].premium_bps is None and trades[3].nav is None  # no NAV in force: null, not 0
    assert [t.premium_bps for t in store.trade_page(limit=10)[1]] == [None, -99, 50]
    assert [t.premium_bps for t in store.trade_page(participant="alice", limit=10)[1]] == [None, -99, 50]
    got = store.get_trade(2)
    assert got is not None and got.premium_bps == -99 and got.to_trade().premium_bps == -99


def test_recording_a_premium_twice_keeps_the_first(store: Store) -> None:
    """The adapter retries a batch after a store error: a retry must neither fail nor overwrite."""
    _trades(store, 1)
    store.record_trade_premiums([TradePremium(trade_id=1, nav="100", premium_bps=10)])
    store.record_trade_premiums([TradePremium(trade_id=1, nav="200", premium_bps=-5000),
                                 TradePremium(trade_id=1, nav="300", premium_bps=7)])
    got = store.get_trade(1)
    assert got is not None and (got.premium_bps, got.nav) == (10, "100")


def test_premiums_survive_a_projection_rebuild(store: Store) -> None:
    """The trades table is rebuilt from the journal (which knows no NAV): premiums live apart."""
    _trades(store, 2)
    store.record_trade_premiums([TradePremium(trade_id=2, nav="100", premium_bps=25)])
    store.clear_projection()
    _trades(store, 2)
    got = store.get_trade(2)
    assert got is not None and got.premium_bps == 25


def test_trade_time_window_and_settlements_of_trades(store: Store) -> None:
    _trades(store, 5)
    assert [t.trade_id for t in store.list_trades(since_ts=102, until_ts=104)] == [2, 3]
    store.record_settlements([
        SettlementUpdate(trade_id=2, status=SettlementStatus.CONFIRMED, tx_hash="0x" + "ab" * 32, block=7),
        SettlementUpdate(trade_id=4, status=SettlementStatus.FAILED, reason="x"),
    ])
    found = store.settlements_of([1, 2, 3, 4])
    assert sorted(found) == [2, 4] and found[2].tx_hash == "0x" + "ab" * 32 and found[2].block == 7


def test_orders_live_in_a_window(store: Store) -> None:
    store.project([
        (1, CMD, result(accepted(1, "alice", Side.SELL, 10, ts=10), accepted(2, "alice", Side.SELL, 5, ts=10))),
        (2, CMD, result(cancelled(1, remaining=10, ts=20))),
        (3, CMD, result(accepted(3, "alice", Side.SELL, 5, ts=40))),
    ])
    # order 1 ended at 20 (before the window), order 3 was accepted at 40 (after it)
    assert [o.order_id for o in store.list_orders(active_since_ts=25, active_until_ts=35)] == [2]
    assert [o.order_id for o in store.list_orders(active_since_ts=0, active_until_ts=100)] == [1, 2, 3]


def test_audit_anchors_newest_first_and_the_head(store: Store) -> None:
    assert store.audit_head() is None and store.list_audit_anchors() == []
    first = store.append_audit("op", "a", {})
    head = store.append_audit("op", "b", {"x": 1})
    assert store.audit_head() == head and store.get_audit_entry(first.id) == first
    for entry, block in ((first, 5), (head, 9)):
        store.add_audit_anchor(AuditAnchor(audit_id=entry.id, head_hash=entry.hash, tx_hash="0x" + "01" * 32,
                                           block=block, chain_id=31337, ts=1))
    anchors = store.list_audit_anchors()
    assert [a.audit_id for a in anchors] == [head.id, first.id] and anchors[0].id is not None
