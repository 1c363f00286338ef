from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from venueclient import BookGapError, LocalBook


def _snap(md_seq: int, bids: list[tuple[str, str, int]], asks: list[tuple[str, str, int]]) -> dict[str, Any]:
    return {"symbol": "X", "md_seq": md_seq, "status": "open",
            "bids": [{"price": p, "qty": q, "count": c} for p, q, c in bids],
            "asks": [{"price": p, "qty": q, "count": c} for p, q, c in asks]}


def _delta(md_seq: int, prev: int, side: str, price: str, qty: str, count: int = 1) -> dict[str, Any]:
    return {"md_seq": md_seq, "prev_md_seq": prev, "side": side, "price": price, "qty": qty, "count": count}


def test_snapshot_then_deltas() -> None:
    book = LocalBook("X")
    assert not book.apply_delta(_delta(1, 0, "buy", "1", "1"))  # nothing before a snapshot
    book.apply_snapshot(_snap(5, [("99", "1", 1), ("100", "2", 2)], [("101", "1", 1)]))
    assert book.best_bid() == (Decimal("100"), Decimal("2"), 2)
    assert not book.apply_delta(_delta(5, 3, "buy", "100", "0"))  # already in the snapshot
    assert book.apply_delta(_delta(7, 4, "sell", "102", "3"))  # md 6 was a trade: fine
    assert book.apply_delta(_delta(8, 7, "buy", "100", "0", 0))
    assert book.bids() == [(Decimal("99"), Decimal("1"), 1)]
    assert book.asks(1) == [(Decimal("101"), Decimal("1"), 1)]
    assert book.md_seq == 8


def test_gap_is_detected_and_book_waits_for_a_snapshot() -> None:
    book = LocalBook("X")
    book.apply_snapshot(_snap(5, [], []))
    book.apply_delta(_delta(6, 2, "buy", "1", "1"))
    with pytest.raises(BookGapError):
        book.apply_delta(_delta(9, 8, "buy", "2", "1"))  # the delta with md 8 never arrived
    assert not book.synced and book.gaps == 1
    assert not book.apply_delta(_delta(10, 9, "buy", "3", "1"))
    book.apply_snapshot(_snap(10, [("3", "1", 1)], []))
    assert book.synced and book.snapshots == 2
    assert book.bids() == [(Decimal("3"), Decimal("1"), 1)]
