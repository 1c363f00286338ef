"""The demo's market maker only sends amends the venue accepts (issue 19: ``AMEND_QTY_TOO_LOW`` was
most of the demo's rejections): a fake stream that fills resting quotes between rounds and applies
the engine's amend rule (new total quantity above the filled quantity)."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from venue.bots import CallTrader, MarketMaker
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


class CallBook:
    """A call's book for one participant: orders rest (nothing matches until the uncross); with
    ``uncross_after_listing`` an uncross fills the oldest order right after the bot listed its orders."""

    def __init__(self) -> None:
        self.orders: dict[int, tuple[str, int, Decimal]] = {}
        self.placed: list[tuple[str, int, Decimal, str]] = []
        self.next_id = 1
        self.uncross_after_listing = False
        self.cancel_refused = 0

    async def my_orders(self, symbol: str) -> list[dict[str, Any]]:
        listed = [{"order_id": str(i)} for i in self.orders]
        if self.uncross_after_listing and self.orders:
            del self.orders[min(self.orders)]
        return listed

    async def place(self, symbol: str, side: str, qty: int, price: Decimal, *, tif: str) -> dict[str, Any]:
        self.placed.append((side, qty, price, tif))
        self.orders[self.next_id] = (side, qty, price)
        self.next_id += 1
        return {"order_id": str(self.next_id - 1)}

    async def cancel(self, order_id: int) -> dict[str, Any]:
        if self.orders.pop(order_id, None) is None:
            self.cancel_refused += 1
            raise ApiError("UNKNOWN_ORDER", "gone", status=404)
        return {}


async def test_the_call_trader_places_overlapping_gtc_limits_and_keeps_few_resting() -> None:
    book = CallBook()
    trader = CallTrader(client=book, symbol="OMN-C", fair=Decimal("42000"), increment=Decimal("0.01"),  # type: ignore[arg-type]
                        max_open=4, spread_bps=30, seed=5)
    for round_no in range(300):
        book.uncross_after_listing = round_no % 7 == 0
        await trader._act()
        assert len(book.orders) <= 4
    assert book.cancel_refused > 0  # the bot cancelled an order the uncross had filled: not an error
    assert trader.stats.rejected == 0 and trader.stats.orders == 300
    assert {tif for *_, tif in book.placed} == {"gtc"}  # IOC/FOK are refused in a call
    assert {side for side, *_ in book.placed} == {"buy", "sell"}
    buys = [p for side, _, p, _ in book.placed if side == "buy"]
    sells = [p for side, _, p, _ in book.placed if side == "sell"]
    assert max(buys) > min(sells)  # bids and offers overlap: the uncross executes
    assert all(p == p.quantize(Decimal("0.01")) for _, _, p, _ in book.placed)
