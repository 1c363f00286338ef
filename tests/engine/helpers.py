"""Small builders for engine tests: a clock that ticks, order/command shorthands, event filters."""

from __future__ import annotations

from typing import Any, TypeVar

from engine import (
    AddInstrument,
    AmendOrder,
    CancelOrder,
    Engine,
    Event,
    InstrumentSpec,
    InstrumentStatus,
    NewOrder,
    OrderType,
    Result,
    ResultCode,
    Side,
    StpMode,
    TimeInForce,
)

SYM = "OMN-A"
E = TypeVar("E")


def spec(symbol: str = SYM, **kw: Any) -> InstrumentSpec:
    fields: dict[str, Any] = {"tick_size": 10, "lot_size": 1000, "min_qty": 1, "max_qty": 1000,
                              "band_low": 1, "band_high": 10_000}
    fields.update(kw)
    return InstrumentSpec(symbol=symbol, **fields)


class Venue:
    """An engine plus a ticking clock, so tests say only what matters."""

    def __init__(self, engine: Engine | None = None, *, ts: int = 1000) -> None:
        self.engine = engine if engine is not None else Engine()
        self.ts = ts

    def tick(self) -> int:
        self.ts += 1
        return self.ts

    def add(self, symbol: str = SYM, **kw: Any) -> Result:
        return self.engine.process(AddInstrument(ts=self.tick(), spec=spec(symbol, **kw)))

    def buy(self, qty: int, price: int | None, participant: str = "alice", **kw: Any) -> Result:
        return self.order(Side.BUY, qty, price, participant, **kw)

    def sell(self, qty: int, price: int | None, participant: str = "bob", **kw: Any) -> Result:
        return self.order(Side.SELL, qty, price, participant, **kw)

    def order(self, side: Side, qty: int, price: int | None, participant: str, *, symbol: str = SYM,
              order_type: OrderType = OrderType.LIMIT, tif: TimeInForce = TimeInForce.GTC,
              expire_ts: int | None = None, post_only: bool = False,
              stp: StpMode = StpMode.CANCEL_NEWEST, session: str = "", client_order_id: str = "") -> Result:
        return self.engine.process(NewOrder(
            ts=self.tick(), participant=participant, symbol=symbol, side=side, qty=qty, price=price,
            order_type=order_type, tif=tif, expire_ts=expire_ts, post_only=post_only, stp=stp,
            session=session, client_order_id=client_order_id))

    def cancel(self, order_id: int, participant: str) -> Result:
        return self.engine.process(CancelOrder(ts=self.tick(), participant=participant, order_id=order_id))

    def amend(self, order_id: int, participant: str, *, price: int | None = None, qty: int | None = None) -> Result:
        return self.engine.process(AmendOrder(ts=self.tick(), participant=participant, order_id=order_id,
                                              price=price, qty=qty))

    def book(self, symbol: str = SYM) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        snap = self.engine.l2(symbol)
        return ([(lv.price, lv.qty, lv.count) for lv in snap.bids], [(lv.price, lv.qty, lv.count) for lv in snap.asks])


def of(result: Result | tuple[Event, ...], kind: type[E]) -> list[E]:
    events = result.events if isinstance(result, Result) else result
    return [e for e in events if isinstance(e, kind)]


def kinds(result: Result) -> list[str]:
    return [type(e).__name__ for e in result.events]


def ok(result: Result) -> Result:
    assert result.code is ResultCode.OK, result
    return result


OPEN = InstrumentStatus.OPEN
