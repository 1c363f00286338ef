"""Issue 12 items 5 and 6 on a whole embedded venue (SQLite + in-process EVM, demo market, no bots):
a chain outage refuses new orders after the max lag, unsettled notional is capped, and a participant
that loses eligibility (freeze or pause on chain, KYC expiry, suspension in the store, last key
revoked) keeps no resting order and no funding hold."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import store as store_pkg
from compliance.errors import ChainSyncError
from engine import CancelOrder, NewOrder, ResultCode, Side
from market.model import Outcome, SettlementState
from tests.venue.conftest import free_port
from venue.config import VenueConfig
from venue.demo import SYMBOL, start_demo_market
from venue.reference import kyc_ts
from venue.runtime import Venue

FAIR = 4_500_000  # ticks: 45,000.00 USDC per note
LOW = 3_700_000  # ticks: 37,000.00, inside the demo NAV collar (-20%): rests, never crosses

VenueFactory = Callable[..., Awaitable[Venue]]


@pytest.fixture
async def make_venue(tmp_path: Path) -> AsyncIterator[VenueFactory]:
    started: list[Venue] = []

    async def make(investors: int = 2, **overrides: Any) -> Venue:
        config = VenueConfig(data_dir=tmp_path / "var", port=free_port(), **overrides)
        venue = Venue(config, fresh_chain=True)
        await venue.start()
        started.append(venue)
        await start_demo_market(venue, investors=investors)
        return venue

    try:
        yield make
    finally:
        for venue in started:
            await venue.stop()


def order(who: str, side: Side, price: int, qty: int = 1) -> NewOrder:
    return NewOrder(ts=0, participant=who, symbol=SYMBOL, side=side, qty=qty, price=price)


async def submit(venue: Venue, cmd: NewOrder) -> Outcome:
    return await venue.core.submit(cmd.participant, cmd)


def code(outcome: Outcome) -> str:
    if outcome.rejection is not None:
        return outcome.rejection.code
    assert outcome.result is not None
    return outcome.result.code.name


def actions(venue: Venue) -> list[str]:
    return [e.action for e in venue.core.audit_log(500)]


def cancels(venue: Venue) -> list[dict[str, Any]]:
    """Details of the ``orders.cancel_ineligible`` audit entries."""
    out: list[dict[str, Any]] = []
    for e in venue.core.audit_log(500):
        if e.action == "orders.cancel_ineligible":
            out.append(json.loads(e.details) if isinstance(e.details, str) else dict(e.details))
    return out


async def until(predicate: Callable[[], bool], timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------- item 5: stale chain view, backlog caps


async def test_chain_outage_refuses_new_orders_with_chain_state_stale_after_the_max_lag(
    make_venue: VenueFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    venue = await make_venue()  # default configuration: the guard is on
    resting = await submit(venue, order("inv-1", Side.BUY, LOW))
    assert code(resting) == "OK" and resting.ack is not None and resting.ack.order_id is not None

    def dead_node(*_: object) -> None:
        raise ChainSyncError("connection refused (test outage)")

    monkeypatch.setattr(venue.watcher, "fetch", dead_node)
    real = venue.watcher._clock
    monkeypatch.setattr(venue.watcher, "_clock", lambda: real() + 3600)  # an hour without a successful poll

    refused = await submit(venue, order("inv-2", Side.BUY, LOW))
    assert code(refused) == "CHAIN_STATE_STALE"
    assert venue.core.rejection_counts().get("CHAIN_STATE_STALE") == 1  # operator API + venue_rejections metric
    assert "alert.CHAIN_STATE_STALE" in actions(venue)
    # cancels still pass: they only reduce risk
    cancel = CancelOrder(ts=0, participant="inv-1", order_id=resting.ack.order_id)
    cancelled = await venue.core.submit("inv-1", cancel)
    assert cancelled.result is not None and cancelled.result.code is ResultCode.OK

    monkeypatch.undo()  # the node is back
    await until(lambda: not venue.watcher.is_stale(1.0))
    assert code(await submit(venue, order("inv-2", Side.BUY, LOW))) == "OK"
    assert "alert.CHAIN_STATE_STALE.cleared" in actions(venue)


async def test_unsettled_notional_above_the_participant_cap_is_refused_with_settlement_backlog(
    make_venue: VenueFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    venue = await make_venue(max_unsettled_notional_participant=50_000)  # whole USDC; one note is 45,000
    monkeypatch.setattr(venue.settlement, "submit", lambda trade: None)  # settlement stalls: trades stay pending
    assert code(await submit(venue, order("mm-1", Side.SELL, FAIR, qty=2))) == "OK"
    bought = await submit(venue, order("inv-1", Side.BUY, FAIR, qty=2))
    assert bought.ack is not None and bought.ack.filled == 2
    trade = venue.core.trades(participant="inv-1")[0]
    assert trade.settlement is SettlementState.PENDING

    assert code(await submit(venue, order("inv-1", Side.BUY, LOW))) == "SETTLEMENT_BACKLOG"
    assert code(await submit(venue, order("mm-1", Side.SELL, FAIR + 1000))) == "SETTLEMENT_BACKLOG"  # the seller too
    assert code(await submit(venue, order("inv-2", Side.BUY, LOW))) == "OK"  # no backlog of its own
    assert venue.core.rejection_counts().get("SETTLEMENT_BACKLOG") == 2
    assert "alert.SETTLEMENT_BACKLOG" in actions(venue)

    venue.core.on_settlement_update(trade.trade_id, SettlementState.CONFIRMED, block=1)
    await until(lambda: venue.core.trades(participant="inv-1")[0].settlement is SettlementState.CONFIRMED)  # stored
    assert code(await submit(venue, order("inv-1", Side.BUY, LOW))) == "OK"


async def test_unsettled_notional_above_the_venue_cap_refuses_everyone(
    make_venue: VenueFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    venue = await make_venue(max_unsettled_notional=40_000)
    monkeypatch.setattr(venue.settlement, "submit", lambda trade: None)
    assert code(await submit(venue, order("mm-1", Side.SELL, FAIR))) == "OK"
    assert code(await submit(venue, order("inv-1", Side.BUY, FAIR))) == "OK"  # trades: 45,000 unsettled
    assert code(await submit(venue, order("inv-2", Side.BUY, LOW))) == "SETTLEMENT_BACKLOG"


# ---------------------------------------------------------------- item 6: eligibility loss cancels resting orders


async def test_a_wallet_frozen_on_chain_loses_its_resting_orders_and_holds_within_one_poll(
    make_venue: VenueFactory,
) -> None:
    venue = await make_venue()
    for price in (LOW, LOW + 100):
        assert code(await submit(venue, order("inv-1", Side.BUY, price))) == "OK"
    assert code(await submit(venue, order("inv-2", Side.BUY, LOW))) == "OK"
    assert venue.gatekeeper.open_holds() == 3
    wallet = venue.core.wallet_of("inv-1")
    assert wallet is not None

    polls = venue.watcher.polls
    await asyncio.to_thread(venue.admin.freeze, wallet)
    await until(lambda: not venue.core.open_orders("inv-1"))
    assert venue.watcher.polls - polls <= 2  # the poll in flight when the freeze landed, then the one that saw it
    assert venue.gatekeeper.open_holds() == 1  # inv-1's two holds released; inv-2 untouched
    assert len(venue.core.open_orders("inv-2")) == 1
    await until(lambda: "orders.cancel_ineligible" in actions(venue), 3)
    [entry] = cancels(venue)
    assert (entry["participant"], entry["reason"], entry["cancelled"]) == ("inv-1", "WALLET_FROZEN", 2)
    assert code(await submit(venue, order("inv-1", Side.BUY, LOW))) == "WALLET_FROZEN"


async def test_a_token_pause_cancels_every_participants_resting_orders(make_venue: VenueFactory) -> None:
    venue = await make_venue()
    # item 8 wiring: the listing's token compliance (canTransfer) is followed from its listing on
    assert venue.deployment.token.lower() in dict(venue.cache.transfer_probes)
    assert code(await submit(venue, order("inv-1", Side.BUY, LOW))) == "OK"
    assert code(await submit(venue, order("mm-1", Side.SELL, FAIR))) == "OK"
    await asyncio.to_thread(venue.admin.pause)
    await until(lambda: not venue.core.open_orders("inv-1") and not venue.core.open_orders("mm-1"))
    assert venue.gatekeeper.open_holds() == 0


async def test_kyc_expiry_suspension_in_the_store_and_last_key_revoked_cancel_resting_orders(
    make_venue: VenueFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    venue = await make_venue(investors=4)
    for who in ("inv-1", "inv-2", "inv-3", "inv-4"):
        assert code(await submit(venue, order(who, Side.BUY, LOW))) == "OK"
    assert venue.gatekeeper.open_holds() == 4

    # inv-1: its KYC on file now ends tomorrow (the reload takes the store's change) ...
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    venue.store.update_participant("inv-1", kyc_expiry=tomorrow)
    expiry = kyc_ts(tomorrow)
    await until(lambda: getattr(venue.gatekeeper.participant("inv-1"), "kyc_expiry_ts", None) == expiry)
    assert venue.core.open_orders("inv-1")  # not expired yet
    # ... and the day passes (the enforcer's clock; the timer on kyc_expiry does the rest)
    enforcer = venue.safeguards.enforcer
    monkeypatch.setattr(enforcer, "_clock", lambda: time.time_ns() + 2 * 86_400 * 10**9)
    # inv-2: suspended by an operator in the store while the venue runs
    venue.store.update_participant("inv-2", status=store_pkg.ParticipantStatus.SUSPENDED)
    # inv-3: its only API key is revoked
    venue.store.revoke_api_key("inv-3-key")
    # inv-4: suspended through the operator API
    await venue.core.set_participant_status("inv-4", "suspended", operator="ops")
    assert venue.core.open_orders("inv-4") == []

    await until(lambda: not any(venue.core.open_orders(w) for w in ("inv-1", "inv-2", "inv-3")))
    assert venue.gatekeeper.open_holds() == 0
    await until(lambda: actions(venue).count("orders.cancel_ineligible") == 4, 3)
    reasons = {e["participant"]: e["reason"] for e in cancels(venue)}
    assert reasons == {"inv-1": "KYC_EXPIRED", "inv-2": "PARTICIPANT_SUSPENDED", "inv-3": "KEY_REVOKED",
                       "inv-4": "PARTICIPANT_SUSPENDED"}
    assert code(await submit(venue, order("inv-2", Side.BUY, LOW))) == "PARTICIPANT_SUSPENDED"
