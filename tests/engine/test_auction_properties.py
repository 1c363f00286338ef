"""Hypothesis properties of the call auction's uncross, checked on both implementations.

An independent brute-force oracle computes demand and supply at every price of the band from the
orders as submitted; the engine's uncross must execute the maximum volume over all prices, at the
price the documented rules pick, within every order's limit, in price-time priority, conserving
quantity. Replays (including phase changes, and restoring a snapshot into the other
implementation half-way) must give identical events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import (
    AddInstrument,
    AdvanceTime,
    CancelOrder,
    Command,
    Fill,
    IndicativeUncross,
    InstrumentSpec,
    InstrumentStatus,
    NewOrder,
    OrderAmended,
    OrderCancelled,
    Result,
    SetInstrumentStatus,
    Side,
    TimeInForce,
    TradeOrigin,
    Uncross,
    implementations,
)

PER_IMPLEMENTATION = False  # each property loops over the implementations itself
SYM = "AUC"
LOW, HIGH = 90, 110
IMPLS = list(implementations().values())
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Entry:
    side: Side
    price: int
    qty: int
    participant: str


entries = st.lists(
    st.builds(Entry, side=st.sampled_from(Side), price=st.integers(95, 105), qty=st.integers(1, 9),
              participant=st.sampled_from(("p1", "p2", "p3", "p4"))),
    max_size=40,
)
references = st.none() | st.integers(LOW, HIGH)


def _oracle(orders: list[Entry], reference: int | None) -> tuple[int, int | None, int]:
    """(maximum volume over every price of the band, the rule's price, its imbalance)."""
    def demand(p: int) -> int:
        return sum(o.qty for o in orders if o.side is Side.BUY and o.price >= p)

    def supply(p: int) -> int:
        return sum(o.qty for o in orders if o.side is Side.SELL and o.price <= p)

    best = max(min(demand(p), supply(p)) for p in range(LOW, HIGH + 1))
    if not best:
        return 0, None, 0
    candidates = sorted({o.price for o in orders if min(demand(o.price), supply(o.price)) == best})
    least = min(abs(demand(p) - supply(p)) for p in candidates)
    candidates = [p for p in candidates if abs(demand(p) - supply(p)) == least]
    if reference is not None:
        nearest = min(abs(p - reference) for p in candidates)
        candidates = [p for p in candidates if abs(p - reference) == nearest]
    price = candidates[-1] if all(demand(p) > supply(p) for p in candidates) else candidates[0]
    return best, price, demand(price) - supply(price)


def _priority(by_id: dict[int, Entry], side: Side) -> list[int]:
    """Order ids of one side in price-time priority (ids grow with arrival)."""
    sign = -1 if side is Side.BUY else 1
    return sorted((oid for oid, o in by_id.items() if o.side is side), key=lambda oid: (sign * by_id[oid].price, oid))


def _in_call(cls: type[Any], orders: list[Entry]) -> tuple[Any, list[Result]]:
    engine = cls()
    engine.process(AddInstrument(ts=1, spec=InstrumentSpec(symbol=SYM, tick_size=1, lot_size=1, band_low=LOW,
                                                           band_high=HIGH)))
    assert engine.process(SetInstrumentStatus(ts=2, symbol=SYM, status=InstrumentStatus.CALL)).code.name == "OK"
    results = [engine.process(NewOrder(ts=3 + i, participant=o.participant, symbol=SYM, side=o.side, qty=o.qty,
                                       price=o.price)) for i, o in enumerate(orders)]
    assert all(r.code.name == "OK" and not any(isinstance(e, Fill) for e in r.events) for r in results)
    return engine, results


@SETTINGS
@given(orders=entries, reference=references)
def test_uncross_maximises_volume_within_limits_in_priority_order(orders: list[Entry], reference: int | None) -> None:
    volume, price, _ = _oracle(orders, reference)
    outputs = []
    for cls in IMPLS:
        engine, results = _in_call(cls, orders)
        if results:  # the indication after the last order: the same rule, no reference (no trade yet)
            indication = results[-1].events[-1]
            assert isinstance(indication, IndicativeUncross)
            no_ref = _oracle(orders, None)
            assert (indication.volume, indication.price) == (no_ref[0], no_ref[1])
            assert indication.imbalance_qty == abs(no_ref[2])
            assert indication.imbalance_side == (Side.BUY if no_ref[2] > 0 else Side.SELL if no_ref[2] < 0 else None)
        res = engine.process(Uncross(ts=10_000, symbol=SYM, reference_price=reference))
        assert res.code.name == "OK"
        engine.validate()  # among others: the book is no longer crossed
        outputs.append(repr(res))
        ids = [r.order_id for r in results]
        by_id = dict(zip(ids, orders, strict=True))
        executed = {oid: o.qty - (view.remaining if (view := engine.order(oid)) is not None else 0)
                    for oid, o in by_id.items()}
        fills = [e for e in res.events if isinstance(e, Fill)]
        traded: dict[int, int] = dict.fromkeys(ids, 0)
        for f in fills:
            assert f.price == price and f.origin is TradeOrigin.AUCTION
            buy_id, sell_id = ((f.taker_order_id, f.maker_order_id) if f.aggressor is Side.BUY
                               else (f.maker_order_id, f.taker_order_id))
            assert by_id[buy_id].side is Side.BUY and by_id[sell_id].side is Side.SELL
            assert by_id[buy_id].price >= f.price >= by_id[sell_id].price  # no fill outside a limit
            assert by_id[buy_id].participant != by_id[sell_id].participant
            assert max(buy_id, sell_id) == f.taker_order_id  # the later order of a pair is the taker
            traded[buy_id] += f.qty
            traded[sell_id] += f.qty
        # conservation: what left each order is its fills plus its self-trade decrements
        decremented = {oid: executed[oid] - traded[oid] for oid in ids}
        assert all(d >= 0 for d in decremented.values())
        for e in res.events:
            if isinstance(e, OrderCancelled):
                assert e.reason.name == "SELF_TRADE_PREVENTION" and 0 < e.remaining <= decremented[e.order_id]
                assert engine.order(e.order_id) is None
            elif isinstance(e, OrderAmended):
                assert e.priority_kept and decremented[e.order_id] > 0
        for oid, o in by_id.items():  # a survivor's total shrank by its decrements: qty == filled + remaining
            view = engine.order(oid)
            if view is not None:
                assert (view.qty, view.remaining) == (o.qty - decremented[oid], o.qty - executed[oid])
        for side in Side:
            assert sum(executed[oid] for oid, o in by_id.items() if o.side is side) == volume
        assert sum(f.qty for f in fills) + sum(decremented.values()) // 2 == volume
        # priority: per side, fully executed orders, at most one partial, then untouched ones
        for side in Side:
            queue = _priority(by_id, side)
            states = [0 if executed[oid] == 0 else 2 if executed[oid] == by_id[oid].qty else 1 for oid in queue]
            assert states == sorted(states, reverse=True) and states.count(1) <= 1, (side, states)
    assert len(set(outputs)) == 1  # both implementations agree


phase_commands = st.lists(
    st.one_of(
        st.tuples(st.just("order"), st.sampled_from(Side), st.integers(97, 103), st.integers(1, 5),
                  st.sampled_from(("p1", "p2", "p3")), st.sampled_from((TimeInForce.GTC, TimeInForce.GTD,
                                                                        TimeInForce.IOC))),
        st.tuples(st.just("cancel"), st.integers(1, 40), st.sampled_from(("p1", "p2", "p3"))),
        st.tuples(st.just("status"), st.sampled_from((InstrumentStatus.CALL, InstrumentStatus.OPEN,
                                                      InstrumentStatus.HALTED))),
        st.tuples(st.just("uncross"), st.none() | st.integers(95, 105),
                  st.sampled_from((InstrumentStatus.OPEN, InstrumentStatus.CALL))),
        st.tuples(st.just("time"), st.integers(0, 6)),
    ),
    max_size=60,
)


def _commands(plan: list[tuple[Any, ...]]) -> list[Command]:
    out: list[Command] = [AddInstrument(ts=1, spec=InstrumentSpec(symbol=SYM, tick_size=1, lot_size=1))]
    ts = 1
    for step in plan:
        ts += 1
        kind = step[0]
        if kind == "order":
            _, side, price, qty, who, tif = step
            out.append(NewOrder(ts=ts, participant=who, symbol=SYM, side=side, qty=qty, price=price, tif=tif,
                                expire_ts=ts + 4 if tif is TimeInForce.GTD else None))
        elif kind == "cancel":
            out.append(CancelOrder(ts=ts, participant=step[2], order_id=step[1]))
        elif kind == "status":
            out.append(SetInstrumentStatus(ts=ts, symbol=SYM, status=step[1]))
        elif kind == "uncross":
            out.append(Uncross(ts=ts, symbol=SYM, reference_price=step[1], then=step[2]))
        else:
            ts += step[1]
            out.append(AdvanceTime(ts=ts))
    return out


@SETTINGS
@given(plan=phase_commands, cut=st.integers(0, 60))
def test_replay_with_phase_changes_is_deterministic_across_implementations(plan: list[tuple[Any, ...]],
                                                                          cut: int) -> None:
    commands = _commands(plan)
    cut = min(cut, len(commands))
    first = IMPLS[0]()
    reference = [repr(r) for r in first.process_many(commands)]
    snapshot = json.dumps(first.snapshot())
    for cls in IMPLS:
        for other in IMPLS:
            engine = cls()
            head = [repr(engine.process(c)) for c in commands[:cut]]
            engine = other.from_snapshot(json.loads(json.dumps(engine.snapshot())))  # continue in the other one
            tail = [repr(r) for r in engine.process_many(commands[cut:])]
            assert head + tail == reference
            assert json.dumps(engine.snapshot()) == snapshot
            engine.validate()


def test_the_properties_run_on_both_implementations() -> None:
    if "compiled" not in implementations():
        pytest.skip("compiled core not built")
    assert len(IMPLS) == 2
