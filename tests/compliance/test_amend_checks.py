"""Issue 12 item 7: an amend that changes price or raises quantity runs the checks of a new order;
the pre-settlement check includes maturity."""

from __future__ import annotations

import pytest

from compliance import ReasonCode
from engine import Fill, OrderView, Side, TimeInForce
from tests.compliance.world import NOW, SYMBOL, World


def _view(participant: str, side: Side, price: int = 100, qty: int = 5, remaining: int = 5) -> OrderView:
    return OrderView(order_id=9, client_order_id="", participant=participant, session="", symbol=SYMBOL,
                     side=side, price=price, qty=qty, remaining=remaining, tif=TimeInForce.GTC, expire_ts=None,
                     accepted_ts=0)


def _fill(ts: int) -> Fill:
    return Fill(seq=1, md_seq=1, ts=ts, trade_id=1, symbol=SYMBOL, price=100, qty=1, aggressor=Side.BUY,
                maker_order_id=1, maker_participant="seller", maker_remaining=0, taker_order_id=2,
                taker_participant="buyer", taker_remaining=0)


@pytest.mark.parametrize("new_price", [90, 110])
def test_sell_amend_that_changes_price_checks_eligibility(new_price: int) -> None:
    world = World(frozen=True)
    gk, _ = world.build(trader="seller")
    d = gk.check_amend(participant="seller", order=_view("seller", Side.SELL), new_price=new_price, new_qty=None,
                       now_ts=NOW)
    assert d.code is ReasonCode.WALLET_FROZEN


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_price_amend_of_an_eligible_order_is_accepted_without_a_hold_when_nothing_is_added(side: Side) -> None:
    trader = "buyer" if side is Side.BUY else "seller"
    gk, _ = World().build(trader=trader)
    price = 90 if side is Side.BUY else 110  # away from the market: no extra cash or notes needed
    d = gk.check_amend(participant=trader, order=_view(trader, side), new_price=price, new_qty=None, now_ts=NOW)
    assert d.ok and d.hold is None


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_price_amend_after_maturity_is_refused(side: Side) -> None:
    trader = "buyer" if side is Side.BUY else "seller"
    world = World(rules={"trading_end_ts": NOW})
    gk, _ = world.build(trader=trader)
    d = gk.check_amend(participant=trader, order=_view(trader, side), new_price=95, new_qty=None, now_ts=NOW)
    assert d.code is ReasonCode.INSTRUMENT_MATURED


def test_quantity_only_reduction_is_accepted_even_when_ineligible() -> None:
    world = World(frozen=True)
    gk, _ = world.build(trader="seller")
    d = gk.check_amend(participant="seller", order=_view("seller", Side.SELL), new_price=None, new_qty=3, now_ts=NOW)
    assert d.ok and d.hold is None


def test_pre_settlement_check_includes_maturity() -> None:
    gk, _ = World(rules={"trading_end_ts": NOW}).build()
    assert gk.check_trade(_fill(NOW - 1), now_ts=NOW - 1).ok
    refused = gk.check_trade(_fill(NOW), now_ts=NOW)
    assert not refused.ok and refused.code is ReasonCode.INSTRUMENT_MATURED
