"""Requests for quotes and block trades through the real gateway over the real core (journal in a
temp directory; no compliance or chain): REST and websocket ops, the private ``rfq`` / ``blocks``
channels, trade origins on the public and private feeds, error codes, operator views, OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from engine import AddInstrument, Engine
from gateway import GatewayConfig, create_app
from gateway.offbook_routes import OffBookApi, attach_offbook, offbook_router
from journal import Journal, Sequencer
from market.model import Role
from tests.gateway.fakes import Keyring, make_key, make_listing, serve
from venue.core import VenueCore
from venue.listings import ListingRules
from venueclient import ApiError, VenueClient

SYMBOL = "OMN-A"
WALLETS = {"alice": "0x" + "aa" * 20, "bob": "0x" + "bb" * 20, "carol": "0x" + "cc" * 20}

Served = tuple[VenueCore, str, dict[str, Keyring]]
AUDIT: list[tuple[object, ...]] = []


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    keys = {p: make_key(p) for p in ("alice", "bob", "carol")} | {"ops": make_key("ops", Role.OPERATOR)}
    listing = make_listing(SYMBOL)
    engine = Engine()
    journal = Journal.open(tmp_path / "journal")
    sequencer = Sequencer(engine, journal)
    await sequencer.start()
    await sequencer.submit(AddInstrument(ts=0, spec=listing.spec))
    core = VenueCore(engine=engine, sequencer=sequencer, keys=[k.api_key for k in keys.values()], wallets=WALLETS)
    core.reference.add_listing(listing, ListingRules(min_block_lots=20, rfq_max_ttl_s=60))
    api = OffBookApi(core.rfqs, core.blocks, core.listing, audit=lambda *entry: AUDIT.append(entry))
    app = create_app(core, config=GatewayConfig(), extra_routers=[offbook_router(api)])
    detach = attach_offbook(app, api)
    try:
        async with serve(app) as url:
            yield core, url, keys
    finally:
        detach()
        await sequencer.stop()
        journal.close()


def _client(url: str, key: Keyring) -> VenueClient:
    return VenueClient(url, key.key_id, key.private_key)


async def test_an_rfq_over_rest_and_websocket_prints_an_rfq_trade(served: Served) -> None:
    core, url, keys = served
    async with _client(url, keys["alice"]) as alice, _client(url, keys["bob"]) as bob, \
            _client(url, keys["carol"]) as carol:
        bob_ws, carol_ws, alice_ws = await bob.connect(), await carol.connect(), await alice.connect()
        await bob_ws.subscribe("rfq")
        await alice_ws.subscribe("rfq", "fills")
        await carol_ws.subscribe("trades", symbol=SYMBOL)
        rfq = await alice.request_quotes(SYMBOL, "buy", "2", ttl_s=30, min_qty="1")
        assert (rfq["state"], rfq["qty"], rfq["min_qty"]) == ("open", "2.0", "1.0") and rfq["responders"] is None
        invited = await bob_ws.next_event(where=lambda m: m["channel"] == "rfq" and m["type"] == "rfq_new")
        assert invited["data"]["rfq_id"] == rfq["rfq_id"]
        quote = await bob_ws.quote_rfq(rfq["rfq_id"], "101.50", 2)
        assert (quote["state"], quote["side"], quote["price"]) == ("live", "sell", "101.50")
        seen = await alice_ws.next_event(where=lambda m: m["channel"] == "rfq" and m["type"] == "quote")
        assert [q["quote_id"] for q in seen["data"]["quotes"]] == [quote["quote_id"]]
        mine = await carol.rfqs()
        assert [r["rfq_id"] for r in mine] == [rfq["rfq_id"]] and mine[0]["quotes"] == []  # asked, not quoted
        done = await alice.accept_quote(rfq["rfq_id"], quote["quote_id"])
        assert done["state"] == "filled" and done["trade_id"]
        fill = await alice_ws.next_event(where=lambda m: m["channel"] == "fills")
        assert (fill["origin"], fill["side"], fill["price"]) == ("rfq", "buy", "101.50")
        printed = await carol_ws.next_event(where=lambda m: m["channel"] == "trades")
        assert (printed["origin"], printed["trade_id"]) == ("rfq", done["trade_id"])
        assert [t["origin"] for t in await carol.trades(SYMBOL)] == ["rfq"]
        for ws in (bob_ws, carol_ws, alice_ws):
            await ws.close()
    assert [t.origin.name for t in core.trades()] == ["RFQ"]


async def test_a_block_confirmed_by_both_keys_prints_a_block_trade(served: Served) -> None:
    _, url, keys = served
    async with _client(url, keys["alice"]) as alice, _client(url, keys["bob"]) as bob, \
            _client(url, keys["ops"]) as ops:
        bob_ws = await bob.connect()
        await bob_ws.subscribe("blocks")
        pending = await alice.submit_block("deal-7", SYMBOL, "sell", "99.00", "2.5", counterparty="bob")
        assert (pending["state"], pending["submitted_by"]) == ("pending", ["alice"])
        told = await bob_ws.next_event(where=lambda m: m["channel"] == "blocks")
        assert (told["data"]["block_id"], told["data"]["state"]) == ("deal-7", "pending")
        matched = await bob_ws.submit_block("deal-7", SYMBOL, "buy", "99.00", "2.5", counterparty="alice")
        assert matched["state"] == "matched" and matched["trade_id"]
        [trade] = await bob.trades(SYMBOL)
        assert (trade["origin"], trade["price"], trade["qty"]) == ("block", "99.00", "2.5")
        assert [b["state"] for b in await ops.request("GET", "/v1/operator/blocks")] == ["matched"]
        await bob_ws.close()


async def test_refusals_carry_their_codes_and_statuses(served: Served) -> None:
    _, url, keys = served
    async with _client(url, keys["alice"]) as alice, _client(url, keys["bob"]) as bob:
        with pytest.raises(ApiError) as err:
            await alice.submit_block("small", SYMBOL, "sell", "99.00", "1.9", counterparty="bob")
        assert (err.value.code, err.value.status) == ("BLOCK_TOO_SMALL", 422)
        with pytest.raises(ApiError) as err:
            await bob.quote_rfq(987654, "100", "1")
        assert (err.value.code, err.value.status) == ("RFQ_UNKNOWN", 404)
        with pytest.raises(ApiError) as err:
            await alice.request_quotes(SYMBOL, "buy", "1", ttl_s=61)
        assert err.value.code == "RFQ_EXPIRY_INVALID"
        with pytest.raises(ApiError) as err:
            await alice.request_quotes(SYMBOL, "buy", "1.05", ttl_s=5)
        assert err.value.code == "WRONG_LOT"
        stream = await bob.connect()
        with pytest.raises(ApiError) as err:
            await stream.request("rfq_accept", quote_id=1)
        assert err.value.code == "MISSING_FIELD"
        await stream.close()
        with pytest.raises(ApiError) as err:
            await alice.request("GET", "/v1/operator/rfqs")
        assert err.value.code == "FORBIDDEN"


async def test_operators_see_and_cancel_live_rfqs(served: Served) -> None:
    _, url, keys = served
    async with _client(url, keys["alice"]) as alice, _client(url, keys["ops"]) as ops:
        rfq = await alice.request_quotes(SYMBOL, "sell", "1", ttl_s=30)
        [seen] = await ops.request("GET", "/v1/operator/rfqs")
        assert seen["responders"] == ["bob", "carol"]
        cancelled = await ops.request("POST", f"/v1/operator/rfqs/{rfq['rfq_id']}/cancel")
        assert (cancelled["state"], cancelled["reason"]) == ("cancelled", "OFF_BOOK_CANCELLED_BY_OPERATOR")
        assert AUDIT[-1] == ("ops", "rfq.cancel", {"rfq_id": rfq["rfq_id"], "requester": "alice", "symbol": SYMBOL})


async def test_openapi_documents_the_off_book_routes(served: Served) -> None:
    _, url, _ = served
    async with httpx.AsyncClient() as http:
        spec = (await http.get(f"{url}/openapi.json")).json()
    for path in ("/v1/rfqs", "/v1/rfqs/{rfq_id}/quotes", "/v1/rfqs/{rfq_id}/accept", "/v1/blocks",
                 "/v1/operator/rfqs"):
        assert path in spec["paths"], path
    assert "origin" in spec["components"]["schemas"]["TradeInfo"]["properties"]
