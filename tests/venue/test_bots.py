"""The demo's market maker only sends amends the venue accepts (issue 19: ``AMEND_QTY_TOO_LOW`` was
most of the demo's rejections): a fake stream that fills resting quotes between rounds and applies
the engine's amend rule (new total quantity above the filled quantity)."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from venue.bots import MarketMaker
from venueclient import ApiError


class FillingStream:
    """Quotes rest; between rounds the 'market' fills part of some of them."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.orders: dict[int, list[int]] = {}  # id -> [qty, filled]
        self.next_id = 1
        self.rejections: dict[str, int] = {}

    async def place(self, symbol: str, side: str, qty: int, price: Decimal, **_: Any) -> dict[str, Any]:
        self.orders[self.next_id] = [qty, 0]
        self.next_id += 1
        return {"order_id": str(self.next_id - 1), "qty": str(qty), "filled_qty": "0"}

    async def amend(self, order_id: int, *, price: Decimal, qty: int) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None:
            self.rejections["UNKNOWN_ORDER"] = self.rejections.get("UNKNOWN_ORDER", 0) + 1
            raise ApiError("UNKNOWN_ORDER", "gone", status=404)
        if qty <= order[1]:
            self.rejections["AMEND_QTY_TOO_LOW"] = self.rejections.get("AMEND_QTY_TOO_LOW", 0) + 1
            raise ApiError("AMEND_QTY_TOO_LOW", "new quantity must be above the filled quantity", status=422)
        order[0] = qty
        return {"order_id": str(order_id), "qty": str(qty), "filled_qty": str(order[1])}

    async def cancel(self, order_id: int) -> dict[str, Any]:
        self.orders.pop(order_id, None)
        return {}

    async def mass_cancel(self, symbol: str) -> list[int]:
        ids = list(self.orders)
        self.orders.clear()
        return ids

    def trade(self, report: float) -> list[dict[str, Any]]:
        """Fill some quotes; the fills messages of a ``report`` share of them reach the bot in time."""
        seen = []
        for order_id, order in list(self.orders.items()):
            if self.rng.random() < 0.5:
                order[1] += self.rng.randint(1, order[0] - order[1])
                if self.rng.random() < report:
                    seen.append({"channel": "fills", "order_id": order_id, "remaining_qty": str(order[0] - order[1])})
                if order[1] >= order[0]:
                    del self.orders[order_id]  # fully filled: off the book
        return seen


async def test_the_market_maker_never_amends_below_the_filled_quantity() -> None:
    stream = FillingStream(seed=7)
    mm = MarketMaker(client=None, symbol="OMN", fair=Decimal("45000"), increment=Decimal("0.01"),  # type: ignore[arg-type]
                     seed=3)
    for _ in range(200):
        await mm._requote(stream)  # type: ignore[arg-type]
        stream.trade(report=0.0)  # fills unseen: the amend rule alone must hold
    assert stream.rejections.get("AMEND_QTY_TOO_LOW", 0) == 0
    assert mm.stats.reject_codes.get("AMEND_QTY_TOO_LOW", 0) == 0
    assert mm.stats.orders > 1_000


async def test_a_market_maker_that_sees_its_fills_never_amends_a_filled_quote() -> None:
    stream = FillingStream(seed=8)
    mm = MarketMaker(client=None, symbol="OMN", fair=Decimal("45000"), increment=Decimal("0.01"),  # type: ignore[arg-type]
                     seed=4)
    for _ in range(200):
        await mm._requote(stream)  # type: ignore[arg-type]
        mm.absorb(stream.trade(report=1.0))
    assert stream.rejections == {}
    assert mm.stats.rejected == 0


def test_post_only_quotes_stay_inside_the_other_side() -> None:
    mm = MarketMaker(client=None, symbol="OMN", fair=Decimal("45000"), increment=Decimal("0.01"))  # type: ignore[arg-type]
    best_bid, best_ask = (Decimal("44990.00"), Decimal(1), 1), (Decimal("45010.00"), Decimal(1), 1)
    assert mm._passive("buy", Decimal("45020.00"), best_bid, best_ask) == Decimal("45009.99")
    assert mm._passive("sell", Decimal("44980.00"), best_bid, best_ask) == Decimal("44990.01")
    assert mm._passive("buy", Decimal("44900.00"), best_bid, best_ask) == Decimal("44900.00")
    assert mm._passive("sell", Decimal("45000.00"), None, None) == Decimal("45000.00")
