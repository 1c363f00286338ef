"""The shared vocabulary: the one buyer/seller derivation, acknowledgements, wallets, listings."""

from __future__ import annotations

import pytest

from engine import (
    AddInstrument,
    AmendOrder,
    CancelReason,
    Engine,
    Fill,
    InstrumentSpec,
    NewOrder,
    OrderType,
    Side,
    TimeInForce,
)
from market.model import Listing, OrderAck, OrderStatus, SettlementState, Trade, normalise_wallet

SPEC = InstrumentSpec(symbol="OMN-T", tick_size=10_000, lot_size=100)


def _fill(aggressor: Side) -> Fill:
    return Fill(seq=1, md_seq=1, ts=5, trade_id=7, symbol="OMN-T", price=40, qty=3, aggressor=aggressor,
                maker_order_id=1, maker_participant="mm", maker_remaining=0,
                taker_order_id=2, taker_participant="inv", taker_remaining=0)


@pytest.mark.parametrize(("aggressor", "buyer", "seller", "buy_order", "sell_order"), [
    (Side.BUY, "inv", "mm", 2, 1),
    (Side.SELL, "mm", "inv", 1, 2),
])
def test_trade_from_fill_resolves_the_sides(aggressor: Side, buyer: str, seller: str, buy_order: int,
                                            sell_order: int) -> None:
    trade = Trade.from_fill(_fill(aggressor))
    assert (trade.buyer, trade.seller, trade.buy_order_id, trade.sell_order_id) == (buyer, seller, buy_order,
                                                                                    sell_order)
    assert trade.aggressor_buy is (aggressor is Side.BUY)
    assert trade.settlement is SettlementState.PENDING
    assert trade.side_of("inv") is (Side.BUY if aggressor is Side.BUY else Side.SELL)
    assert trade.side_of("nobody") is None


def test_listing_amounts_are_the_engine_formula() -> None:
    listing = Listing(spec=SPEC, name="t", token_address="0x" + "11" * 20, cash_token_address="0x" + "22" * 20,
                      token_decimals=2, cash_decimals=6)
    assert listing.cash_amount(40, 3) == 40 * 10_000 * 3 == SPEC.cash_amount(40, 3)
    assert listing.token_amount(3) == 300


def test_normalise_wallet() -> None:
    assert normalise_wallet("0x" + "AB" * 20) == "0x" + "ab" * 20
    with pytest.raises(ValueError):
        normalise_wallet("0x1234")


def _engine() -> Engine:
    engine = Engine()
    engine.process(AddInstrument(ts=1, spec=SPEC))
    return engine


def _order(participant: str, side: Side, qty: int, price: int, ts: int, tif: TimeInForce = TimeInForce.GTC,
           coid: str = "c") -> NewOrder:
    return NewOrder(ts=ts, participant=participant, symbol="OMN-T", side=side, qty=qty, price=price,
                    order_type=OrderType.LIMIT, tif=tif, client_order_id=coid)


def test_ack_of_a_new_order_that_trades_partly_and_rests() -> None:
    engine = _engine()
    engine.process(_order("mm", Side.SELL, 2, 40, ts=2))
    ack = OrderAck.for_new_order(engine.process(_order("inv", Side.BUY, 5, 40, ts=3, coid="mine")))
    assert ack is not None and ack.ok
    assert (ack.client_order_id, ack.status, ack.filled, ack.remaining) == ("mine", OrderStatus.PARTIALLY_FILLED, 2, 3)
    assert [(f.qty, f.price, f.taker) for f in ack.fills] == [(2, 40, True)]


def test_ack_of_an_ioc_remainder_is_cancelled() -> None:
    engine = _engine()
    engine.process(_order("mm", Side.SELL, 2, 40, ts=2))
    ack = OrderAck.for_new_order(engine.process(_order("inv", Side.BUY, 5, 40, ts=3, tif=TimeInForce.IOC)))
    assert ack is not None
    assert (ack.status, ack.filled, ack.remaining, ack.cancel_reason) == (
        OrderStatus.CANCELLED, 2, 0, CancelReason.IOC_REMAINDER)


def test_ack_of_an_amend_that_crosses_counts_its_fills() -> None:
    engine = _engine()
    engine.process(_order("mm", Side.SELL, 2, 41, ts=2))
    placed = engine.process(_order("inv", Side.BUY, 5, 40, ts=3, coid="mine"))
    assert placed.order_id is not None
    result = engine.process(AmendOrder(ts=4, participant="inv", order_id=placed.order_id, price=41))
    ack = OrderAck.for_amend(result, placed.order_id, client_order_id="mine")
    assert ack is not None
    assert (ack.price, ack.filled, ack.remaining, ack.status, ack.side) == (
        41, 2, 3, OrderStatus.PARTIALLY_FILLED, Side.BUY)
    assert ack.priority_kept is False
