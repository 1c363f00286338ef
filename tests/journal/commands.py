"""Command builders and a hypothesis strategy shared by the journal tests."""

from __future__ import annotations

from hypothesis import strategies as st

from engine import (
    AddInstrument,
    AdvanceTime,
    AmendOrder,
    CancelOrder,
    CancelReason,
    Command,
    InstrumentSpec,
    InstrumentStatus,
    MassCancel,
    NewOrder,
    OrderType,
    SetInstrumentStatus,
    Side,
    StpMode,
    TimeInForce,
    Uncross,
)

SPEC = InstrumentSpec(symbol="OMN1", tick_size=10, lot_size=1000, band_low=1, band_high=10_000)

EVERY_KIND: list[Command] = [
    AddInstrument(ts=1, spec=SPEC),
    AddInstrument(
        ts=1,
        spec=InstrumentSpec(
            symbol="X", tick_size=1, lot_size=1, min_qty=5, max_qty=9, status=InstrumentStatus.PRE_OPEN
        ),
    ),
    SetInstrumentStatus(ts=2, symbol="OMN1", status=InstrumentStatus.HALTED),
    NewOrder(ts=3, participant="alice", symbol="OMN1", side=Side.BUY, qty=5, price=100),
    NewOrder(
        ts=3,
        participant="bob",
        symbol="OMN1",
        side=Side.SELL,
        qty=7,
        price=None,
        order_type=OrderType.MARKET,
        tif=TimeInForce.GTD,
        expire_ts=99,
        post_only=True,
        stp=StpMode.DECREMENT,
        client_order_id="c-1 ü",
        session="s1",
    ),
    AmendOrder(ts=4, participant="alice", order_id=1, price=101),
    AmendOrder(ts=4, participant="alice", order_id=1, qty=3),
    CancelOrder(ts=5, participant="alice", order_id=1),
    MassCancel(ts=6, participant="bob"),
    MassCancel(ts=6, participant="bob", symbol="OMN1", side=Side.SELL, session="s1", reason=CancelReason.DISCONNECT),
    AdvanceTime(ts=7),
    SetInstrumentStatus(ts=8, symbol="OMN1", status=InstrumentStatus.CALL),
    Uncross(ts=9, symbol="OMN1"),
    Uncross(ts=9, symbol="OMN1", reference_price=104, then=InstrumentStatus.CALL),
]


def order(i: int, *, side: Side = Side.BUY, price: int = 100, qty: int = 1, participant: str = "alice") -> NewOrder:
    return NewOrder(
        ts=0, participant=participant, symbol="OMN1", side=side, qty=qty, price=price, client_order_id=f"c{i}"
    )


participants = st.sampled_from(["alice", "bob", "carol"])
new_orders = st.builds(
    NewOrder,
    ts=st.just(0),
    participant=participants,
    symbol=st.just("OMN1"),
    side=st.sampled_from(Side),
    qty=st.integers(1, 20),
    price=st.integers(95, 105),
    tif=st.sampled_from([TimeInForce.GTC, TimeInForce.IOC]),
    stp=st.sampled_from(StpMode),
    client_order_id=st.text(max_size=5),
)
cancels = st.builds(CancelOrder, ts=st.just(0), participant=participants, order_id=st.integers(1, 40))
amends = st.builds(
    AmendOrder,
    ts=st.just(0),
    participant=participants,
    order_id=st.integers(1, 40),
    price=st.none() | st.integers(95, 105),
    qty=st.none() | st.integers(1, 25),
)
trading_commands = st.one_of(new_orders, new_orders, new_orders, cancels, amends)
