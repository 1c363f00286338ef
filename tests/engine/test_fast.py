"""The engine's fast message constructors build objects identical to the dataclass constructors."""

from __future__ import annotations

import dataclasses

import pytest

from engine import BookDelta, Fill, OrderAccepted, OrderRejected, Result, ResultCode, Side
from engine._fast import fast_constructor
from engine.messages import OrderType, TimeInForce

CASES: list[tuple[type, dict[str, object]]] = [
    (BookDelta, {"seq": 1, "md_seq": 2, "ts": 3, "symbol": "S", "side": Side.BUY, "price": 4, "qty": 5, "count": 6}),
    (Fill, {"seq": 1, "md_seq": 2, "ts": 3, "trade_id": 4, "symbol": "S", "price": 5, "qty": 6,
            "aggressor": Side.SELL, "maker_order_id": 7, "maker_participant": "m", "maker_remaining": 0,
            "taker_order_id": 8, "taker_participant": "t", "taker_remaining": 1}),
    (OrderAccepted, {"seq": 1, "ts": 2, "order_id": 3, "client_order_id": "c", "participant": "p", "session": "s",
                     "symbol": "S", "side": Side.BUY, "order_type": OrderType.LIMIT, "tif": TimeInForce.GTD,
                     "price": None, "qty": 4, "expire_ts": 9, "post_only": True}),
    (OrderRejected, {"seq": 1, "ts": 2, "participant": "p", "client_order_id": "", "symbol": "S", "order_id": None,
                     "code": ResultCode.UNKNOWN_ORDER}),
]


@pytest.mark.parametrize(("cls", "kwargs"), CASES)
def test_fast_constructor_equals_dataclass(cls: type, kwargs: dict[str, object]) -> None:
    fast: object = fast_constructor(cls)(**kwargs)
    slow = cls(**kwargs)
    assert type(fast) is cls and fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.seq = 99  # type: ignore[attr-defined]
    missing = dict(kwargs)
    missing.pop("seq")
    with pytest.raises(TypeError):
        fast_constructor(cls)(**missing)


def test_fast_constructor_keeps_defaults_and_refuses_non_dataclasses() -> None:
    assert fast_constructor(Result)(code=ResultCode.OK, events=()) == Result(code=ResultCode.OK, events=())
    with pytest.raises(TypeError):
        fast_constructor(int)
