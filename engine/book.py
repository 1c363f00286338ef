"""Mutable book internals: orders, price levels, book sides, one book per instrument.

Speed over elegance here (this is the hot path): slotted classes, an intrusive doubly linked
FIFO per price level (O(1) cancel), a dict price-key -> level plus a ``SortedList`` of keys per
side. Keys are ``price`` for asks and ``-price`` for bids, so on both sides the best level is
``keys[0]`` and "an incoming order with limit key L crosses level key k" is simply ``k <= L``.
"""

from __future__ import annotations

from sortedcontainers import SortedList

from engine.instrument import InstrumentSpec
from engine.messages import Side, StpMode, TimeInForce


class Order:
    __slots__ = (
        "accepted_ts",
        "client_order_id",
        "expire_ts",
        "key",
        "level",
        "next",
        "order_id",
        "participant",
        "post_only",
        "prev",
        "price",
        "qty",
        "remaining",
        "session",
        "side",
        "stp",
        "symbol",
        "tif",
    )

    def __init__(
        self,
        order_id: int,
        client_order_id: str,
        participant: str,
        session: str,
        symbol: str,
        side: Side,
        price: int,
        qty: int,
        remaining: int,
        tif: TimeInForce,
        expire_ts: int | None,
        accepted_ts: int,
        post_only: bool,
        stp: StpMode,
    ) -> None:
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.participant = participant
        self.session = session
        self.symbol = symbol
        self.side = side
        self.price = price  # for a market taker: its protection price
        self.key = price if side is Side.SELL else -price
        self.qty = qty  # total, including filled
        self.remaining = remaining
        self.tif = tif
        self.expire_ts = expire_ts
        self.accepted_ts = accepted_ts
        self.post_only = post_only
        self.stp = stp
        self.level: Level | None = None
        self.prev: Order | None = None
        self.next: Order | None = None


class Level:
    __slots__ = ("count", "head", "key", "price", "qty", "tail")

    def __init__(self, price: int, key: int) -> None:
        self.price = price
        self.key = key
        self.qty = 0
        self.count = 0
        self.head: Order | None = None
        self.tail: Order | None = None

    def append(self, order: Order) -> None:
        tail = self.tail
        order.prev = tail
        order.next = None
        if tail is None:
            self.head = order
        else:
            tail.next = order
        self.tail = order
        order.level = self
        self.qty += order.remaining
        self.count += 1

    def unlink(self, order: Order) -> None:
        """Remove ``order``; the caller has already taken its remaining off ``qty`` if it traded."""
        prev = order.prev
        nxt = order.next
        if prev is None:
            self.head = nxt
        else:
            prev.next = nxt
        if nxt is None:
            self.tail = prev
        else:
            nxt.prev = prev
        order.prev = order.next = None
        order.level = None
        self.qty -= order.remaining
        self.count -= 1


class BookSide:
    __slots__ = ("best", "keys", "levels", "side")

    def __init__(self, side: Side) -> None:
        self.side = side
        self.levels: dict[int, Level] = {}
        self.keys: SortedList = SortedList()
        self.best: int | None = None  # == keys[0], cached: the hot path asks for it on every order

    def add(self, order: Order) -> Level:
        key = order.key
        level = self.levels.get(key)
        if level is None:
            level = self.levels[key] = Level(order.price, key)
            self.keys.add(key)
            best = self.best
            if best is None or key < best:
                self.best = key
        level.append(order)
        return level

    def remove(self, order: Order) -> Level:
        level = order.level
        assert level is not None
        level.unlink(order)
        if not level.count:
            key = level.key
            del self.levels[key]
            keys = self.keys
            keys.remove(key)
            if key == self.best:
                self.best = keys[0] if keys else None
        return level

    def orders(self) -> list[Order]:
        """Every order of this side in priority order (best level first, FIFO inside)."""
        out: list[Order] = []
        levels = self.levels
        for key in self.keys:
            order = levels[key].head
            while order is not None:
                out.append(order)
                order = order.next
        return out


class Book:
    __slots__ = ("asks", "bids", "last_price", "md_seq", "spec")

    def __init__(self, spec: InstrumentSpec, md_seq: int = 0) -> None:
        self.spec = spec  # carries the current status
        self.md_seq = md_seq
        self.last_price: int | None = None  # of the last trade: the indicative uncross's reference
        self.bids = BookSide(Side.BUY)
        self.asks = BookSide(Side.SELL)
