"""Hand-built engine events with increasing sequence numbers (the engine itself is not needed)."""

from __future__ import annotations

from engine import (
    CancelReason,
    Fill,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderType,
    ResultCode,
    Side,
    TimeInForce,
)
from tests.compliance.world import SYMBOL


class EventMaker:
    def __init__(self) -> None:
        self.seq = 0
        self.trade_id = 0

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def accepted(self, order_id: int, participant: str, side: Side, qty: int, price: int | None,
                 symbol: str = SYMBOL) -> OrderAccepted:
        return OrderAccepted(seq=self._next(), ts=0, order_id=order_id, client_order_id="", participant=participant,
                             session="", symbol=symbol, side=side, order_type=OrderType.LIMIT,
                             tif=TimeInForce.GTC, price=price, qty=qty, expire_ts=None, post_only=False)

    def fill(self, *, maker: tuple[int, str, int], taker: tuple[int, str, int], aggressor: Side, price: int,
             qty: int, symbol: str = SYMBOL) -> Fill:
        """maker/taker: (order id, participant, remaining after this fill)."""
        self.trade_id += 1
        return Fill(seq=self._next(), md_seq=0, ts=0, trade_id=self.trade_id, symbol=symbol, price=price, qty=qty,
                    aggressor=aggressor, maker_order_id=maker[0], maker_participant=maker[1],
                    maker_remaining=maker[2], taker_order_id=taker[0], taker_participant=taker[1],
                    taker_remaining=taker[2])

    def cancelled(self, order_id: int, participant: str, side: Side, remaining: int) -> OrderCancelled:
        return OrderCancelled(seq=self._next(), ts=0, order_id=order_id, participant=participant, symbol=SYMBOL,
                              side=side, remaining=remaining, reason=CancelReason.USER)

    def expired(self, order_id: int, participant: str, side: Side, remaining: int) -> OrderExpired:
        return OrderExpired(seq=self._next(), ts=0, order_id=order_id, participant=participant, symbol=SYMBOL,
                            side=side, remaining=remaining)

    def amended(self, order_id: int, participant: str, side: Side, price: int, qty: int,
                remaining: int) -> OrderAmended:
        return OrderAmended(seq=self._next(), ts=0, order_id=order_id, participant=participant, symbol=SYMBOL,
                            side=side, price=price, qty=qty, remaining=remaining, priority_kept=False)

    def rejected(self, participant: str, order_id: int | None, code: ResultCode) -> OrderRejected:
        return OrderRejected(seq=self._next(), ts=0, participant=participant, client_order_id="", symbol=SYMBOL,
                             order_id=order_id, code=code)
