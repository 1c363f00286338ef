"""End to end through the real gateway: a market maker quotes over websockets, investors trade
over REST, trades settle on chain by DvP, and the chain agrees with the venue's ledger."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest

from tests.venue.conftest import RunningVenue
from venue.demo import SYMBOL
from venueclient import ApiError, VenueClient


def client(running: RunningVenue, participant: str) -> VenueClient:
    secret = running.keys[participant]
    return VenueClient(running.url, secret["key_id"], secret["private_key"])


async def wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def test_trades_settle_on_chain_and_reconcile(running: RunningVenue) -> None:
    venue = running.venue
    before = {p: venue.admin.balances(running.keys[p]["wallet"]) for p in ("mm-1", "inv-1", "inv-2")}
    async with client(running, "mm-1") as mm, client(running, "inv-1") as inv1, client(running, "inv-2") as inv2:
        stream = await mm.connect(cancel_on_disconnect=True)
        await stream.subscribe("fills", "settlements")
        ask = await stream.place(SYMBOL, "sell", 5, "45010.00", post_only=True)
        bid = await stream.place(SYMBOL, "buy", 5, "44990.00", post_only=True)
        assert ask["order_id"] and bid["order_id"]

        book = await inv1.book(SYMBOL)
        assert Decimal(book["asks"][0]["price"]) == Decimal("45010.00")
        buy = await inv1.place(SYMBOL, "buy", 2, "45010.00", tif="ioc")
        sell = await inv2.place(SYMBOL, "sell", 3, "44990.00", tif="ioc")
        assert (buy["status"], buy["filled_qty"], len(buy["fills"])) == ("filled", "2", 1)
        assert (sell["status"], sell["filled_qty"]) == ("filled", "3")

        async def all_confirmed() -> bool:
            counts = venue.core.settlement_counts()
            return counts["confirmed"] == 2 and counts["pending"] == 0 and counts["submitted"] == 0

        await wait_for(all_confirmed)
        notices = venue.core.settlements()
        assert all(n.tx_hash and n.gas_used for n in notices)
        await stream.close()

    after = {p: venue.admin.balances(running.keys[p]["wallet"]) for p in ("mm-1", "inv-1", "inv-2")}
    cash = lambda price, qty: int(Decimal(price) * qty * 10**6)  # noqa: E731
    assert after["inv-1"] == (before["inv-1"][0] + 2, before["inv-1"][1] - cash("45010.00", 2))
    assert after["inv-2"] == (before["inv-2"][0] - 3, before["inv-2"][1] + cash("44990.00", 3))
    assert after["mm-1"] == (before["mm-1"][0] - 2 + 3,
                             before["mm-1"][1] + cash("45010.00", 2) - cash("44990.00", 3))
    report = await venue.core.run_reconciliation(operator="test")
    assert report.ok, report.differences

    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{running.url}/metrics")).text
    accepted = [line for line in text.splitlines() if line.startswith('venue_orders_accepted_total{kind="new"}')]
    assert accepted and float(accepted[0].split()[-1]) >= 4
    assert 'venue_settlements{state="confirmed"}' in text
    assert 'venue_ws_sessions_opened_total{channel="trader"}' in text


async def test_ineligible_and_halted_orders_are_rejected(running: RunningVenue) -> None:
    venue = running.venue
    async with client(running, "retail-1") as retail, client(running, "inv-1") as inv1:
        with pytest.raises(ApiError) as err:
            await retail.place(SYMBOL, "buy", 1, "45000.00")
        assert err.value.code == "CATEGORY_NOT_ALLOWED"

        async with client(running, "operator") as ops:
            await ops.set_status(SYMBOL, "halted")
        with pytest.raises(ApiError) as err:
            await inv1.place(SYMBOL, "buy", 1, "45000.00")
        assert err.value.code == "INSTRUMENT_HALTED"
    counts = venue.core.rejection_counts()
    assert counts["CATEGORY_NOT_ALLOWED"] >= 1 and counts["INSTRUMENT_HALTED"] >= 1
    actions = [e.action for e in venue.core.audit_log()]
    assert "instrument.status" in actions and venue.core.audit_chain_ok()


async def test_on_chain_freeze_blocks_the_next_order(running: RunningVenue) -> None:
    venue = running.venue
    async with client(running, "inv-1") as inv1:
        await venue.core.freeze_wallet("inv-1", True, operator="test")

        async def rejected() -> bool:
            try:
                ack = await inv1.place(SYMBOL, "buy", 1, "44000.00")
            except ApiError as exc:
                return exc.code == "WALLET_FROZEN"
            try:  # the freeze may reach the watcher first: enforcement then cancels the order itself
                await inv1.cancel(int(ack["order_id"]))
            except ApiError as exc:
                assert exc.code == "UNKNOWN_ORDER", exc
            return False

        await wait_for(rejected, timeout=15)
        await venue.core.freeze_wallet("inv-1", False, operator="test")

        async def accepted() -> bool:
            try:
                await inv1.place(SYMBOL, "buy", 1, "44000.00")
            except ApiError:
                return False
            return True

        await wait_for(accepted, timeout=15)


async def test_participants_and_keys_added_while_running_are_picked_up(running: RunningVenue) -> None:
    import datetime as dt

    import store as store_pkg
    from venueclient import generate_keypair

    venue = running.venue
    wallet = venue.chain.new_account()
    venue.store.add_participant(store_pkg.Participant(
        id="late-1", name="late", status=store_pkg.ParticipantStatus.ACTIVE, investor_category="MIFID_PROFESSIONAL",
        jurisdiction="DE", kyc_expiry=dt.date.today() + dt.timedelta(days=30)))
    venue.store.add_wallet("late-1", wallet)
    private, public = generate_keypair()
    venue.store.add_api_key(store_pkg.ApiKeyRecord(key_id="late-key", participant="late-1",
                                                   role=store_pkg.KeyRole.TRADER, public_key=public))
    assert venue.core.api_key("late-key") is None  # nothing awaited yet: not applied
    async with VenueClient(running.url, "late-key", private) as late:
        await wait_for(lambda: _book_ok(late), timeout=10)  # the 2 s reference refresh
        codes: list[str] = []

        async def refused_as_unverified() -> bool:
            try:
                await late.place(SYMBOL, "buy", 1, "45000.00")
            except ApiError as exc:
                codes.append(exc.code)
                return exc.code == "IDENTITY_NOT_VERIFIED"  # known now, but not registered on chain
            raise AssertionError("an unregistered wallet's order was accepted")

        await wait_for(refused_as_unverified, timeout=10)
        # until the watcher has read the new wallet, the gatekeeper refuses rather than guesses
        assert set(codes) <= {"CHAIN_STATE_UNKNOWN", "IDENTITY_NOT_VERIFIED"}
    assert (venue.core.wallet_of("late-1") or "").lower() == wallet.lower()


async def _book_ok(c: VenueClient) -> bool:
    try:
        await c.book(SYMBOL)
    except ApiError:
        return False
    return True


async def test_an_instrument_listed_while_running_opens_for_trading(running: RunningVenue) -> None:
    from venue import admin

    venue = running.venue
    admin.add_instrument(
        venue.config, "OMN-2030B", name="second series", token=venue.deployment.token,
        cash_token=venue.deployment.stablecoin, token_decimals=0, cash_decimals=6, tick="0.05", lot="1",
        min_qty=1, max_qty=50, band=("20000", "80000"),
        rules={"allowed_categories": ["MIFID_PROFESSIONAL", "ELIGIBLE_COUNTERPARTY", "US_QIB"]},
    )

    async def listed() -> bool:
        return venue.core.listing("OMN-2030B") is not None

    await wait_for(listed, timeout=10)
    async with client(running, "inv-1") as inv1:
        ack = await inv1.place("OMN-2030B", "buy", 1, "40000.05")
        assert ack["status"] == "open"
        with pytest.raises(ApiError) as err:
            await inv1.place("OMN-2030B", "buy", 1, "40000.01")  # off this series' 0.05 grid
        assert err.value.code == "WRONG_TICK"
    assert "instrument.open" in [e.action for e in venue.core.audit_log()]
