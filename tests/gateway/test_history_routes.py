"""History routes over the fake venue: paging by ``Next-Cursor``, time windows, bad cursors, and
``GET /v1/orders/{id}`` for orders that left the book."""

from __future__ import annotations

import pytest

from tests.gateway.fakes import FakeVenue
from venueclient import ApiError, VenueClient


async def _trade(alice: VenueClient, bob: VenueClient, n: int) -> None:
    for i in range(n):
        await alice.place("OMN-A", "sell", "1", f"{100 + i}")
        await bob.place("OMN-A", "buy", "1", f"{100 + i}", tif="ioc")


async def test_fills_are_paged_newest_first_by_cursor(alice: VenueClient, bob: VenueClient) -> None:
    await _trade(alice, bob, 5)
    pages: list[list[str]] = []
    cursor: str | None = None
    for _ in range(5):
        items, cursor = await bob.fills_page(limit=2, cursor=cursor)
        pages.append([f["price"] for f in items])
        if cursor is None:
            break
    assert pages == [["104.00", "103.00"], ["102.00", "101.00"], ["100.00"]]
    assert [f["side"] for f in await alice.my_fills()] == ["sell"] * 5


async def test_public_trades_pages_and_time_window(alice: VenueClient, bob: VenueClient, venue: FakeVenue) -> None:
    await _trade(alice, bob, 4)
    ts = [t.ts for t in venue.trade_log]
    items, cursor = await alice.trades_page("OMN-A", limit=3)
    assert [t["price"] for t in items] == ["103.00", "102.00", "101.00"] and cursor is not None
    items, cursor = await alice.trades_page("OMN-A", limit=3, cursor=cursor)
    assert [t["price"] for t in items] == ["100.00"] and cursor is None
    items, _ = await alice.trades_page("OMN-A", since=ts[1], until=ts[3])
    assert [t["price"] for t in items] == ["102.00", "101.00"]


@pytest.mark.parametrize("cursor", ["nope", "dDE6", "eDE6NQ", "dDE6LTE"])
async def test_a_cursor_the_venue_did_not_issue_is_refused(alice: VenueClient, cursor: str) -> None:
    with pytest.raises(ApiError) as err:
        await alice.fills_page(cursor=cursor)
    assert (err.value.code, err.value.status) == ("INVALID_FIELD", 400)


async def test_order_on_the_book_shows_its_state(alice: VenueClient, bob: VenueClient) -> None:
    ack = await alice.place("OMN-A", "sell", "3", "100")
    await bob.place("OMN-A", "buy", "1", "100", tif="ioc")
    got = await alice.request("GET", f"/v1/orders/{ack['order_id']}")
    assert (got["status"], got["filled_qty"], got["remaining_qty"], got["type"], got["reason"]) == (
        "partially_filled", "1.0", "2.0", "limit", None)
    with pytest.raises(ApiError) as err:
        await bob.request("GET", f"/v1/orders/{ack['order_id']}")
    assert (err.value.code, err.value.status) == ("UNKNOWN_ORDER", 404)
