from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway import GatewayConfig, create_app
from gateway.ports import Role
from tests.gateway.fakes import FakeVenue, Keyring, make_key, make_listing, serve
from venueclient import VenueClient


@pytest.fixture
def keys() -> dict[str, Keyring]:
    return {"alice": make_key("alice"), "bob": make_key("bob"), "op": make_key("op", Role.OPERATOR)}


@pytest.fixture
def venue(keys: dict[str, Keyring]) -> FakeVenue:
    return FakeVenue([make_listing("OMN-A"), make_listing("OMN-B")], [k.api_key for k in keys.values()])


@pytest.fixture
def config() -> GatewayConfig:
    return GatewayConfig(heartbeat_timeout_s=10.0, rate_per_s=1000.0, rate_burst=1000)


@pytest.fixture
async def url(venue: FakeVenue, config: GatewayConfig) -> AsyncIterator[str]:
    async with serve(create_app(venue, config=config)) as base:
        yield base


def client(url: str, key: Keyring) -> VenueClient:
    return VenueClient(url, key.key_id, key.private_key)


@pytest.fixture
async def alice(url: str, keys: dict[str, Keyring]) -> AsyncIterator[VenueClient]:
    async with client(url, keys["alice"]) as c:
        yield c


@pytest.fixture
async def bob(url: str, keys: dict[str, Keyring]) -> AsyncIterator[VenueClient]:
    async with client(url, keys["bob"]) as c:
        yield c


@pytest.fixture
async def op(url: str, keys: dict[str, Keyring]) -> AsyncIterator[VenueClient]:
    async with client(url, keys["op"]) as c:
        yield c
