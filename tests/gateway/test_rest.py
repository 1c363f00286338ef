"""REST order entry, market data, isolation, idempotency and error codes against a live server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import fastapi.dependencies.utils
import fastapi.routing
import httpx
import pytest

from gateway import GatewayConfig, create_app
from gateway.ports import Rejection
from tests.gateway.conftest import client
from tests.gateway.fakes import FakeVenue, Keyring, serve
from tests.gateway.test_auth import _code, _send
from venueclient import ApiError, VenueClient


async def test_instruments_and_empty_book(alice: VenueClient) -> None:
    instruments = await alice.instruments()
    a = instruments[0]
    assert (a["symbol"], a["price_increment"], a["quantity_increment"], a["status"]) == ("OMN-A", "0.01", "0.1", "open")
    book = await alice.book("OMN-A")
    assert (book["bids"], book["asks"], book["status"]) == ([], [], "open")


async def test_place_match_and_read_back(alice: VenueClient, bob: VenueClient) -> None:
    ack = await alice.place("OMN-A", "sell", "2.5", "101.25", client_order_id="a1")
    assert ack["status"] == "open"
    assert (ack["price"], ack["qty"], ack["remaining_qty"], ack["client_order_id"]) == ("101.25", "2.5", "2.5", "a1")
    book = await bob.book("OMN-A")
    assert book["asks"] == [{"price": "101.25", "qty": "2.5", "count": 1}]

    hit = await bob.place("OMN-A", "buy", "1", "102")
    assert hit["status"] == "filled"
    assert hit["filled_qty"] == "1.0"
    assert [(f["price"], f["qty"], f["liquidity"]) for f in hit["fills"]] == [("101.25", "1.0", "taker")]

    trades = await alice.trades("OMN-A")
    assert [(t["price"], t["qty"], t["aggressor"]) for t in trades] == [("101.25", "1.0", "buy")]
    assert "buyer" not in trades[0] and "seller" not in trades[0]
    mine = await alice.my_orders()
    assert [(o["order_id"], o["remaining_qty"]) for o in mine] == [(ack["order_id"], "1.5")]
    fills_a = await alice.my_fills()
    fills_b = await bob.my_fills()
    assert [(f["side"], f["liquidity"]) for f in fills_a] == [("sell", "maker")]
    assert [(f["side"], f["liquidity"]) for f in fills_b] == [("buy", "taker")]
    assert await bob.my_orders() == []


async def test_signed_requests_run_on_the_event_loop(alice: VenueClient, op: VenueClient,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """No worker-thread hop per REST request: the auth dependencies (``authenticated``, ``trader``,
    ``operator``) and the routes are coroutines FastAPI runs inline (the sync dependencies each went
    through the threadpool, a thread switch and the GIL handed back and forth per order)."""
    hops: list[str] = []
    for module in (fastapi.dependencies.utils, fastapi.routing):
        real = module.run_in_threadpool

        async def counting(func: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
            hops.append(getattr(func, "__name__", repr(func)))
            return await _real(func, *args, **kwargs)

        monkeypatch.setattr(module, "run_in_threadpool", counting)
    ack = await alice.place("OMN-A", "buy", "1", "99", client_order_id="loop-1")
    await alice.amend(ack["order_id"], qty="0.5")
    await alice.my_orders()
    await alice.instruments()
    await alice.cancel(client_order_id="loop-1")
    await op.set_status("OMN-A", "halted")
    await op.set_status("OMN-A", "open")
    assert hops == []


async def test_amend_and_cancel_by_either_id(alice: VenueClient) -> None:
    ack = await alice.place("OMN-A", "buy", "3", "99", client_order_id="b1")
    down = await alice.amend(ack["order_id"], qty="2")
    assert (down["qty"], down["remaining_qty"], down["priority_kept"]) == ("2.0", "2.0", True)
    moved = await alice.amend(client_order_id="b1", price="99.5")
    assert (moved["price"], moved["priority_kept"]) == ("99.50", False)
    book = await alice.book("OMN-A")
    assert book["bids"] == [{"price": "99.50", "qty": "2.0", "count": 1}]
    cancelled = await alice.cancel(client_order_id="b1")
    assert (cancelled["status"], cancelled["cancelled_qty"]) == ("cancelled", "2.0")
    with pytest.raises(ApiError) as err:
        await alice.cancel(ack["order_id"])
    assert (err.value.code, err.value.status) == ("UNKNOWN_ORDER", 404)


async def test_mass_cancel_filters(alice: VenueClient) -> None:
    ids = [(await alice.place(sym, side, "1", px))["order_id"]
           for sym, side, px in [("OMN-A", "buy", "90"), ("OMN-A", "sell", "110"), ("OMN-B", "buy", "90")]]
    assert await alice.mass_cancel("OMN-A", "buy") == [ids[0]]
    assert sorted(await alice.mass_cancel()) == sorted(ids[1:])
    assert await alice.my_orders() == []


async def test_participants_cannot_see_or_touch_each_others_orders(alice: VenueClient, bob: VenueClient) -> None:
    ack = await alice.place("OMN-A", "buy", "1", "95", client_order_id="mine")
    assert await bob.my_orders() == []
    for attempt in (bob.cancel(ack["order_id"]), bob.amend(ack["order_id"], price="96"),
                    bob.cancel(client_order_id="mine"), bob.request("GET", f"/v1/orders/{ack['order_id']}")):
        with pytest.raises(ApiError) as err:
            await attempt
        assert err.value.code == "UNKNOWN_ORDER"
    assert await bob.mass_cancel() == []
    assert [o["order_id"] for o in await alice.my_orders()] == [ack["order_id"]]
    assert (await alice.request("GET", f"/v1/orders/{ack['order_id']}"))["client_order_id"] == "mine"


async def test_same_client_order_id_returns_the_same_result(alice: VenueClient, venue: FakeVenue) -> None:
    first = await alice.place("OMN-A", "buy", "1", "95", client_order_id="dup")
    again = await alice.place("OMN-A", "buy", "1", "95", client_order_id="dup")
    assert again == first
    assert len(await alice.my_orders()) == 1
    assert len(venue.submitted) == 1
    with pytest.raises(ApiError) as err:
        await alice.place("OMN-A", "buy", "2", "95", client_order_id="dup")
    assert (err.value.code, err.value.status) == ("CLIENT_ORDER_ID_REUSED", 409)


async def test_duplicate_while_first_in_flight_waits_for_it(alice: VenueClient, venue: FakeVenue) -> None:
    venue.gate = asyncio.Event()
    first = asyncio.create_task(alice.place("OMN-A", "sell", "1", "105", client_order_id="race"))
    second = asyncio.create_task(alice.place("OMN-A", "sell", "1", "105", client_order_id="race"))
    await asyncio.sleep(0.2)
    assert not first.done() and not second.done()
    venue.gate.set()
    assert await first == await second
    assert len(venue.submitted) == 1


async def test_rejections_are_remembered_per_client_order_id(alice: VenueClient, venue: FakeVenue) -> None:
    venue.refuse["alice"] = Rejection(code="INSUFFICIENT_CASH", message="not enough cash for this buy")
    with pytest.raises(ApiError) as err:
        await alice.place("OMN-A", "buy", "1", "95", client_order_id="poor")
    assert (err.value.code, err.value.status, err.value.message) == (
        "INSUFFICIENT_CASH", 422, "not enough cash for this buy")
    del venue.refuse["alice"]
    with pytest.raises(ApiError) as again:
        await alice.place("OMN-A", "buy", "1", "95", client_order_id="poor")
    assert again.value.code == "INSUFFICIENT_CASH"
    assert (await alice.place("OMN-A", "buy", "1", "95", client_order_id="rich"))["status"] == "open"


async def test_other_participant_may_use_the_same_client_order_id(alice: VenueClient, bob: VenueClient) -> None:
    a = await alice.place("OMN-A", "buy", "1", "95", client_order_id="same")
    b = await bob.place("OMN-A", "buy", "1", "95", client_order_id="same")
    assert a["order_id"] != b["order_id"]


async def test_venue_failure_is_503_and_the_id_can_be_retried(alice: VenueClient, venue: FakeVenue) -> None:
    venue.fail_next = RuntimeError("journal disk full")
    with pytest.raises(ApiError) as err:
        await alice.place("OMN-A", "buy", "1", "95", client_order_id="retry-me")
    assert (err.value.code, err.value.status) == ("VENUE_ERROR", 503)
    assert (await alice.place("OMN-A", "buy", "1", "95", client_order_id="retry-me"))["status"] == "open"


async def test_engine_rejections_surface_with_their_code(alice: VenueClient) -> None:
    await alice.place("OMN-A", "sell", "1", "100")
    cases = [
        (dict(price="101", post_only=True, side="buy"), "POST_ONLY_WOULD_CROSS", 422),
        (dict(price="100", tif="fok", side="buy", qty="5"), "FOK_NOT_FILLABLE", 422),
        (dict(price="200000", side="buy"), "PRICE_OUTSIDE_BAND", 400),
        (dict(price=None, side="buy"), "MISSING_PRICE", 400),
        (dict(price="99", tif="gtd", side="buy"), "MISSING_EXPIRY", 400),
        (dict(price="99", tif="gtd", side="buy", expire_ts=1), "EXPIRY_IN_PAST", 400),
    ]
    for overrides, code, status in cases:
        fields = {"qty": "1", **overrides}
        side = str(fields.pop("side"))
        qty = str(fields.pop("qty"))
        price = fields.pop("price")
        with pytest.raises(ApiError) as err:
            await alice.place("OMN-A", side, qty, None if price is None else str(price), **fields)  # type: ignore[arg-type]
        assert (err.value.code, err.value.status) == (code, status), overrides


async def test_operator_halts_and_resumes(op: VenueClient, alice: VenueClient) -> None:
    assert await op.set_status("OMN-A", "halted") == {"symbol": "OMN-A", "status": "halted"}
    with pytest.raises(ApiError) as err:
        await alice.place("OMN-A", "buy", "1", "95")
    assert err.value.code == "INSTRUMENT_HALTED"
    assert (await alice.instruments())[0]["status"] == "halted"
    await op.set_status("OMN-A", "open")
    assert (await alice.place("OMN-A", "buy", "1", "95"))["status"] == "open"
    with pytest.raises(ApiError) as err:
        await op.set_status("OMN-X", "halted")
    assert err.value.code == "UNKNOWN_INSTRUMENT"


ORDER = b'{"symbol":"OMN-A","side":"buy","qty":"1","price":"95"}'


@pytest.mark.parametrize(("body", "status", "code"), [
    (b'{"symbol":"OMN-A",', 400, "MALFORMED_JSON"),
    (b'[1,2]', 400, "MALFORMED_JSON"),
    (b'"text"', 400, "MALFORMED_JSON"),
    (b'{"symbol":"OMN-A","side":"buy","qty":"1","price":NaN}', 400, "MALFORMED_JSON"),
    (b'{"symbol":"OMN-A","side":"buy","qty":"1","price":Infinity}', 400, "MALFORMED_JSON"),
    (b'[' * 5000 + b']' * 5000, 400, "MALFORMED_JSON"),
    (b'{"symbol":"OMN-A","side":"buy","qty":"1","price":"95","colour":"red"}', 400, "UNKNOWN_FIELD"),
    (b'{"symbol":"OMN-A","side":"buy","price":"95"}', 400, "MISSING_FIELD"),
    (b'', 400, "MISSING_FIELD"),
    (b'{"symbol":"OMN-A","side":"hold","qty":"1","price":"95"}', 400, "INVALID_FIELD"),
    (b'{"symbol":"OMN-A","side":"buy","qty":"1","price":"95","post_only":"yes"}', 400, "INVALID_FIELD"),
    (b'{"symbol":"OMN-A","side":"buy","qty":"1","price":95.5}', 400, "INVALID_DECIMAL"),
    (b'{"symbol":"OMN-A","side":"buy","qty":1,"price":"95"}', 400, "INVALID_DECIMAL"),
    (b'{"symbol":"OMN-A","side":"buy","qty":"1","price":"9.5e1"}', 400, "INVALID_DECIMAL"),
    (b'{"symbol":"OMN-A","side":"buy","qty":"1","price":"NaN"}', 400, "INVALID_DECIMAL"),
    (b'{"symbol":"OMN-A","side":"buy","qty":"1","price":"95.001"}', 400, "WRONG_TICK"),
    (b'{"symbol":"OMN-A","side":"buy","qty":"1.05","price":"95"}', 400, "WRONG_LOT"),
    (b'{"symbol":"OMN-A","side":"buy","qty":"-1","price":"95"}', 400, "INVALID_QUANTITY"),
    (b'{"symbol":"OMN-A","side":"buy","qty":"1","price":"-95"}', 400, "INVALID_PRICE"),
    (b'{"symbol":"OMN-A","side":"buy","qty":"1","price":"' + b"9" * 40 + b'"}', 400, "VALUE_TOO_LARGE"),
    (b'{"symbol":"OMN-A","side":"buy","qty":"1","price":"95","expire_ts":' + b"9" * 30 + b'}', 400,
     "VALUE_TOO_LARGE"),
    (b'{"symbol":"OMN-A","side":"buy","qty":"1","price":"95","expire_ts":' + b"9" * 5000 + b'}', 400,
     "MALFORMED_JSON"),
    (b'{"symbol":"OMN-A","side":"buy","qty":"100000000","price":"95"}', 400, "QUANTITY_ABOVE_MAX"),
    (b'{"symbol":"OMN-Z","side":"buy","qty":"1","price":"95"}', 404, "UNKNOWN_INSTRUMENT"),
    (b'{"symbol":"OMN-A","side":"buy","qty":"1","price":"95","client_order_id":"has space"}', 400,
     "INVALID_FIELD"),
    (b'{"symbol":"OMN-A","side":"buy","qty":"1","price":"95","client_order_id":"' + b"x" * 65 + b'"}', 400,
     "VALUE_TOO_LARGE"),
])
async def test_bad_order_input_has_stable_codes(url: str, keys: dict[str, Keyring], venue: FakeVenue,
                                                body: bytes, status: int, code: str) -> None:
    resp = await _send(url, keys["alice"], "POST", "/v1/orders", body)
    assert (resp.status_code, _code(resp)) == (status, code), resp.text
    assert resp.json()["error"]["message"]
    assert venue.engine.open_orders("alice", None) == []


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), [
    ("POST", "/v1/orders/amend", b'{"price":"1"}', 400, "MISSING_FIELD"),
    ("POST", "/v1/orders/amend", b'{"order_id":1,"client_order_id":"x","price":"1"}', 400, "MISSING_FIELD"),
    ("POST", "/v1/orders/amend", b'{"order_id":0,"price":"1"}', 400, "INVALID_FIELD"),
    ("POST", "/v1/orders/amend", b'{"order_id":99999999999999999999999,"price":"1"}', 400, "VALUE_TOO_LARGE"),
    ("POST", "/v1/orders/cancel", b'{"order_id":"12"}', 400, "INVALID_FIELD"),
    ("POST", "/v1/orders/cancel", b'{"order_id":424242}', 404, "UNKNOWN_ORDER"),
    ("POST", "/v1/orders/mass-cancel", b'{"symbol":"OMN-Z"}', 404, "UNKNOWN_INSTRUMENT"),
    ("GET", "/v1/instruments/OMN-Z/book", b"", 404, "UNKNOWN_INSTRUMENT"),
    ("GET", "/v1/instruments/OMN-A/book?depth=0", b"", 400, "INVALID_FIELD"),
    ("GET", "/v1/instruments/OMN-A/trades?limit=abc", b"", 400, "INVALID_FIELD"),
    ("GET", "/v1/orders/abc", b"", 400, "INVALID_FIELD"),
    ("GET", "/v1/nothing-here", b"", 404, "NOT_FOUND"),
    ("DELETE", "/v1/instruments", b"", 405, "METHOD_NOT_ALLOWED"),
    ("POST", "/v1/orders", b'{"a":"' + b"x" * 70_000 + b'"}', 413, "BODY_TOO_LARGE"),
])
async def test_other_bad_requests(url: str, keys: dict[str, Keyring], method: str, path: str, body: bytes,
                                  status: int, code: str) -> None:
    resp = await _send(url, keys["alice"], method, path, body)
    assert (resp.status_code, _code(resp)) == (status, code), resp.text


async def test_amend_bad_tick_uses_the_orders_instrument(alice: VenueClient) -> None:
    ack = await alice.place("OMN-A", "buy", "1", "95")
    for kwargs, code in ((dict(price="95.001"), "WRONG_TICK"), (dict(qty="0.01"), "WRONG_LOT"),
                         (dict(price="95"), "AMEND_NO_CHANGE")):
        with pytest.raises(ApiError) as err:
            await alice.amend(ack["order_id"], **kwargs)
        assert err.value.code == code


async def test_rate_limit_gives_429_with_retry_after(venue: FakeVenue, keys: dict[str, Keyring]) -> None:
    app = create_app(venue, config=GatewayConfig(rate_per_s=2.0, rate_burst=3))
    async with serve(app) as url, client(url, keys["alice"]) as alice, client(url, keys["bob"]) as bob:
        for _ in range(3):
            await alice.my_orders()
        resp = await _send(url, keys["alice"], "GET", "/v1/orders")
        assert (resp.status_code, _code(resp)) == (429, "RATE_LIMITED")
        assert resp.headers["Retry-After"] == "1"
        assert 0 < resp.json()["error"]["retry_after"] <= 0.5
        assert await bob.my_orders() == []  # per key
        await asyncio.sleep(resp.json()["error"]["retry_after"])
        assert await alice.my_orders() == []


async def test_concurrent_orders_from_many_clients_keep_the_book_consistent(
        url: str, keys: dict[str, Keyring], venue: FakeVenue) -> None:
    async with client(url, keys["alice"]) as alice, client(url, keys["bob"]) as bob:
        sells = [alice.place("OMN-A", "sell", "1", str(100 + i)) for i in range(10)]
        buys = [bob.place("OMN-A", "buy", "1", "105") for _ in range(10)]
        results = await asyncio.gather(*sells, *buys)
    assert all(r["status"] in ("open", "filled", "partially_filled") for r in results)
    venue.engine.validate()
    book = venue.l2("OMN-A")
    traded = sum(t.qty for t in venue.trade_log)
    resting = sum(level.qty for level in book.bids + book.asks)
    assert traded * 2 + resting == 20 * 10  # every lot is either traded (both sides) or still resting
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/health")).status_code == 200


async def test_order_types_time_in_force_and_stp(alice: VenueClient, bob: VenueClient) -> None:
    await alice.place("OMN-A", "sell", "1", "100")
    await alice.place("OMN-A", "sell", "1", "101")
    market = await bob.place("OMN-A", "buy", "1.5", order_type="market")
    assert (market["status"], market["price"], market["filled_qty"]) == ("filled", None, "1.5")
    assert [f["price"] for f in market["fills"]] == ["100.00", "101.00"]
    ioc = await bob.place("OMN-A", "buy", "2", "101", tif="ioc")
    assert (ioc["status"], ioc["filled_qty"], ioc["remaining_qty"], ioc["cancel_reason"]) == (
        "cancelled", "0.5", "0.0", "ioc_remainder")
    with pytest.raises(ApiError) as err:
        await bob.place("OMN-A", "buy", "1", order_type="market")
    assert err.value.code == "NO_LIQUIDITY"
    far = time.time_ns() + 3_600 * 10**9
    gtd = await alice.place("OMN-A", "sell", "1", "105", tif="gtd", expire_ts=far)
    assert (await alice.request("GET", f"/v1/orders/{gtd['order_id']}"))["expire_ts"] == far
    stp = await alice.place("OMN-A", "buy", "1", "105", stp="cancel_newest")
    assert (stp["status"], stp["cancel_reason"], stp["fills"]) == ("cancelled", "self_trade_prevention", [])
    oldest = await alice.place("OMN-A", "buy", "1", "105", stp="cancel_oldest")
    assert oldest["status"] == "open"
    assert [o["order_id"] for o in await alice.my_orders()] == [oldest["order_id"]]


async def test_resend_after_gateway_restart_returns_the_resting_order(
        venue: FakeVenue, keys: dict[str, Keyring]) -> None:
    async with serve(create_app(venue)) as first, client(first, keys["alice"]) as alice:
        ack = await alice.place("OMN-A", "buy", "2", "95", client_order_id="survivor")
    submitted = len(venue.submitted)
    async with serve(create_app(venue)) as second, client(second, keys["alice"]) as alice:
        again = await alice.place("OMN-A", "buy", "2", "95", client_order_id="survivor")
        assert (again["order_id"], again["status"], again["remaining_qty"]) == (ack["order_id"], "open", "2.0")
        assert len(venue.submitted) == submitted
        assert (await alice.cancel(client_order_id="survivor"))["cancelled_qty"] == "2.0"
