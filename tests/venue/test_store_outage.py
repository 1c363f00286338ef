"""The venue's store port during a real database outage (issue 12, items 1 and 2): the PostgreSQL
database refuses connections and its sessions are killed with ``pg_terminate_backend``. Settlement
states are retried in order until written, nobody is told before, the backlog is bounded and
visible, intake refuses with ``STORE_BACKLOG`` at the bound, operator actions answer
``STORE_UNAVAILABLE``; nothing is dropped."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import generate_latest

import store as store_pkg
from gateway.metrics import REGISTRY
from market.codes import Unavailable
from market.model import SettlementNotice, SettlementState
from tests.venue.conftest import PG_ADMIN_URL, RunningVenue
from venue.storage import StoreAdapter

pytestmark = pytest.mark.postgres


@contextlib.contextmanager
def database_down(url: str) -> Iterator[None]:
    """The database refuses new connections and every open session is killed, until the block ends."""
    name = sa.make_url(url).database
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                         {"n": name})
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()


def notice(trade_id: int, state: SettlementState, reason: str | None = None) -> SettlementNotice:
    return SettlementNotice(trade_id=trade_id, symbol="OMN-T", buyer="b", seller="s", state=state, reason=reason)


async def eventually(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_a_failed_settlement_write_is_kept_not_dropped(pg_url: str) -> None:
    """Item 2 as found on main: a failed batch write was logged and dropped."""
    store = store_pkg.Store.open(pg_url)
    adapter = StoreAdapter(store, store_pkg.StoreWriter(store))
    try:
        for tid in (1, 2, 3):
            adapter.record_settlement(notice(tid, SettlementState.PENDING))
        adapter.record_settlement(notice(2, SettlementState.FAILED, reason="seller frozen"))
        with database_down(pg_url):
            adapter.flush()
        adapter.flush()
        states = {u.trade_id: u.status for u in store.list_settlements()}
        assert states == {1: SettlementState.PENDING, 2: SettlementState.FAILED, 3: SettlementState.PENDING}
    finally:
        store.close()


async def test_settlement_states_wait_for_the_store_in_order_and_intake_pauses_at_the_bound(pg_url: str) -> None:
    store = store_pkg.Store.open(pg_url)
    adapter = StoreAdapter(store, store_pkg.StoreWriter(store), max_backlog=4, retry_max_s=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(adapter.run(stop, lambda: 41))
    told: list[tuple[int, SettlementState]] = []

    def record(tid: int, state: SettlementState) -> None:
        adapter.record_settlement(notice(tid, state), lambda: told.append((tid, state)))

    try:
        record(1, SettlementState.PENDING)
        await eventually(lambda: told == [(1, SettlementState.PENDING)])
        with database_down(pg_url):
            record(2, SettlementState.PENDING)
            record(1, SettlementState.FAILED)
            record(2, SettlementState.SUBMITTED)
            await asyncio.sleep(1.0)
            assert told == [(1, SettlementState.PENDING)]  # decided, not stored: nobody is told
            assert adapter.backlog == 3 and adapter.oldest_age_s >= 0.9 and adapter.write_failures >= 2
            scrape = generate_latest(REGISTRY).decode()
            assert "venue_store_backlog 3.0" in scrape and "venue_store_backlog_oldest_seconds" in scrape
            assert adapter.intake_refusal() is None
            record(2, SettlementState.CONFIRMED)
            refusal = adapter.intake_refusal()
            assert refusal is not None and refusal.code == "STORE_BACKLOG"
            with pytest.raises(Unavailable) as err:
                await asyncio.to_thread(adapter.audit, "operator", "participant.suspend", {"participant": "b"})
            assert err.value.code == "STORE_UNAVAILABLE"
        await eventually(lambda: len(told) == 5)
        assert told[1:] == [(2, SettlementState.PENDING), (1, SettlementState.FAILED),
                            (2, SettlementState.SUBMITTED), (2, SettlementState.CONFIRMED)]
        assert adapter.backlog == 0 and adapter.intake_refusal() is None
        assert {u.trade_id: u.status for u in store.list_settlements()} == {
            1: SettlementState.FAILED, 2: SettlementState.CONFIRMED}
        assert store.settlement_final_through() == 41
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        store.close()


@pytest.mark.anvil
@pytest.mark.parametrize("running", ["production"], indirect=True)
async def test_an_operator_action_during_a_database_outage_answers_503(running: RunningVenue) -> None:
    """Item 2: an operator action during a database outage answered 500."""
    venue = running.venue
    session = venue.console_auth.exchange(venue.console_auth.issue_login_code("ops-alice"))
    assert venue.config.db_url is not None
    async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
        with database_down(venue.config.db_url):
            answer = await http.post("/console/api/participants/inv-1/status", json={"status": "suspended"},
                                     headers={"Authorization": f"Bearer {session.token}"})
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "STORE_UNAVAILABLE"
        assert [p.status for p in venue.core.participants() if p.participant == "inv-1"] == ["active"]
