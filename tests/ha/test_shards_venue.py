"""Sharding by instrument end to end (issue 17): one NATS server (R1), anvil, two shard leaders
(``venue run --shard a|b --shards MAP``, each its own stream, lease and SQLite store with the same
reference data) and one ``venue gateway --shards MAP`` process.

Orders route by symbol, a cancel by its order id (the id names its shard), a mass cancel goes to
both shards, and an investor whose cash covers one order cannot have a buy resting on each shard:
the second is refused (cash) until the first is cancelled. Both instruments trade the demo's one
note token; the test is about cash, which the two shards share."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from settlement.chain import Chain
from tests.ha.cluster import free_port
from tests.ha.test_gateway_process import _healthy, _start, process_world
from venue import admin

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import crash_venue as cv

from venue.config import VenueConfig
from venueclient import ApiError, VenueClient

A_SYM, B_SYM = "OMN-SA", "OMN-SB"
MAP = f"a=1:{A_SYM};b=2:{B_SYM}"


def _setup(chain: Chain, config: VenueConfig) -> dict[str, str]:
    """The crash script's reference data, two instruments more, and an investor with 1500 USDC."""
    from settlement.deploy import DemoAdmin

    cv.setup(chain, config)
    deployment = cv._deployment(config)
    for symbol in (A_SYM, B_SYM):
        admin.add_instrument(config, symbol, name=f"shard test {symbol}", token=deployment.token,
                             cash_token=deployment.stablecoin, token_decimals=0, cash_decimals=6, tick="0.01",
                             lot="1", min_qty=1, max_qty=100, band=("100", "100000"),
                             rules={"allowed_categories": ["MIFID_PROFESSIONAL"]})
    wallet = chain.new_account()
    DemoAdmin(chain, deployment).onboard(wallet, country=276, notes=0, cash=1500 * 10**6)
    admin.add_participant(config, "inv-1", name="inv-1", category="MIFID_PROFESSIONAL", jurisdiction="DE",
                          kyc_days=30, wallet=wallet)
    return admin.create_key(config, "inv-1", role="trader")


@pytest.mark.slow
@pytest.mark.anvil
async def test_two_shards_route_and_share_the_investors_cash(tmp_path: Path) -> None:
    with process_world(tmp_path, "OMNSH") as world:
        chain, rpc, env, url, procs = world.chain, world.rpc, world.env, world.url, world.procs
        configs = {n: VenueConfig(data_dir=tmp_path / n, chain=rpc, port=free_port()) for n in ("a", "b")}
        key = _setup(chain, configs["a"])
        configs["b"].data_dir.mkdir(parents=True)
        for item in configs["a"].data_dir.iterdir():  # the same reference data (store, keys, deployment)
            if item.is_file():
                shutil.copy2(item, configs["b"].data_dir / item.name)
        urls = {}
        for name, c in configs.items():
            proc = _start(["run", "--role", "auto", "--journal-url", url, "--shard", name, "--shards", MAP,
                           "--data-dir", str(c.data_dir), "--chain", rpc, "--port", str(c.port)],
                          tmp_path / f"{name}.log", env)
            procs.append(proc)
            urls[name] = f"http://127.0.0.1:{c.port}"
            await _healthy(urls[name], proc)
        gw_port = free_port()
        gateway = _start(["gateway", "--journal-url", url, "--shards", MAP, "--data-dir", str(tmp_path / "gw"),
                          "--port", str(gw_port)], tmp_path / "gw.log", {})
        procs.append(gateway)
        gw_url = f"http://127.0.0.1:{gw_port}"
        await _healthy(gw_url, gateway)

        inv = VenueClient(gw_url, key["key_id"], key["private_key"], timeout=60.0)
        direct_b = VenueClient(urls["b"], key["key_id"], key["private_key"], timeout=30.0)
        stream = await inv.connect()
        try:
            listed = sorted(x["symbol"] for x in await inv.request("GET", "/v1/instruments"))
            assert listed == [A_SYM, B_SYM]  # each shard's own, merged
            book_b = await stream.local_book(B_SYM, timeout=30)
            first = await inv.place(A_SYM, "buy", 1, "1000", client_order_id="sa-1")
            assert first["status"] == "open" and int(first["order_id"]) >> 40 == 1  # shard a's numbering
            with pytest.raises(ApiError) as refused:  # 1000 USDC held on shard a: 500 left
                await inv.place(B_SYM, "buy", 1, "1000", client_order_id="sb-1")
            assert refused.value.code == "INSUFFICIENT_CASH", refused.value
            assert "other shards" in refused.value.message
            with pytest.raises(ApiError) as foreign:  # shard b's leader does not trade shard a's instrument
                await direct_b.place(A_SYM, "buy", 1, "100", client_order_id="sa-direct")
            assert foreign.value.code == "INSTRUMENT_NOT_ON_SHARD"

            cancelled = await inv.cancel(int(first["order_id"]))  # routed by the id to shard a
            assert cancelled["status"] == "cancelled", cancelled
            second = await inv.place(B_SYM, "buy", 1, "1000", client_order_id="sb-2")
            assert second["status"] == "open" and int(second["order_id"]) >> 40 == 2
            small = await inv.place(A_SYM, "buy", 1, "400", client_order_id="sa-2")  # 500 free: fits
            assert small["status"] == "open"
            mine = sorted((o["symbol"], o["client_order_id"]) for o in await inv.my_orders())
            assert mine == [(A_SYM, "sa-2"), (B_SYM, "sb-2")]  # open orders of both shards
            for _ in range(300):  # shard b's book delta, fanned out by the gateway
                if book_b.best_bid() is not None:
                    break
                await asyncio.sleep(0.1)
            best = book_b.best_bid()
            assert best is not None and int(best[0]) == 1000, best

            gone = await inv.mass_cancel()  # every shard
            assert sorted(gone) == sorted([int(small["order_id"]), int(second["order_id"])])
            assert await inv.my_orders() == []
        finally:
            await stream.close()
            for client in (inv, direct_b):
                await client.aclose()
