"""The client against a live gateway: book sync with an injected gap, signing, keys."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from gateway import GatewayConfig, create_app
from gateway.ports import Role
from tests.gateway.fakes import FakeVenue, Keyring, make_key, make_listing, serve
from venueclient import ApiError, KeyFormatError, TransportError, VenueClient, generate_keypair, public_key_of


@pytest.fixture
def keys() -> dict[str, Keyring]:
    return {"mm": make_key("mm"), "taker": make_key("taker"), "op": make_key("op", Role.OPERATOR)}


@pytest.fixture
async def venue_url(keys: dict[str, Keyring]) -> AsyncIterator[tuple[FakeVenue, str]]:
    venue = FakeVenue([make_listing("OMN-A")], [k.api_key for k in keys.values()])
    async with serve(create_app(venue, config=GatewayConfig())) as url:
        yield venue, url


def _client(url: str, key: Keyring) -> VenueClient:
    return VenueClient(url, key.key_id, key.private_key)


def _levels(levels: list[tuple[Decimal, Decimal, int]]) -> list[tuple[str, str, int]]:
    return [(str(p), str(q), c) for p, q, c in levels]


def _engine_levels(venue: FakeVenue) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
    snap = venue.l2("OMN-A")
    listing = venue.listing("OMN-A")
    assert listing is not None
    from gateway.decimals import format_price, format_qty

    def conv(levels: Any) -> list[tuple[str, str, int]]:
        return [(format_price(lv.price, listing), format_qty(lv.qty, listing), lv.count) for lv in levels]
    return conv(snap.bids), conv(snap.asks)


async def test_local_book_resyncs_after_a_dropped_delta(venue_url: tuple[FakeVenue, str],
                                                        keys: dict[str, Keyring]) -> None:
    venue, url = venue_url
    dropped: list[dict[str, Any]] = []

    def drop_third_delta(msg: dict[str, Any]) -> bool:
        if msg.get("channel") == "book" and msg.get("type") == "delta":
            drop_third_delta.seen += 1  # type: ignore[attr-defined]
            if drop_third_delta.seen == 3:  # type: ignore[attr-defined]
                dropped.append(msg)
                return False
        return True
    drop_third_delta.seen = 0  # type: ignore[attr-defined]

    async with _client(url, keys["mm"]) as mm, _client(url, keys["taker"]) as taker:
        watcher = await taker.connect(inbound_filter=drop_third_delta)
        book = await watcher.local_book("OMN-A")
        for i in range(5):
            await mm.place("OMN-A", "sell", "1", str(100 + i))
            await mm.place("OMN-A", "buy", "1", str(90 - i))
        await taker.place("OMN-A", "buy", "1.5", "101")
        await asyncio.sleep(0.3)
        assert len(dropped) == 1
        assert book.gaps == 1 and book.snapshots == 2 and book.synced
        assert (_levels(book.bids()), _levels(book.asks())) == _engine_levels(venue)
        await watcher.close()


async def test_local_book_matches_engine_under_random_flow(venue_url: tuple[FakeVenue, str],
                                                           keys: dict[str, Keyring]) -> None:
    venue, url = venue_url
    rng = random.Random(7)
    async with _client(url, keys["mm"]) as mm, _client(url, keys["taker"]) as taker:
        stream = await taker.connect()
        book = await stream.local_book("OMN-A")
        mm_ws = await mm.connect()
        mine: list[int] = []
        for _ in range(120):
            ack = await mm_ws.place("OMN-A", rng.choice(["buy", "sell"]), str(rng.randint(1, 30)),
                                    str(rng.randint(95, 105)))
            mine.append(ack["order_id"])
            if rng.random() < 0.3:
                await stream.place("OMN-A", rng.choice(["buy", "sell"]), str(rng.randint(1, 40)),
                                   str(rng.randint(95, 105)), tif="ioc")
            if rng.random() < 0.2:
                try:
                    await mm_ws.cancel(rng.choice(mine))
                except ApiError as err:
                    assert err.code == "UNKNOWN_ORDER"  # already filled or cancelled
        await asyncio.sleep(0.3)
        assert book.gaps == 0
        assert (_levels(book.bids()), _levels(book.asks())) == _engine_levels(venue)
        await mm_ws.close()
        await stream.close()


async def test_stream_yields_private_events(venue_url: tuple[FakeVenue, str], keys: dict[str, Keyring]) -> None:
    _, url = venue_url
    async with _client(url, keys["mm"]) as mm:
        stream = await mm.connect()
        await stream.subscribe("orders", "fills")
        ack = await mm.place("OMN-A", "buy", "1", "99")
        event = await stream.next_event(where=lambda m: m["channel"] == "orders")
        assert (event["type"], event["order_id"], event["price"]) == ("accepted", ack["order_id"], "99.00")
        await stream.close()
        assert [m async for m in stream.stream()] == []


async def test_refusals_and_transport_errors_are_typed(venue_url: tuple[FakeVenue, str],
                                                       keys: dict[str, Keyring]) -> None:
    _, url = venue_url
    async with _client(url, keys["mm"]) as mm:
        with pytest.raises(ApiError) as err:
            await mm.place("OMN-A", "buy", "1", "99.999")
        assert (err.value.code, err.value.status) == ("WRONG_TICK", 400)
        with pytest.raises(TypeError):
            await mm.place("OMN-A", "buy", 1.5, "99")  # type: ignore[arg-type]
    unknown = make_key("ghost")
    async with _client(url, unknown) as ghost:
        with pytest.raises(ApiError) as err:
            await ghost.instruments()
        assert err.value.code == "UNKNOWN_KEY"
        with pytest.raises(ApiError) as err:
            await ghost.connect()
        assert err.value.code == "UNKNOWN_KEY"
    async with VenueClient("http://127.0.0.1:9", keys["mm"].key_id, keys["mm"].private_key) as dead:
        with pytest.raises(TransportError):
            await dead.instruments()
        with pytest.raises(TransportError):
            await dead.connect()


def test_keys() -> None:
    private, public = generate_keypair()
    assert public_key_of(private) == public == public_key_of(private.hex())
    with pytest.raises(KeyFormatError):
        VenueClient("http://x", "k", b"short")
    with pytest.raises(KeyFormatError):
        VenueClient("http://x", "k", "zz" * 32)
