"""A local L2 book kept from the gateway's ``book`` channel, with gap detection.

Rule (see ``gateway.streams``): after a snapshot with ``md_seq = S`` the book has applied up to
``last = S``; a delta with ``md_seq <= last`` is already included and skipped; a delta whose
``prev_md_seq > last`` means a delta was missed: the book is no longer in sync.

Conflation: a client that reads too slowly gets a ``conflated`` notice instead of further deltas;
the book then waits (``synced`` false, deltas ignored) for the snapshot the server sends once the
client has caught up, which replaces it like any snapshot. No resubscribe is needed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from venueclient.errors import BookGapError

Level = tuple[Decimal, Decimal, int]  # price, qty, order count


class LocalBook:
    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.md_seq = 0
        self.status = ""
        self.synced = False
        self.snapshots = 0  # how many snapshots were applied (1 + resyncs)
        self.gaps = 0  # how many gaps were detected
        self.conflations = 0  # how many times the server paused deltas for a snapshot (slow reading)
        self._bids: dict[Decimal, tuple[Decimal, int]] = {}
        self._asks: dict[Decimal, tuple[Decimal, int]] = {}

    def apply_snapshot(self, msg: dict[str, Any]) -> None:
        self._bids = {Decimal(lv["price"]): (Decimal(lv["qty"]), int(lv["count"])) for lv in msg["bids"]}
        self._asks = {Decimal(lv["price"]): (Decimal(lv["qty"]), int(lv["count"])) for lv in msg["asks"]}
        self.md_seq = int(msg["md_seq"])
        self.status = str(msg.get("status", ""))
        self.synced = True
        self.snapshots += 1

    def conflate(self, msg: dict[str, Any]) -> None:
        """The server paused this book's deltas; its next snapshot brings the book up to date."""
        self.synced = False
        self.conflations += 1

    def apply_delta(self, msg: dict[str, Any]) -> bool:
        """Applies one delta; returns False when it was stale or the book awaits a snapshot.
        Raises ``BookGapError`` (and marks the book unsynced) when a delta was missed."""
        if not self.synced:
            return False
        md_seq = int(msg["md_seq"])
        if md_seq <= self.md_seq:
            return False
        if int(msg["prev_md_seq"]) > self.md_seq:
            self.synced = False
            self.gaps += 1
            raise BookGapError(f"{self.symbol}: missed deltas between md_seq {self.md_seq} and {msg['prev_md_seq']}")
        levels = self._bids if msg["side"] == "buy" else self._asks
        price, qty = Decimal(msg["price"]), Decimal(msg["qty"])
        if qty == 0:
            levels.pop(price, None)
        else:
            levels[price] = (qty, int(msg["count"]))
        self.md_seq = md_seq
        return True

    def bids(self, depth: int | None = None) -> list[Level]:
        prices = sorted(self._bids, reverse=True)[:depth]
        return [(p, *self._bids[p]) for p in prices]

    def asks(self, depth: int | None = None) -> list[Level]:
        prices = sorted(self._asks)[:depth]
        return [(p, *self._asks[p]) for p in prices]

    def best_bid(self) -> Level | None:
        levels = self.bids(1)
        return levels[0] if levels else None

    def best_ask(self) -> Level | None:
        levels = self.asks(1)
        return levels[0] if levels else None

    def as_levels(self) -> tuple[list[Level], list[Level]]:
        return self.bids(), self.asks()
