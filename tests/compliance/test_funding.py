"""Funding reservations: holds, binding, fills, cancels, amends, settlement."""

from __future__ import annotations

import pytest

from compliance import (
    Decision,
    Gatekeeper,
    InvestorCategory,
    Participant,
    ParticipantStatus,
    ReasonCode,
    UnknownHoldError,
)
from engine import OrderView, ResultCode, Side, TimeInForce
from tests.compliance.events import EventMaker
from tests.compliance.world import (
    BUYER_WALLET,
    CASH,
    NOW,
    REGISTRY,
    SELLER_WALLET,
    SETTLE,
    SYMBOL,
    TOKEN,
    World,
)

NO_HOLD = 0  # a command seq without a reservation (fills and cancels caused by other commands)


def _buy(gk: Gatekeeper, qty: int, price: int | None = 100, who: str = "buyer", seq: int | None = None) -> Decision:
    return gk.check_new_order(participant=who, symbol=SYMBOL, side=Side.BUY, qty=qty, price=price, now_ts=NOW,
                              seq=seq)


def _sell(gk: Gatekeeper, qty: int, price: int | None = 100, who: str = "seller") -> Decision:
    return gk.check_new_order(participant=who, symbol=SYMBOL, side=Side.SELL, qty=qty, price=price, now_ts=NOW)


def _view(order_id: int, participant: str, side: Side, price: int, qty: int, remaining: int) -> OrderView:
    return OrderView(order_id=order_id, client_order_id="", participant=participant, session="", symbol=SYMBOL,
                     side=side, price=price, qty=qty, remaining=remaining, tif=TimeInForce.GTC, expire_ts=None,
                     accepted_ts=0)


@pytest.fixture
def tight() -> World:
    """The buyer can afford exactly 10 lots at 100; the seller holds exactly 10 lots."""
    w = World(lot=1000, tick=7, qty=10, price=100)
    w.buyer_cash = w.need_cash()
    w.buyer_allowance = w.need_cash()
    w.seller_notes = w.need_notes()
    return w


def test_buy_hold_blocks_cash_until_cancel(tight: World) -> None:
    gk, _ = tight.build()
    ev = EventMaker()
    first = _buy(gk, 10)
    assert first.ok and first.hold is not None
    assert gk.reserved_cash(BUYER_WALLET, CASH) == 100 * 7 * 10
    assert _buy(gk, 1).code is ReasonCode.INSUFFICIENT_CASH
    gk.on_command(first.hold.hold_id, [ev.accepted(1, "buyer", Side.BUY, 10, 100)])
    gk.on_command(NO_HOLD, [ev.cancelled(1, "buyer", Side.BUY, 10)])
    assert gk.reserved_cash(BUYER_WALLET, CASH) == 0
    assert _buy(gk, 10).ok
    gk.validate()


def test_allowance_is_checked_against_open_buys(tight: World) -> None:
    tight.buyer_cash = tight.need_cash() * 5
    gk, _ = tight.build()
    assert _buy(gk, 6).ok
    assert _buy(gk, 4).ok
    d = _buy(gk, 1)
    assert d.code is ReasonCode.INSUFFICIENT_ALLOWANCE
    assert "reserved 7000" in d.message


def test_sell_hold_blocks_notes_until_expiry(tight: World) -> None:
    gk, _ = tight.build(trader="seller")
    ev = EventMaker()
    d = _sell(gk, 10)
    assert d.ok and d.hold is not None
    assert _sell(gk, 1).code is ReasonCode.INSUFFICIENT_NOTES
    gk.on_command(d.hold.hold_id, [ev.accepted(7, "seller", Side.SELL, 10, 100)])
    gk.on_command(NO_HOLD, [ev.expired(7, "seller", Side.SELL, 10)])
    assert gk.reserved_notes(SELLER_WALLET, TOKEN) == 0
    assert _sell(gk, 10).ok


def test_release_after_engine_rejection_restores_capacity(tight: World) -> None:
    gk, _ = tight.build()
    d = _buy(gk, 10)
    assert d.hold is not None
    gk.release(d.hold)
    gk.release(d.hold)  # idempotent
    assert gk.open_holds() == 0
    assert _buy(gk, 10).ok


def test_fill_moves_reservation_to_obligation_and_settlement_releases_it(tight: World) -> None:
    gk, _ = tight.build()
    ev = EventMaker()
    b = _buy(gk, 10, price=100)
    s = _sell(gk, 4, price=90)
    assert b.hold is not None and s.hold is not None
    gk.on_command(s.hold.hold_id, [ev.accepted(2, "seller", Side.SELL, 4, 90)])
    gk.on_command(b.hold.hold_id, [
        ev.accepted(3, "buyer", Side.BUY, 10, 100),
        ev.fill(maker=(2, "seller", 0), taker=(3, "buyer", 6), aggressor=Side.BUY, price=90, qty=4),
    ])
    # 6 lots still open at the limit (100) + 4 lots owed at the trade price (90)
    assert gk.reserved_cash(BUYER_WALLET, CASH) == 7 * (100 * 6 + 90 * 4)
    assert gk.incoming_notes(BUYER_WALLET, TOKEN) == 1000 * 10
    assert gk.reserved_notes(SELLER_WALLET, TOKEN) == 1000 * 4
    assert gk.pending_obligations() == 2
    gk.validate()
    # the price improvement is free again: 4 lots * 10 ticks * 7
    assert gk.check_new_order(participant="buyer", symbol=SYMBOL, side=Side.BUY, qty=1, price=40,
                              now_ts=NOW).ok
    gk.on_trade_finished(1)  # confirmed, block unknown: held for two more watcher polls
    assert gk.reserved_notes(SELLER_WALLET, TOKEN) == 1000 * 4
    gk.cache.mark_synced(gk.cache.block, NOW)  # this poll may have started before the transfer
    assert gk.reserved_notes(SELLER_WALLET, TOKEN) == 1000 * 4
    gk.cache.mark_synced(gk.cache.block, NOW)
    assert gk.reserved_notes(SELLER_WALLET, TOKEN) == 0
    assert gk.pending_obligations() == 0
    gk.validate()


def test_confirmed_settlement_waits_for_the_cache_to_see_its_block(tight: World) -> None:
    gk, _ = tight.build()
    ev = EventMaker()
    s = _sell(gk, 10)
    b = _buy(gk, 10)
    assert s.hold and b.hold
    gk.on_command(s.hold.hold_id, [ev.accepted(1, "seller", Side.SELL, 10, 100)])
    gk.on_command(b.hold.hold_id, [ev.accepted(2, "buyer", Side.BUY, 10, 100),
                                   ev.fill(maker=(1, "seller", 0), taker=(2, "buyer", 0), aggressor=Side.BUY,
                                           price=100, qty=10)])
    assert gk.open_holds() == 0 and gk.pending_obligations() == 2
    gk.on_trade_finished(1, block=gk.cache.block + 2)
    assert gk.reserved_cash(BUYER_WALLET, CASH) == 7000  # the cache has not seen the transfer yet
    gk.cache.mark_synced(gk.cache.block + 2, NOW)
    assert gk.reserved_cash(BUYER_WALLET, CASH) == 0
    assert gk.pending_obligations() == 0


def test_failed_settlement_releases_at_once(tight: World) -> None:
    gk, _ = tight.build()
    ev = EventMaker()
    gk.on_command(NO_HOLD, [ev.fill(maker=(1, "seller", 0), taker=(2, "buyer", 0), aggressor=Side.BUY, price=100,
                                    qty=10)])
    assert _buy(gk, 1).code is ReasonCode.INSUFFICIENT_CASH  # obligations exist even without holds
    gk.on_settlement_failed(1)
    assert _buy(gk, 10).ok


def test_amend_up_reserves_the_delta_and_engine_event_applies_it(tight: World) -> None:
    tight.buyer_cash = tight.buyer_allowance = 7 * 100 * 10
    gk, _ = tight.build()
    ev = EventMaker()
    d = _buy(gk, 5, price=100)
    assert d.hold
    gk.on_command(d.hold.hold_id, [ev.accepted(9, "buyer", Side.BUY, 5, 100)])
    view = _view(9, "buyer", Side.BUY, 100, 5, 5)
    too_much = gk.check_amend(participant="buyer", order=view, new_price=None, new_qty=11, now_ts=NOW)
    assert too_much.code is ReasonCode.INSUFFICIENT_CASH
    a = gk.check_amend(participant="buyer", order=view, new_price=None, new_qty=10, now_ts=NOW)
    assert a.ok and a.hold is not None and a.hold.order_id == 9
    assert gk.reserved_cash(BUYER_WALLET, CASH) == 7000
    gk.on_command(a.hold.hold_id, [ev.amended(9, "buyer", Side.BUY, 100, 10, 10)])
    assert gk.reserved_cash(BUYER_WALLET, CASH) == 7000
    assert gk.open_holds() == 1
    gk.validate()


def test_amend_rejected_by_engine_drops_the_extra(tight: World) -> None:
    gk, _ = tight.build()
    ev = EventMaker()
    d = _buy(gk, 5, price=100)
    assert d.hold
    gk.on_command(d.hold.hold_id, [ev.accepted(9, "buyer", Side.BUY, 5, 100)])
    a = gk.check_amend(participant="buyer", order=_view(9, "buyer", Side.BUY, 100, 5, 5), new_price=120,
                       new_qty=None, now_ts=NOW)
    assert a.ok and a.hold
    assert gk.reserved_cash(BUYER_WALLET, CASH) == 7 * 120 * 5
    gk.on_command(a.hold.hold_id, [ev.rejected("buyer", 9, ResultCode.PRICE_OUTSIDE_BAND)])
    assert gk.reserved_cash(BUYER_WALLET, CASH) == 7 * 100 * 5
    gk.release(a.hold)  # a release afterwards is harmless
    gk.validate()


def test_amend_down_is_always_accepted_even_when_frozen(tight: World) -> None:
    tight.frozen = True
    gk, _ = tight.build()
    view = _view(9, "buyer", Side.BUY, 100, 5, 5)
    d = gk.check_amend(participant="buyer", order=view, new_price=None, new_qty=3, now_ts=NOW)
    assert d.ok and d.hold is None
    # a re-price is a new order at the new price (issue 12 item 7): it runs the eligibility checks
    assert gk.check_amend(participant="buyer", order=view, new_price=90, new_qty=3,
                          now_ts=NOW).code is ReasonCode.WALLET_FROZEN
    up = gk.check_amend(participant="buyer", order=view, new_price=None, new_qty=6, now_ts=NOW)
    assert up.code is ReasonCode.WALLET_FROZEN


def test_amend_of_someone_elses_order_is_refused(tight: World) -> None:
    gk, _ = tight.build()
    d = gk.check_amend(participant="seller", order=_view(9, "buyer", Side.BUY, 100, 5, 5), new_price=None,
                       new_qty=6, now_ts=NOW)
    assert d.code is ReasonCode.INVALID_ORDER


def test_holding_cap_counts_open_buys(tight: World) -> None:
    tight.rules["holding_cap"] = 1000 * 6
    gk, _ = tight.build()
    assert _buy(gk, 4).ok
    d = _buy(gk, 3)
    assert d.code is ReasonCode.HOLDING_CAP_EXCEEDED
    assert _buy(gk, 2).ok


def test_max_holders_counts_pending_new_holders(tight: World) -> None:
    tight.rules["max_holders"] = 3  # seller + other holder + one new buyer
    tight.other_holder_notes = 5
    gk, _ = tight.build()
    late_wallet = "0x" + "ab" * 20
    gk.upsert_participant(Participant(id="late", status=ParticipantStatus.ACTIVE,
                                      category=InvestorCategory.US_QIB, jurisdiction="DE", kyc_expiry_ts=None,
                                      wallet=late_wallet))
    cache = gk.cache
    cache.set_verified(REGISTRY, late_wallet, True)
    cache.set_frozen(TOKEN, late_wallet, False)
    cache.set_balance(TOKEN, late_wallet, 0)
    cache.set_balance(CASH, late_wallet, 10**9)
    cache.set_allowance(CASH, late_wallet, SETTLE, 10**9)
    assert _buy(gk, 1).ok  # buyer becomes the 3rd (prospective) holder
    assert _buy(gk, 1).ok  # already counted
    assert _buy(gk, 1, who="late").code is ReasonCode.MAX_HOLDERS_REACHED


def test_market_buy_without_protection_price_is_refused_and_sell_is_not(tight: World) -> None:
    gk, _ = tight.build()
    assert _buy(gk, 1, price=None).code is ReasonCode.PROTECTION_PRICE_REQUIRED
    gk2, _ = tight.build(trader="seller")
    assert _sell(gk2, 1, price=None).ok


def test_on_command_binds_or_releases_the_hold_of_its_seq(tight: World) -> None:
    gk, _ = tight.build()
    ev = EventMaker()
    d = _buy(gk, 10, seq=41)
    assert d.hold and d.hold.hold_id == 41
    gk.on_command(41, (ev.accepted(5, "buyer", Side.BUY, 10, 100),))
    gk.release(d.hold)  # and a late release of a bound hold: no-op
    assert gk.reserved_cash(BUYER_WALLET, CASH) == 7000
    d2 = _buy(gk, 1)
    assert d2.code is ReasonCode.INSUFFICIENT_CASH
    gk.on_command(42, [ev.cancelled(5, "buyer", Side.BUY, 10)])
    d3 = _buy(gk, 3, seq=43)
    assert d3.hold
    gk.on_command(43, (ev.rejected("buyer", None, ResultCode.NO_LIQUIDITY),))
    assert gk.open_holds() == 0
    gk.validate()


def test_reserving_twice_under_one_seq_raises(tight: World) -> None:
    gk, _ = tight.build()
    d = _buy(gk, 1, seq=1)
    assert d.hold
    with pytest.raises(UnknownHoldError):
        _buy(gk, 1, seq=1)  # command 1 already has a hold
    forged = type(d.hold)(hold_id=999, participant="buyer", symbol=SYMBOL, side=Side.BUY)
    gk.release(forged)  # a hold nobody issued: nothing to give back
    assert gk.open_holds() == 1


def test_adopt_order_and_trade_after_restart(tight: World) -> None:
    gk, _ = tight.build()
    gk.adopt_order(_view(4, "buyer", Side.BUY, 100, 10, 6))
    gk.adopt_trade(trade_id=1, symbol=SYMBOL, price=100, qty=4, buyer="buyer", seller="seller")
    assert gk.reserved_cash(BUYER_WALLET, CASH) == 7000
    assert _buy(gk, 1).code is ReasonCode.INSUFFICIENT_CASH
    gk.validate()


def test_identical_orders_sequenced_out_of_order_bind_to_the_right_holds(tight: World) -> None:
    gk, _ = tight.build()
    ev = EventMaker()
    h1, h2 = _buy(gk, 2).hold, _buy(gk, 2).hold
    assert h1 and h2
    # the second command got order 1: each accept binds the hold of its own command seq
    gk.on_command(h2.hold_id, [ev.accepted(1, "buyer", Side.BUY, 2, 100)])
    gk.on_command(h1.hold_id, [ev.accepted(2, "buyer", Side.BUY, 2, 100)])
    gk.on_command(NO_HOLD, [ev.cancelled(1, "buyer", Side.BUY, 2)])
    gk.release(h2)  # already closed by its cancel: no-op
    assert gk.open_holds() == 1
    assert gk.reserved_cash(BUYER_WALLET, CASH) == 7 * 100 * 2
    gk.validate()
