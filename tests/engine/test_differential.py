"""Differential test: the compiled engine against the pure-Python reference.

Seeded random command streams that reach every rejection path, every STP mode, GTD expiry (by
matching, by ``AdvanceTime``, by cancel/amend), amends of every kind, halts, closes, mass cancels,
stale and malformed timestamps and odd field types go into both implementations; every result
(code, order id and the full event stream, compared by ``repr`` so enum vs int differences count)
and the snapshots must be identical. At checkpoints each engine is replaced by the other
implementation's restore of its snapshot (cross-restore), and the stream goes on. The reference is
fed command by command, the compiled engine through ``process_many`` in uneven batches.
"""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

import pytest

from engine import (
    AddInstrument,
    AdvanceTime,
    AmendOrder,
    CancelOrder,
    CancelReason,
    Command,
    Cross,
    Engine,
    Fill,
    InstrumentSpec,
    InstrumentStatus,
    MassCancel,
    NewOrder,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
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
    implementations,
)

COMPILED = implementations().get("compiled")
pytestmark = pytest.mark.skipif(COMPILED is None, reason="compiled core not built")
PER_IMPLEMENTATION = False  # compares both itself

SYMBOLS = ("AAA", "BBB", "CCC")
PARTICIPANTS = ("p1", "p2", "p3", "p4")
ODD_INTS: tuple[Any, ...] = (0, -1, 10**30, -(10**30), 2**63, 1.5, "7", None, True)


class Stream:
    """A random command generator that tracks the order ids it has seen, to address live orders."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ts = 1_000
        self.ids: list[int] = []
        self.owner: dict[int, str] = {}

    def tick(self) -> Any:
        r = self.rng.random()
        if r < 0.02:
            return self.ts - self.rng.randrange(1, 5)  # stale
        if r < 0.025:
            return self.rng.choice(("x", 1.0, None, 2**64))  # malformed
        self.ts += self.rng.choice((0, 0, 1, 1, 2, 5))
        return self.ts

    def odd(self, normal: Any) -> Any:
        return self.rng.choice(ODD_INTS) if self.rng.random() < 0.06 else normal

    def spec(self, symbol: str) -> InstrumentSpec:
        rng = self.rng
        fields: dict[str, Any] = {"tick_size": 1, "lot_size": 1, "min_qty": 1, "max_qty": 40,
                                  "band_low": 90, "band_high": 110}
        if rng.random() < 0.3:
            key = rng.choice(list(fields))
            fields[key] = rng.choice((0, -3, 2**41, 2**54, 10**30, "1", 5, 10**18))
        return InstrumentSpec(symbol=symbol, status=rng.choice((InstrumentStatus.OPEN, InstrumentStatus.PRE_OPEN)),
                              **fields)

    def live_id(self) -> Any:
        if self.ids and self.rng.random() < 0.85:
            return self.rng.choice(self.ids[-60:])
        return self.odd(self.rng.randrange(0, 400))

    def command(self) -> Command:
        rng = self.rng
        roll = rng.random()
        participant = rng.choice(PARTICIPANTS)
        symbol = rng.choice(SYMBOLS) if rng.random() > 0.04 else rng.choice(("NOPE", "DDD"))
        if roll < 0.45:
            order_type = OrderType.MARKET if rng.random() < 0.1 else OrderType.LIMIT
            tif = rng.choice((TimeInForce.GTC,) * 4 + (TimeInForce.GTD,) * 2 + (TimeInForce.IOC, TimeInForce.FOK))
            price: Any = rng.randrange(92, 109)
            if order_type is OrderType.MARKET and rng.random() < 0.5:
                price = None
            ts = self.tick()
            expire: Any = None
            if tif is TimeInForce.GTD or rng.random() < 0.03:
                expire = (ts if isinstance(ts, int) else self.ts) + rng.choice((-1, 0, 1, 2, 3, 8, 30))
            return NewOrder(
                ts=ts, participant=participant, symbol=symbol, side=rng.choice((Side.BUY, Side.SELL)),
                qty=self.odd(rng.randrange(1, 15) if rng.random() > 0.03 else rng.choice((41, 0))),
                price=self.odd(price if rng.random() > 0.03 else rng.choice((None, 80, 120))),
                order_type=order_type if rng.random() > 0.01 else 2, tif=tif if rng.random() > 0.01 else 1,  # type: ignore[arg-type]
                expire_ts=self.odd(expire), post_only=rng.random() < 0.1 if rng.random() > 0.01 else 1,  # type: ignore[arg-type]
                stp=rng.choice(list(StpMode)), client_order_id=rng.choice(("", "c1", "c2")),
                session=rng.choice(("", "s1", "s2")))
        if roll < 0.70:
            oid = self.live_id()
            who = self.owner.get(oid, participant) if rng.random() < 0.9 else participant
            return AmendOrder(ts=self.tick(), participant=who, order_id=oid,
                              price=self.odd(rng.choice((None, rng.randrange(90, 111)))),
                              qty=self.odd(rng.choice((None, rng.randrange(1, 20)))))
        if roll < 0.85:
            oid = self.live_id()
            who = self.owner.get(oid, participant) if rng.random() < 0.9 else participant
            return CancelOrder(ts=self.tick(), participant=who, order_id=oid)
        if roll < 0.89:
            mass = MassCancel(ts=self.tick(), participant=participant,
                              symbol=rng.choice((None, *SYMBOLS, "NOPE")),
                              side=rng.choice((None, Side.BUY, Side.SELL)), session=rng.choice((None, "", "s1")),
                              reason=rng.choice((CancelReason.MASS_CANCEL, CancelReason.DISCONNECT, 2, "x")))  # type: ignore[arg-type]
            if mass.reason is CancelReason.MASS_CANCEL and mass.session is None:  # the maturity close's reason,
                mass = dataclasses.replace(mass, reason=CancelReason.INSTRUMENT_MATURED)  # no extra draw
            return mass
        if roll < 0.91:
            buyer = participant if rng.random() > 0.9 else rng.choice(PARTICIPANTS)
            return Cross(ts=self.tick(), symbol=symbol, buyer=buyer, seller=participant,
                         price=self.odd(rng.randrange(88, 113)), qty=self.odd(rng.randrange(1, 45)),
                         origin=rng.choice((*TradeOrigin, 3)),  # type: ignore[arg-type]
                         buy_client_order_id=rng.choice(("", "b1")), sell_client_order_id=rng.choice(("", "s1")))
        if roll < 0.95:
            ts = self.ts + rng.choice((-2, 0, 1, 3, 10)) if rng.random() > 0.02 else "x"
            if isinstance(ts, int) and ts > self.ts:
                self.ts = ts
            return AdvanceTime(ts=ts)  # type: ignore[arg-type]
        if roll < 0.97:
            status = rng.choice((InstrumentStatus.OPEN,) * 3 + (InstrumentStatus.HALTED,) * 2
                                + (InstrumentStatus.CALL,) * 3 + (InstrumentStatus.PRE_OPEN, InstrumentStatus.CLOSED))
            return SetInstrumentStatus(ts=self.tick(), symbol=symbol, status=status if rng.random() > 0.02 else 2)  # type: ignore[arg-type]
        if roll < 0.99:
            then: Any = rng.choice((InstrumentStatus.OPEN,) * 3 + (InstrumentStatus.CALL,) * 2)
            if rng.random() < 0.04:
                then = rng.choice((InstrumentStatus.HALTED, 2))
            return Uncross(ts=self.tick(), symbol=symbol, then=then,
                           reference_price=self.odd(rng.choice((None, rng.randrange(88, 113)))))
        return AddInstrument(ts=self.tick(), spec=self.spec(rng.choice((*SYMBOLS, "DDD"))))

    def learn(self, cmd: Command, result: Result) -> None:
        if isinstance(cmd, NewOrder) and result.code is ResultCode.OK and result.order_id is not None:
            self.ids.append(result.order_id)
            self.owner[result.order_id] = cmd.participant


def _same(a: Result, b: Result, where: str) -> None:
    assert repr(a) == repr(b), where
    assert a == b, where


def _check_state(ref: Engine, fast: Engine, where: str) -> None:
    snap = json.loads(json.dumps(ref.snapshot()))
    assert fast.snapshot() == snap, where
    assert (ref.seq, ref.clock) == (fast.seq, fast.clock), where
    for symbol in ref.symbols():
        assert repr(ref.l2(symbol)) == repr(fast.l2(symbol)), where
        assert repr(ref.l2(symbol, 2)) == repr(fast.l2(symbol, 2)), where
    assert repr(ref.open_orders()) == repr(fast.open_orders()), where
    assert repr(ref.open_orders("p1", "AAA")) == repr(fast.open_orders("p1", "AAA")), where
    ref.validate()
    fast.validate()


def _setup(stream: Stream) -> list[Command]:
    return [AddInstrument(ts=stream.ts, spec=InstrumentSpec(symbol=s, tick_size=1, lot_size=1, max_qty=40,
                                                            min_qty=2 if s == "CCC" else 1, band_low=90,
                                                            band_high=110)) for s in SYMBOLS]


@pytest.mark.parametrize("seed", range(12))
def test_compiled_engine_matches_reference(seed: int) -> None:
    assert COMPILED is not None
    stream = Stream(seed)
    ref: Engine = ReferenceEngine()
    fast: Engine = COMPILED()
    for cmd in _setup(stream):
        _same(ref.process(cmd), fast.process(cmd), "setup")
    for step in range(16):
        batch = [stream.command()]
        results: list[Result] = []
        while len(batch) < 1 + stream.rng.randrange(300):  # the generator learns ids from the reference
            results.append(ref.process(batch[-1]))
            stream.learn(batch[-1], results[-1])
            batch.append(stream.command())
        results.append(ref.process(batch[-1]))
        stream.learn(batch[-1], results[-1])
        out = fast.process_many(batch)
        assert len(out) == len(batch)
        for i, (cmd, expected) in enumerate(zip(batch, results, strict=True)):
            where = f"seed {seed} step {step} command {i}: {cmd!r}"
            assert out.code(i) is expected.code and out.order_id(i) == expected.order_id, where
            _same(expected, out[i], where)
        assert out.event_count() == sum(len(r.events) for r in results)
        _check_state(ref, fast, f"seed {seed} after step {step}")
        if step % 4 == 3:  # cross-restore: each engine continues from the other's snapshot
            ref, fast = ReferenceEngine.from_snapshot(fast.snapshot()), COMPILED.from_snapshot(ref.snapshot())
            _check_state(ref, fast, f"seed {seed} after cross-restore at step {step}")


def test_every_result_code_is_reached() -> None:
    """The streams above are only as good as their coverage: every result code, event kind, cancel
    reason and STP outcome (decrement amends, expiry met while matching) must occur."""
    assert COMPILED is not None
    seen: set[ResultCode] = set()
    kinds: set[str] = set()
    reasons: set[CancelReason] = set()
    decrements = expired_in_match = auction_stp = auction_expiries = 0
    origins: set[TradeOrigin] = set()
    for seed in range(12):
        stream = Stream(seed)
        fast = COMPILED()
        for cmd in _setup(stream):
            fast.process(cmd)
        for _ in range(1200):
            cmd = stream.command()
            result = fast.process(cmd)
            stream.learn(cmd, result)
            seen.add(result.code)
            kinds.update(type(e).__name__ for e in result.events)
            reasons.update(e.reason for e in result.events
                           if isinstance(e, OrderCancelled) and isinstance(e.reason, CancelReason))
            decrements += sum(isinstance(e, OrderAmended) and e.priority_kept and not isinstance(cmd, AmendOrder)
                              for e in result.events)
            expired_in_match += isinstance(cmd, NewOrder) and any(isinstance(e, OrderExpired) for e in result.events)
            origins.update(e.origin for e in result.events if isinstance(e, Fill))
            if isinstance(cmd, Uncross):
                auction_stp += sum(isinstance(e, OrderAmended) or (isinstance(e, OrderCancelled) and
                                   e.reason is CancelReason.SELF_TRADE_PREVENTION) for e in result.events)
                auction_expiries += sum(isinstance(e, OrderExpired) for e in result.events)
    assert seen == set(ResultCode)
    assert kinds == {"InstrumentAdded", "InstrumentStatusChanged", "OrderAccepted", "OrderRejected", "Fill",
                     "OrderAmended", "OrderCancelled", "OrderExpired", "BookDelta", "IndicativeUncross"}
    assert reasons == set(CancelReason)
    assert decrements > 0 and expired_in_match > 0
    assert origins == set(TradeOrigin) and auction_stp > 0 and auction_expiries > 0
