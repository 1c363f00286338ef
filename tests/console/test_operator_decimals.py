"""The operator API prints prices and quantities exactly as the trader API does: at the
instrument's precision (a 0.01-tick instrument prints ``400.50``, never ``400.5``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from engine import NewOrder, Side
from tests.console.conftest import LiveServer, Signed
from tests.console.fakes import SYMBOL, FakeVenue


@pytest.fixture
def client(server: LiveServer, op_auth: Signed) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10, auth=op_auth) as c:
        yield c


def test_operator_and_trader_apis_print_the_same_decimal_strings(
    client: httpx.Client, server: LiveServer, venue: FakeVenue, trader_auth: Signed
) -> None:
    # 0.01 cash per tick, 1 note per lot: 40_050 ticks = 400.50, 40_000 ticks = 400.00
    for who, side, qty, price in (("alice", Side.SELL, 2, 40_050), ("bob", Side.BUY, 3, 40_000),
                                  ("alice", Side.SELL, 1, 40_000)):
        cmd = NewOrder(ts=0, participant=who, symbol=SYMBOL, side=side, qty=qty, price=price)
        server.call(venue.submit(who, cmd))

    inst = client.get(f"/v1/operator/instruments/{SYMBOL}").json()
    assert [(lv["price"], lv["qty"]) for lv in inst["asks"]] == [("400.50", "2")]
    assert [(lv["price"], lv["qty"]) for lv in inst["bids"]] == [("400.00", "2")]
    assert inst["last_price"] == "400.00"
    assert inst["price_increment"] == "0.01"
    trade = client.get("/v1/operator/trades", params={"symbol": SYMBOL}).json()["trades"][0]
    assert (trade["price"], trade["qty"]) == ("400.00", "1")

    trader_book = client.get(f"/v1/instruments/{SYMBOL}/book", auth=trader_auth).json()
    assert [(lv["price"], lv["qty"]) for lv in trader_book["asks"]] == [(lv["price"], lv["qty"])
                                                                        for lv in inst["asks"]]
    trader_trade = client.get(f"/v1/instruments/{SYMBOL}/trades", auth=trader_auth).json()[0]
    assert (trader_trade["price"], trader_trade["qty"]) == (trade["price"], trade["qty"])
