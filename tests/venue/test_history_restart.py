"""After a restart on the same database a participant still sees every fill and the final state of
its orders: history is served from the store, not from the memory of the process that traded."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from settlement import Chain
from tests.venue.conftest import free_port
from venue.config import VenueConfig
from venue.runtime import Venue
from venueclient import VenueClient

REPO = Path(__file__).resolve().parents[2]


def _crash_venue() -> ModuleType:
    """The crash test's set-up: contracts on a persistent chain, an instrument, two funded participants."""
    spec = importlib.util.spec_from_file_location("crash_venue", REPO / "scripts" / "crash_venue.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["crash_venue"] = module
    spec.loader.exec_module(module)
    return module


@contextlib.asynccontextmanager
async def _running(config: VenueConfig) -> AsyncIterator[Venue]:
    venue = Venue(config)
    await venue.start()
    ready = asyncio.Event()
    server = asyncio.create_task(venue.serve(on_ready=ready.set))
    try:
        await asyncio.wait_for(ready.wait(), 20)
        yield venue
    finally:
        await venue.stop()
        await server


async def _all_fills(client: VenueClient) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(50):
        items, cursor = await client.fills_page(limit=2, cursor=cursor)
        out.extend(items)
        if cursor is None:
            return out
    raise AssertionError("paging did not end")


@pytest.mark.slow
@pytest.mark.anvil
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_fills_and_final_order_states_survive_a_restart(
    anvil: Chain, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    cv = _crash_venue()
    config = VenueConfig(
        data_dir=tmp_path / "var", chain=str(anvil.w3.provider.endpoint_uri), port=free_port(),  # type: ignore[attr-defined]
        db_url=None if backend == "sqlite" else request.getfixturevalue("pg_url"),
        settler_key="0x" + anvil.private_key(anvil.accounts[1]).hex(),
    )
    keys = await asyncio.to_thread(cv.setup, anvil, config)
    seller_id, buyer_id = cv.PARTICIPANTS

    def client(participant: str) -> VenueClient:
        return VenueClient(config_url(config), keys[participant]["key_id"], keys[participant]["private_key"])

    async with _running(config) as venue, client(seller_id) as seller, client(buyer_id) as buyer:
        for i in range(5):
            await seller.place(cv.SYMBOL, "sell", 1, f"{1000 + i}.00")
            await buyer.place(cv.SYMBOL, "buy", 1, f"{1000 + i}.00", tif="ioc")
        filled = await seller.place(cv.SYMBOL, "sell", 2, "1500.00")
        await buyer.place(cv.SYMBOL, "buy", 2, "1500.00", tif="ioc")
        cancelled = await seller.place(cv.SYMBOL, "sell", 1, "2000.00")
        await seller.cancel(cancelled["order_id"])
        before = await _all_fills(buyer)
        assert [f["price"] for f in before] == ["1500.00", "1004.00", "1003.00", "1002.00", "1001.00", "1000.00"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while venue.core.settlement_counts()["confirmed"] < 6:  # settled trades are not reloaded into memory
            assert loop.time() < deadline, venue.core.settlement_counts()
            await asyncio.sleep(0.1)

    async with _running(config), client(seller_id) as seller, client(buyer_id) as buyer:
        after = await _all_fills(buyer)
        assert [(f["trade_id"], f["price"], f["qty"], f["side"]) for f in after] == [
            (f["trade_id"], f["price"], f["qty"], f["side"]) for f in before]
        assert {f["settlement"] for f in after} == {"confirmed"}
        assert len(await _all_fills(seller)) == 6
        done = await seller.request("GET", f"/v1/orders/{filled['order_id']}")
        assert (done["status"], done["filled_qty"], done["remaining_qty"]) == ("filled", "2", "0")
        gone = await seller.request("GET", f"/v1/orders/{cancelled['order_id']}")
        assert (gone["status"], gone["reason"], gone["remaining_qty"]) == ("cancelled", "user", "0")
        trades, _ = await buyer.trades_page(cv.SYMBOL, limit=100)
        assert len(trades) == 6


def config_url(config: VenueConfig) -> str:
    return f"http://{config.host}:{config.port}"
