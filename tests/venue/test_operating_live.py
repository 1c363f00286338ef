"""Operating a running venue (issue 19): a revoked key stops at once and its websocket sessions are
closed; offboarding cancels orders; listing rules change live; a bad stored record never stops a
start. Embedded venue (SQLite + in-process EVM) with the demo market, over real sockets."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import store as store_pkg
from tests.venue.conftest import RunningVenue, free_port, serve_demo
from venue.config import VenueConfig
from venue.demo import SYMBOL, run_bots
from venue.runtime import Venue
from venueclient import ApiError, VenueClient


async def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[RunningVenue]:
    # the chain-lag safeguard is off: on a loaded machine a starved watcher would refuse orders
    # with CHAIN_STATE_STALE, which is not what these tests are about
    async with serve_demo(VenueConfig(data_dir=tmp_path / "var", port=free_port(), max_chain_lag_s=None)) as running:
        yield running


def client(running: RunningVenue, participant: str) -> VenueClient:
    secret = running.keys[participant]
    return VenueClient(running.url, secret["key_id"], secret["private_key"])


@pytest.mark.slow
async def test_revoking_offboarding_and_rule_changes_take_effect_in_the_running_venue(
        embedded: RunningVenue) -> None:
    await _the_demo_clients_only_produce_the_rejections_the_demo_shows(embedded)
    await _a_key_revoked_with_the_cli_closes_its_websocket_sessions(embedded)
    await _operator_api_revokes_offboards_and_changes_rules_at_once(embedded)


async def _the_demo_clients_only_produce_the_rejections_the_demo_shows(embedded: RunningVenue) -> None:
    """The demo means to show one kind of rejection: the retail investor's CATEGORY_NOT_ALLOWED."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_bots(embedded.venue, embedded.keys, stop))
    await asyncio.sleep(12)
    stop.set()
    bots = await asyncio.wait_for(task, 60)
    codes: dict[str, int] = {}
    for bot in bots:
        for code, n in bot.stats.reject_codes.items():
            codes[code] = codes.get(code, 0) + n
    assert sum(bot.stats.orders for bot in bots) > 20
    assert set(codes) <= {"CATEGORY_NOT_ALLOWED"}, codes


async def _a_key_revoked_with_the_cli_closes_its_websocket_sessions(embedded: RunningVenue) -> None:
    from venue import admin

    async with client(embedded, "mm-1") as mm:
        stream = await mm.connect()
        assert (await stream.place(SYMBOL, "sell", 1, "45100.00", post_only=True))["order_id"]
        await asyncio.to_thread(admin.revoke_key, embedded.venue.config, embedded.keys["mm-1"]["key_id"])
        await asyncio.wait_for(stream.closed.wait(), 20)  # the next reference refresh (2 s)
        assert (stream.close_code, stream.close_reason) == (4010, "KEY_REVOKED")
        with pytest.raises(ApiError) as err:
            await mm.place(SYMBOL, "sell", 1, "45100.00")
        assert err.value.code == "UNKNOWN_KEY"


async def _operator_api_revokes_offboards_and_changes_rules_at_once(embedded: RunningVenue) -> None:
    venue = embedded.venue
    async with client(embedded, "operator") as op, client(embedded, "inv-1") as inv1, \
            client(embedded, "inv-2") as inv2:
        stream = await inv2.connect()
        await inv1.place(SYMBOL, "buy", 1, "44000.00")
        result = await op.request("POST", f"/v1/operator/keys/{embedded.keys['inv-2']['key_id']}/revoke")
        assert result["record"]["participant"] == "inv-2"
        # no waiting: the reply comes after the venue applied the revocation
        assert venue.core.api_key(embedded.keys["inv-2"]["key_id"]) is None
        await asyncio.wait_for(stream.closed.wait(), 5)
        assert stream.close_code == 4010

        off = await op.request("POST", "/v1/operator/participants/inv-1/offboard")
        assert off["record"]["status"] == "closed" and off["record"]["keys_revoked"]
        assert [o for o in venue.engine.open_orders() if o.participant == "inv-1"] == []  # cancelled

        changed = await op.request("PATCH", f"/v1/operator/instruments/{SYMBOL}/rules",
                                   body={"rules": {"blocked_jurisdictions": ["RU", "DE"]}})
        assert changed["record"]["rules"]["blocked_jurisdictions"] == ["RU", "DE"]
        with pytest.raises(ApiError) as err:
            await op.request("PATCH", f"/v1/operator/instruments/{SYMBOL}/rules",
                             body={"rules": {"blocked_jurisdictions": ["XX"]}})
        assert (err.value.code, err.value.status) == ("INVALID_JURISDICTION", 400)
        with pytest.raises(ApiError) as err:
            await op.request("POST", "/v1/operator/participants",
                             body={"participant": "z1", "jurisdiction": "LU", "wallet": "0x1234"})
        assert err.value.code == "INVALID_WALLET"
        added = await op.request("POST", "/v1/operator/participants",
                                 body={"participant": "z1", "jurisdiction": "lu"})
        assert added["record"]["jurisdiction"] == "LU"
    actions = [e.action for e in venue.core.audit_log()]
    assert {"key.revoke", "participant.offboard", "instrument.rules", "participant.add"} <= set(actions)


async def test_a_bad_stored_participant_never_stops_the_venue_from_starting(tmp_path: Path,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    config = VenueConfig(data_dir=tmp_path / "var", port=free_port())
    config.data_dir.mkdir(parents=True)
    s = store_pkg.Store.open(config.database_url)
    try:  # written past the CLI's validation (an older version, or by hand)
        for pid, category, country in (("bad-1", "MIFID_PROFESSIONAL", "XX"), ("bad-2", "GRANDMA", "LU"),
                                       ("good-1", "MIFID_PROFESSIONAL", "LU")):
            s.add_participant(store_pkg.Participant(
                id=pid, name=pid, status=store_pkg.ParticipantStatus.ACTIVE, investor_category=category,
                jurisdiction=country, kyc_expiry=dt.date.today() + dt.timedelta(days=30)))
    finally:
        s.close()
    venue = Venue(config, fresh_chain=True)
    await venue.start()
    try:
        ids = {p.participant for p in venue.core.participants()}
        assert "good-1" in ids and not {"bad-1", "bad-2"} & ids
        skipped = [r.getMessage() for r in caplog.records if "is skipped" in r.getMessage()]
        assert any("bad-1" in m and "INVALID_JURISDICTION" in m for m in skipped)
        assert any("bad-2" in m and "INVALID_CATEGORY" in m for m in skipped)
    finally:
        await venue.stop()
