"""Hypothesis state machine over the engine: after every step the book invariants hold, and every
event stream obeys conservation, price-time priority, FOK all-or-nothing and STP rules. At the end
the whole command stream is replayed into a fresh engine and must give the identical events
(the machine also swaps in snapshot-restored engines mid-stream, so this checks restore too; each
snapshot also goes through the other implementation). The machine runs once per implementation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engine import (
    AddInstrument,
    AdvanceTime,
    AmendOrder,
    BookDelta,
    CancelOrder,
    Command,
    CompiledEngine,
    Engine,
    Event,
    Fill,
    IndicativeUncross,
    InstrumentStatus,
    InstrumentStatusChanged,
    MassCancel,
    NewOrder,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderType,
    ReferenceEngine,
    Result,
    ResultCode,
    SetInstrumentStatus,
    Side,
    StpMode,
    TimeInForce,
    TradeOrigin,
    Uncross,
)
from tests.engine.helpers import spec

SYMBOLS = ("AAA", "BBB")
PARTICIPANTS = ("p1", "p2", "p3")


@dataclass
class Ledger:
    """What the events said about one order."""

    symbol: str
    participant: str
    side: Side
    qty: int
    tif: TimeInForce
    market: bool
    limit: int | None
    expire_ts: int | None
    filled: int = 0
    closed: int = 0  # cancelled + expired quantity
    open: bool = True
    fills: list[int] = field(default_factory=list)


class EngineMachine(RuleBasedStateMachine):
    engine_cls: type[Engine] = ReferenceEngine
    other_cls: type[Engine] | None = CompiledEngine

    def __init__(self) -> None:
        super().__init__()
        self.engine = self.engine_cls()
        self.ts = 1_000
        self.commands: list[Command] = []
        self.events: list[Event] = []
        self.ledger: dict[int, Ledger] = {}
        self.md_seq = dict.fromkeys(SYMBOLS, 0)
        for symbol in SYMBOLS:
            self._run(AddInstrument(ts=self.ts, spec=spec(symbol, min_qty=1, max_qty=50, band_low=90,
                                                          band_high=110)))

    # ------------------------------------------------------------ plumbing

    def _run(self, cmd: Command) -> Result:
        seq_before = self.engine.seq
        result = self.engine.process(cmd)
        self.commands.append(cmd)
        self.events.extend(result.events)
        assert [e.seq for e in result.events] == list(range(seq_before + 1, seq_before + 1 + len(result.events)))
        if result.code is not ResultCode.OK and isinstance(cmd, NewOrder | AmendOrder | CancelOrder | MassCancel):
            own = [e for e in result.events if not isinstance(e, IndicativeUncross)]  # indications come last
            assert result.events[:len(own)] == tuple(own)
            assert isinstance(own[-1], OrderRejected) and own[-1].code is result.code
            assert sum(isinstance(e, OrderRejected) for e in result.events) == 1
        for event in result.events:
            self._apply(event)
        return result

    def _apply(self, e: Event) -> None:
        if isinstance(e, BookDelta | Fill | InstrumentStatusChanged | IndicativeUncross):
            assert e.md_seq == self.md_seq[e.symbol] + 1, "md_seq gap"
            self.md_seq[e.symbol] = e.md_seq
        if isinstance(e, Fill):
            assert e.maker_participant != e.taker_participant, "self-trade"
            for oid, remaining in ((e.maker_order_id, e.maker_remaining), (e.taker_order_id, e.taker_remaining)):
                entry = self.ledger[oid]
                assert entry.open
                entry.filled += e.qty
                entry.fills.append(e.trade_id)
                assert entry.qty == entry.filled + remaining, f"conservation broken for {oid}"
                entry.open = remaining > 0
            maker = self.ledger[e.maker_order_id]
            assert maker.expire_ts is None or maker.expire_ts > e.ts, "expired order traded"
            taker = self.ledger[e.taker_order_id]
            if taker.limit is not None:
                assert e.price <= taker.limit if taker.side is Side.BUY else e.price >= taker.limit
            if e.origin is TradeOrigin.AUCTION:  # both orders rested through the call: both limits hold
                assert maker.limit is not None
                assert e.price <= maker.limit if maker.side is Side.BUY else e.price >= maker.limit
                assert e.taker_order_id > e.maker_order_id
        elif isinstance(e, OrderAccepted):
            assert e.order_id not in self.ledger
            limit = e.price
            self.ledger[e.order_id] = Ledger(
                symbol=e.symbol, participant=e.participant, side=e.side, qty=e.qty, tif=e.tif,
                market=e.order_type is OrderType.MARKET, limit=limit, expire_ts=e.expire_ts)
        elif isinstance(e, OrderCancelled | OrderExpired):
            entry = self.ledger[e.order_id]
            assert entry.open
            entry.open = False
            entry.closed += e.remaining
            assert entry.qty == entry.filled + entry.closed, f"conservation broken for {e.order_id}"
        elif isinstance(e, OrderAmended):
            entry = self.ledger[e.order_id]
            assert entry.open and e.qty == entry.filled + e.remaining
            entry.qty = e.qty
            entry.limit = e.price

    def _tick(self, dt: int) -> int:
        """Move the clock on by ``dt``; a negative ``dt`` gives a stale timestamp and moves nothing."""
        if dt < 0:
            return self.ts + dt
        self.ts += dt
        return self.ts

    def _priority(self) -> dict[int, int]:
        """Resting order id -> rank in its side's priority order (from the snapshot's exact order)."""
        ranks: dict[int, int] = {}
        for item in self.engine.snapshot()["instruments"]:
            for rank, row in enumerate(item["orders"]):
                ranks[row["order_id"]] = rank
        return ranks

    def _check_priority(self, before: dict[int, int], result: Result) -> None:
        fills = [e for e in result.events if isinstance(e, Fill)]
        if not fills:
            return
        ranks = [before[f.maker_order_id] for f in fills]
        assert ranks == sorted(ranks), "fills out of priority order"
        last = fills[-1]
        maker = self.ledger[last.maker_order_id]
        gone = {e.order_id for e in result.events if isinstance(e, OrderCancelled | OrderExpired)}
        gone |= {f.maker_order_id for f in fills if f.maker_remaining == 0}
        for oid, rank in before.items():
            other = self.ledger[oid]
            if other.symbol == maker.symbol and other.side is maker.side and rank < ranks[-1]:
                assert oid in gone, f"order {oid} was ahead of {last.maker_order_id} and is still open"

    # ------------------------------------------------------------ rules

    @st.composite
    @staticmethod
    def _valid_order(draw: st.DrawFn) -> dict[str, object]:
        """Mostly well-formed orders so that the book fills up and trades."""
        order_type = draw(st.sampled_from([OrderType.LIMIT] * 6 + [OrderType.MARKET]))
        if order_type is OrderType.MARKET:
            tif = draw(st.sampled_from([TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK]))
            price = draw(st.one_of(st.none(), st.integers(90, 110)))
        else:
            tif = draw(st.sampled_from([TimeInForce.GTC] * 4 + [TimeInForce.GTD] * 2 + [TimeInForce.IOC,
                                                                                       TimeInForce.FOK]))
            price = draw(st.integers(97, 103))
        post_only = tif in (TimeInForce.GTC, TimeInForce.GTD) and order_type is OrderType.LIMIT and draw(
            st.integers(0, 5)) == 0
        return {
            "order_type": order_type, "tif": tif, "price": price, "post_only": post_only,
            "qty": draw(st.integers(1, 12)),
            "expiry": draw(st.integers(1, 5)) if tif is TimeInForce.GTD else None,
        }

    @st.composite
    @staticmethod
    def _any_order(draw: st.DrawFn) -> dict[str, object]:
        """Anything, mostly invalid: every validation path gets hit."""
        return {
            "order_type": draw(st.sampled_from(OrderType)), "tif": draw(st.sampled_from(TimeInForce)),
            "price": draw(st.one_of(st.none(), st.integers(-1, 115))), "post_only": draw(st.booleans()),
            "qty": draw(st.integers(-1, 60)), "expiry": draw(st.one_of(st.none(), st.integers(-2, 12))),
        }

    def _new(self, dt: int, symbol: str, participant: str, side: Side, stp: StpMode, o: dict[str, object]) -> None:
        ts = self._tick(dt)
        before = self._priority()
        expiry = o["expiry"]
        cmd = NewOrder(ts=ts, participant=participant, symbol=symbol, side=side, qty=o["qty"],  # type: ignore[arg-type]
                       price=o["price"], order_type=o["order_type"], tif=o["tif"],  # type: ignore[arg-type]
                       expire_ts=None if expiry is None else ts + expiry,  # type: ignore[operator]
                       post_only=o["post_only"], stp=stp)  # type: ignore[arg-type]
        result = self._run(cmd)
        if result.code is not ResultCode.OK:
            assert result.order_id is None and len(result.events) == 1
            return
        oid = result.order_id
        assert oid is not None
        self._check_priority(before, result)
        entry = self.ledger[oid]
        if cmd.order_type is OrderType.MARKET or cmd.tif in (TimeInForce.IOC, TimeInForce.FOK):
            assert self.engine.order(oid) is None, "an IOC/FOK/market order rests"
        if cmd.tif is TimeInForce.FOK:
            assert entry.filled == cmd.qty and entry.closed == 0, "FOK not all-or-nothing"
        if cmd.post_only:
            assert not [e for e in result.events if isinstance(e, Fill)], "post-only traded"

    @rule(dt=st.integers(0, 2), symbol=st.sampled_from(SYMBOLS), participant=st.sampled_from(PARTICIPANTS),
          side=st.sampled_from(Side), stp=st.sampled_from(StpMode), o=_valid_order())
    def new_order(self, dt: int, symbol: str, participant: str, side: Side, stp: StpMode,
                  o: dict[str, object]) -> None:
        self._new(dt, symbol, participant, side, stp, o)

    @rule(burst=st.lists(st.tuples(st.sampled_from(PARTICIPANTS), st.sampled_from(Side), st.sampled_from(StpMode),
                                    _valid_order()), min_size=1, max_size=8))
    def order_burst(self, burst: list[tuple[str, Side, StpMode, dict[str, object]]]) -> None:
        for participant, side, stp, o in burst:
            self._new(0, SYMBOLS[0], participant, side, stp, o)

    @rule(dt=st.integers(-1, 3), symbol=st.sampled_from((*SYMBOLS, "NOPE")),
          participant=st.sampled_from(PARTICIPANTS), side=st.sampled_from(Side), stp=st.sampled_from(StpMode),
          o=_any_order())
    def odd_order(self, dt: int, symbol: str, participant: str, side: Side, stp: StpMode,
                  o: dict[str, object]) -> None:
        self._new(dt, symbol, participant, side, stp, o)

    def _some_order(self, data: st.DataObject) -> int:
        open_ids = sorted(oid for oid, entry in self.ledger.items() if entry.open)
        return data.draw(st.one_of(st.sampled_from(open_ids), st.integers(0, 200)) if open_ids else st.integers(0, 9))

    @rule(data=st.data(), dt=st.integers(0, 3), participant=st.sampled_from(PARTICIPANTS), owner=st.booleans())
    def cancel(self, data: st.DataObject, dt: int, participant: str, owner: bool) -> None:
        oid = self._some_order(data)
        entry = self.ledger.get(oid)
        who = entry.participant if owner and entry is not None else participant
        result = self._run(CancelOrder(ts=self._tick(dt), participant=who, order_id=oid))
        if result.code is ResultCode.OK:
            assert self.engine.order(oid) is None

    @rule(data=st.data(), dt=st.integers(0, 3), price=st.one_of(st.none(), st.integers(88, 112)),
          qty=st.one_of(st.none(), st.integers(0, 15)))
    def amend(self, data: st.DataObject, dt: int, price: int | None, qty: int | None) -> None:
        oid = self._some_order(data)
        entry = self.ledger.get(oid)
        who = entry.participant if entry is not None else "p1"
        before = self._priority()
        view = self.engine.order(oid)
        result = self._run(AmendOrder(ts=self._tick(dt), participant=who, order_id=oid, price=price, qty=qty))
        if result.code is not ResultCode.OK:
            return
        assert view is not None
        self._check_priority(before, result)
        amended = next(e for e in result.events if isinstance(e, OrderAmended))
        kept = (price is None or price == view.price) and (qty is None or qty < view.qty)
        assert amended.priority_kept is kept
        after = self.engine.order(oid)
        if kept:
            after_rank = self._priority()
            peers = [o for o, r in before.items() if o in after_rank and o != oid]
            ahead_before = {o for o in peers if before[o] < before[oid]}
            ahead_after = {o for o in peers if after_rank[o] < after_rank[oid]}
            assert ahead_after == ahead_before, "reduce-only amend changed priority"
        elif after is not None:
            same = [o for o in self.engine.open_orders(symbol=after.symbol)
                    if o.side is after.side and o.price == after.price]
            ranks = self._priority()
            assert max(same, key=lambda o: ranks[o.order_id]).order_id == oid, "amended order not at the back"

    @rule(dt=st.integers(0, 3), participant=st.sampled_from(PARTICIPANTS),
          symbol=st.one_of(st.none(), st.sampled_from(SYMBOLS)), side=st.one_of(st.none(), st.sampled_from(Side)))
    def mass_cancel(self, dt: int, participant: str, symbol: str | None, side: Side | None) -> None:
        result = self._run(MassCancel(ts=self._tick(dt), participant=participant, symbol=symbol, side=side))
        assert result.code is ResultCode.OK
        left = [o for o in self.engine.open_orders(participant, symbol) if side is None or o.side is side]
        assert left == []

    @rule(dt=st.integers(-2, 8))
    def advance_time(self, dt: int) -> None:
        ts = self.ts + dt
        result = self._run(AdvanceTime(ts=ts))
        if dt < 0:
            assert result.code is ResultCode.INVALID_TIME
            return
        self.ts = ts
        for view in self.engine.open_orders():
            assert view.expire_ts is None or view.expire_ts > ts, "due order survived AdvanceTime"

    @rule(symbol=st.sampled_from(SYMBOLS), status=st.sampled_from(InstrumentStatus), resume=st.booleans())
    def set_status(self, symbol: str, status: InstrumentStatus, resume: bool) -> None:
        if status is InstrumentStatus.CLOSED:
            status = InstrumentStatus.PRE_OPEN  # only an invalid transition here; closing is close_bbb
        self._run(SetInstrumentStatus(ts=self._tick(1), symbol=symbol, status=status))
        if resume and self.engine.spec(symbol).status is InstrumentStatus.HALTED:  # type: ignore[union-attr]
            self._run(SetInstrumentStatus(ts=self._tick(1), symbol=symbol, status=InstrumentStatus.OPEN))

    @rule(symbol=st.sampled_from(SYMBOLS), reference=st.none() | st.integers(85, 115),
          then=st.sampled_from((InstrumentStatus.OPEN, InstrumentStatus.CALL)))
    def uncross(self, symbol: str, reference: int | None, then: InstrumentStatus) -> None:
        in_call = self.engine.spec(symbol).status is InstrumentStatus.CALL  # type: ignore[union-attr]
        result = self._run(Uncross(ts=self._tick(1), symbol=symbol, reference_price=reference, then=then))
        assert result.code is (ResultCode.OK if in_call else ResultCode.NOT_IN_CALL)
        if in_call:
            assert self.engine.spec(symbol).status is then  # type: ignore[union-attr]
            snap = self.engine.l2(symbol)
            if snap.bids and snap.asks:
                assert snap.bids[0].price < snap.asks[0].price, "crossed after the uncross"

    @precondition(lambda self: len(self.commands) > 25 and self.engine.spec("BBB").status
                  is not InstrumentStatus.CLOSED)
    @rule()
    def close_bbb(self) -> None:
        self._run(SetInstrumentStatus(ts=self._tick(1), symbol="BBB", status=InstrumentStatus.CLOSED))
        assert self.engine.open_orders(symbol="BBB") == []

    @rule()
    def restore_from_snapshot(self) -> None:
        data = json.loads(json.dumps(self.engine.snapshot()))
        if self.other_cls is not None:  # through the other implementation and back
            twin = self.other_cls.from_snapshot(data)
            assert twin.snapshot() == data
            data = json.loads(json.dumps(twin.snapshot()))
        restored = self.engine_cls.from_snapshot(data)
        assert type(restored) is self.engine_cls and restored.snapshot() == data
        self.engine = restored

    # ------------------------------------------------------------ invariants

    @invariant()
    def book_is_valid(self) -> None:
        self.engine.validate()

    @invariant()
    def l2_matches_orders_and_is_uncrossed(self) -> None:
        for symbol in SYMBOLS:
            snap = self.engine.l2(symbol)
            agg: dict[tuple[Side, int], list[int]] = {}
            for o in self.engine.open_orders(symbol=symbol):
                cell = agg.setdefault((o.side, o.price), [0, 0])
                cell[0] += o.remaining
                cell[1] += 1
            bids = [(lv.price, lv.qty, lv.count) for lv in snap.bids]
            asks = [(lv.price, lv.qty, lv.count) for lv in snap.asks]
            assert bids == sorted(((p, q, c) for (s, p), (q, c) in agg.items() if s is Side.BUY), reverse=True)
            assert asks == sorted((p, q, c) for (s, p), (q, c) in agg.items() if s is Side.SELL)
            if bids and asks and snap.status not in (InstrumentStatus.CALL, InstrumentStatus.HALTED):
                assert bids[0][0] < asks[0][0], "crossed book"
            assert snap.md_seq == self.md_seq[symbol]

    @invariant()
    def quantity_is_conserved(self) -> None:
        open_ids = {o.order_id for o in self.engine.open_orders()}
        assert open_ids == {oid for oid, entry in self.ledger.items() if entry.open}
        for oid in open_ids:
            view = self.engine.order(oid)
            entry = self.ledger[oid]
            assert view is not None and view.qty == entry.qty == entry.filled + view.remaining

    def teardown(self) -> None:
        replay = self.engine_cls()
        events: list[Event] = []
        for cmd in self.commands:
            events.extend(replay.process(cmd).events)
        assert events == self.events, "replay gave different events"
        assert replay.snapshot() == self.engine.snapshot()
        batched = self.engine_cls()  # the same stream through the batch entry point, in uneven batches
        events = []
        for start in range(0, len(self.commands), 7):
            for result in batched.process_many(self.commands[start:start + 7]):
                events.extend(result.events)
        assert events == self.events, "process_many gave different events"
        assert batched.snapshot() == self.engine.snapshot()


class CompiledEngineMachine(EngineMachine):
    engine_cls = CompiledEngine if CompiledEngine is not None else ReferenceEngine
    other_cls = ReferenceEngine


_SETTINGS = settings(
    max_examples=100, stateful_step_count=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
EngineMachine.TestCase.settings = _SETTINGS
CompiledEngineMachine.TestCase.settings = _SETTINGS
test_engine_state_machine = EngineMachine.TestCase
test_compiled_engine_state_machine = pytest.mark.skipif(
    CompiledEngine is None, reason="compiled core not built"
)(CompiledEngineMachine.TestCase)
