"""A trade the venue declared failed never settles later (issue 12, item 1), at venue level.

The failure is one the chain never records: the settler has lost its role, so the whole batch is
refused (``FAILED``, the trade id stays undecided on chain). The role is given back ("unfreeze")
before the restart, so a venue that resubmits the trade would now settle it.

(a) the failure happens while PostgreSQL refuses connections; (b) no outage: the process dies
right after the buyer was told "failed" (the data directory and database are copied at that
instant, as a SIGKILL would leave them).
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import pytest

from market.model import SettlementNotice, SettlementState
from settlement import Chain
from settlement.deploy import DemoAdmin, DemoDeployment
from tests.venue.conftest import free_port
from tests.venue.test_history_restart import _crash_venue, _running
from tests.venue.test_store_outage import database_down, eventually
from venue.config import VenueConfig
from venue.runtime import Venue
from venueclient import VenueClient

pytestmark = [pytest.mark.slow, pytest.mark.anvil]


def _config(anvil: Chain, data_dir: Path, db_url: str | None = None) -> VenueConfig:
    return VenueConfig(
        data_dir=data_dir, chain=str(anvil.w3.provider.endpoint_uri), port=free_port(),  # type: ignore[attr-defined]
        db_url=db_url, settler_key="0x" + anvil.private_key(anvil.accounts[1]).hex(), finality="none",
    )


async def _trade(config: VenueConfig, keys: dict[str, dict[str, str]], seller_id: str, buyer_id: str) -> int:
    url = f"http://{config.host}:{config.port}"
    async with VenueClient(url, keys[seller_id]["key_id"], keys[seller_id]["private_key"]) as seller, \
            VenueClient(url, keys[buyer_id]["key_id"], keys[buyer_id]["private_key"]) as buyer:
        await seller.place("OMN-CRASH", "sell", 1, "45000.00")
        ack = await buyer.place("OMN-CRASH", "buy", 1, "45000.00", tif="ioc")
    [fill] = ack["fills"]
    return int(fill["trade_id"])


async def _after_restart(config: VenueConfig, trade_id: int, dvp_admin: DemoAdmin) -> SettlementState | None:
    """Start a venue on ``config``; give it time to (wrongly) resubmit; the trade's state then."""
    async with _running(config) as venue:
        await asyncio.sleep(1.0)
        await venue.settlement.drain(timeout=30)
        await asyncio.sleep(0.5)
        trade = venue.core.trade(trade_id)  # in the book only if it was taken up again
        record = await asyncio.to_thread(venue.store.get_settlement, trade_id)
        state = trade.settlement if trade is not None else (record.status if record is not None else None)
    _decided, settled = dvp_admin.settlement.functions.decision(trade_id).call()
    assert not settled, f"trade {trade_id} settled on chain after the venue declared it failed"
    return state


async def test_failed_while_the_database_is_down_stays_failed_after_a_restart(
    anvil: Chain, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    pytest.importorskip("psycopg")
    pg_url = request.getfixturevalue("pg_url")
    cv = _crash_venue()
    config = _config(anvil, tmp_path / "var", pg_url)
    keys = await asyncio.to_thread(cv.setup, anvil, config)
    seller_id, buyer_id = cv.PARTICIPANTS
    dvp = DemoAdmin(anvil, DemoDeployment.load(config.deployment_path))
    settler = anvil.accounts[1]
    told: list[SettlementNotice] = []
    async with _running(config) as venue:
        venue.core.subscribe_settlements(told.append)
        await asyncio.to_thread(dvp.revoke_settler, settler)
        with database_down(pg_url):
            trade_id = await _trade(config, keys, seller_id, buyer_id)
            await asyncio.sleep(2.0)  # the settlement service has refused the batch by now
            assert all(n.state is not SettlementState.FAILED for n in told), "told failed before it was stored"
        await eventually(lambda: any(n.trade_id == trade_id and n.state is SettlementState.FAILED for n in told))
    await asyncio.to_thread(dvp.grant_settler, settler)
    state = await _after_restart(config, trade_id, dvp)
    assert state is SettlementState.FAILED


async def test_told_failed_then_killed_before_any_flush_stays_failed(anvil: Chain, tmp_path: Path) -> None:
    cv = _crash_venue()
    config = _config(anvil, tmp_path / "var")
    keys = await asyncio.to_thread(cv.setup, anvil, config)
    seller_id, buyer_id = cv.PARTICIPANTS
    dvp = DemoAdmin(anvil, DemoDeployment.load(config.deployment_path))
    settler = anvil.accounts[1]
    killed = _config(anvil, tmp_path / "killed")
    copied = asyncio.Event()

    def kill_when_told(notice: SettlementNotice) -> None:
        """What a SIGKILL right after this notice leaves on disk: the data dir and the database."""
        if notice.state is not SettlementState.FAILED or copied.is_set():
            return
        shutil.copytree(config.data_dir, killed.data_dir, ignore=shutil.ignore_patterns("venue.sqlite*"))
        src = sqlite3.connect(config.data_dir / "venue.sqlite")
        dst = sqlite3.connect(killed.data_dir / "venue.sqlite")
        with dst:
            src.backup(dst)
        src.close()
        dst.close()
        copied.set()

    venue: Venue
    async with _running(config) as venue:
        venue.core.subscribe_settlements(kill_when_told)
        await asyncio.to_thread(dvp.revoke_settler, settler)
        trade_id = await _trade(config, keys, seller_id, buyer_id)
        await asyncio.wait_for(copied.wait(), 30)
    await asyncio.to_thread(dvp.grant_settler, settler)
    state = await _after_restart(killed, trade_id, dvp)
    assert state is SettlementState.FAILED
