"""A tiny deterministic stand-in for ``engine.Engine`` (accept, cancel, ts check, snapshot).

Enough to test the journal's contract; the same tests run against the real engine as well."""

from __future__ import annotations

from typing import Any

from engine import (
    CancelOrder,
    Command,
    NewOrder,
    OrderAccepted,
    OrderCancelled,
    Result,
    ResultCode,
)
from engine.codes import CancelReason


class FakeEngine:
    def __init__(self) -> None:
        self.seq = 0
        self.clock = 0
        self.next_order_id = 1
        self.orders: dict[int, list[Any]] = {}  # id -> [participant, symbol, side, qty, price]

    def process(self, cmd: Command) -> Result:
        if cmd.ts < self.clock:
            return Result(code=ResultCode.INVALID_TIME, events=())
        self.clock = cmd.ts
        if isinstance(cmd, NewOrder):
            oid = self.next_order_id
            self.next_order_id += 1
            self.seq += 1
            self.orders[oid] = [cmd.participant, cmd.symbol, int(cmd.side), cmd.qty, cmd.price]
            event = OrderAccepted(
                seq=self.seq,
                ts=cmd.ts,
                order_id=oid,
                client_order_id=cmd.client_order_id,
                participant=cmd.participant,
                session=cmd.session,
                symbol=cmd.symbol,
                side=cmd.side,
                order_type=cmd.order_type,
                tif=cmd.tif,
                price=cmd.price,
                qty=cmd.qty,
                expire_ts=cmd.expire_ts,
                post_only=cmd.post_only,
            )
            return Result(code=ResultCode.OK, events=(event,), order_id=oid)
        if isinstance(cmd, CancelOrder):
            order = self.orders.get(cmd.order_id)
            if order is None or order[0] != cmd.participant:
                return Result(code=ResultCode.UNKNOWN_ORDER, events=(), order_id=cmd.order_id)
            del self.orders[cmd.order_id]
            self.seq += 1
            cancelled = OrderCancelled(
                seq=self.seq,
                ts=cmd.ts,
                order_id=cmd.order_id,
                participant=cmd.participant,
                symbol=order[1],
                side=order[2],
                remaining=order[3],
                reason=CancelReason.USER,
            )
            return Result(code=ResultCode.OK, events=(cancelled,), order_id=cmd.order_id)
        return Result(code=ResultCode.OK, events=())

    def snapshot(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "clock": self.clock,
            "next_order_id": self.next_order_id,
            "orders": [[oid, *o] for oid, o in sorted(self.orders.items())],
        }

    @classmethod
    def from_snapshot(cls, state: dict[str, Any]) -> FakeEngine:
        engine = cls()
        engine.seq = state["seq"]
        engine.clock = state["clock"]
        engine.next_order_id = state["next_order_id"]
        engine.orders = {row[0]: list(row[1:]) for row in state["orders"]}
        return engine
