"""Issue 16 end to end through the real gateway, on both backends (embedded: in-process EVM + SQLite;
production: anvil + PostgreSQL): a participant in signed mode trades with EIP-712 orders its wallet
signed, the venue refuses what does not match, the DvP contract settles the signed sides and counts
their fills, and an on-chain cancel takes the resting order off the book within one poll."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import pytest
from eth_account import Account

import store as store_pkg
from compliance.countries import ALPHA2_TO_NUMERIC
from gateway.ports import ApiKey, Role
from market.signed import signed_order_from_wire
from settlement.artifacts import load
from settlement.investor import InvestorActions
from tests.venue.conftest import RunningVenue
from tests.venue.test_e2e import client, wait_for
from venue.demo import SYMBOL
from venueclient import ApiError, VenueClient, generate_keypair
from venueclient.signed_orders import OrderDomain, order_digest, sign_for


def _domain(running: RunningVenue) -> OrderDomain:
    venue = running.venue
    return OrderDomain(chain_id=int(venue.chain.w3.eth.chain_id), verifying_contract=venue.deployment.settlement)


def _signed_mode(running: RunningVenue, participant: str) -> str:
    venue, wallet = running.venue, running.keys[participant]["wallet"]
    record = venue.store.update_participant(participant, signed_orders=True)
    venue.register_participant(record, wallet)
    return wallet


@pytest.mark.slow
async def test_a_signed_mode_investor_trades_with_signed_orders(running: RunningVenue) -> None:
    venue = running.venue
    wallet = _signed_mode(running, "inv-1")
    key = venue.chain.private_key(wallet)
    investor = InvestorActions(venue.chain, venue.deployment.settlement)
    await asyncio.to_thread(investor.set_signed_only, wallet)  # the chain now refuses unsigned debits
    expiry = int(time.time()) + 3_600
    async with client(running, "mm-1") as mm, client(running, "inv-1") as inv:
        [instrument] = [i for i in await inv.instruments() if i["symbol"] == SYMBOL]

        def signed(side: str, qty: int, price: str, nonce: int) -> dict[str, str]:
            return sign_for(instrument, wallet=wallet, side=side, qty=qty, price=price, domain=_domain(running),
                            private_key=key, expiry=expiry, nonce=nonce)

        await mm.place(SYMBOL, "sell", 5, "45010.00", post_only=True)
        with pytest.raises(ApiError) as err:
            await inv.place(SYMBOL, "buy", 2, "45010.00", tif="ioc")
        assert err.value.code == "SIGNED_ORDER_REQUIRED"
        with pytest.raises(ApiError) as err:  # signed for 2 at 45000, sent at 45010
            await inv.place(SYMBOL, "buy", 2, "45010.00", tif="ioc", signed_order=signed("buy", 2, "45000.00", 1))
        assert err.value.code == "SIGNED_ORDER_MISMATCH"
        forged = {**signed("buy", 2, "45010.00", 2), "nonce": "3"}  # the signature is over nonce 2
        with pytest.raises(ApiError) as err:
            await inv.place(SYMBOL, "buy", 2, "45010.00", tif="ioc", signed_order=forged)
        assert err.value.code == "SIGNED_ORDER_BAD_SIGNATURE"
        with pytest.raises(ApiError) as err:
            await inv.place(SYMBOL, "buy", 2, "45010.00", tif="ioc", signed_order={**forged, "nonce": "x"})
        assert err.value.code == "INVALID_FIELD" and "signed_order" in str(err.value)
        with pytest.raises(ApiError) as err:  # well formed for the schema, beyond uint256
            await inv.place(SYMBOL, "buy", 2, "45010.00", tif="ioc",
                            signed_order={**forged, "nonce": str(2**256)})
        assert err.value.code == "SIGNED_ORDER_MALFORMED"

        order = signed("buy", 2, "45010.00", 4)
        buy = await inv.place(SYMBOL, "buy", 2, "45010.00", tif="ioc", signed_order=order)
        assert (buy["status"], buy["filled_qty"]) == ("filled", "2")

        async def stored() -> bool:  # the store writer runs behind the book
            row = await asyncio.to_thread(venue.store.get_order, buy["order_id"])
            return row is not None and order["signature"] in (row.signed_order or "")

        await wait_for(stored, timeout=10)

        async def confirmed() -> bool:
            return venue.core.settlement_counts()["confirmed"] == 1

        await wait_for(confirmed)
        kept = signed_order_from_wire(dict(order))
        status = await asyncio.to_thread(investor.order_status, kept)
        assert status == (False, 2)  # the contract counted the fill against the signed order

        # a resting signed bid, cancelled by the investor on chain by hash
        rest = signed("buy", 1, "44000.00", 5)
        bid = await inv.place(SYMBOL, "buy", 1, "44000.00", signed_order=rest)
        assert venue.core.order(bid["order_id"]) is not None
        await asyncio.to_thread(investor.cancel_orders, wallet, [order_digest(rest, _domain(running))])
        head, logs = await asyncio.to_thread(venue.signed_cancels.fetch)
        venue.signed_cancels.apply(head, logs)  # one poll (the running watcher may have done it already)

        async def gone() -> bool:
            return venue.core.order(bid["order_id"]) is None

        await wait_for(gone, timeout=10)

        async def audited() -> bool:
            return any(e.action == "orders.cancel_signed" and json.loads(e.details)["order_id"] == bid["order_id"]
                       and json.loads(e.details)["code"] == "ORDER_CANCELLED_ON_CHAIN"
                       for e in venue.core.audit_log(50))

        await wait_for(audited, timeout=10)

        # and in bulk: raising the minimum nonce voids every order below it
        bids = [await inv.place(SYMBOL, "buy", 1, "44000.00", signed_order=signed("buy", 1, "44000.00", n))
                for n in (6, 7)]
        await asyncio.to_thread(investor.raise_min_nonce, wallet, 7)
        venue.signed_cancels.apply(*await asyncio.to_thread(venue.signed_cancels.fetch))

        async def first_gone() -> bool:
            return venue.core.order(bids[0]["order_id"]) is None

        await wait_for(first_gone, timeout=10)
        assert venue.core.order(bids[1]["order_id"]) is not None  # nonce 7 is still valid


def _contract_wallet(running: RunningVenue, owner_key: bytes) -> str:
    """A DemoSmartWallet (ERC-1271, one owner key) onboarded like an investor wallet: identity,
    cash, and the DvP contract approved from inside the wallet (``execute``)."""
    venue = running.venue
    chain, dep = venue.chain, venue.deployment
    owner = chain.add_key(owner_key)
    chain.transfer_eth(chain.accounts[0], owner, 10**18)
    wallet = str(chain.deploy(load("DemoSmartWallet"), owner, owner).address)
    venue.admin.register_investor(wallet, ALPHA2_TO_NUMERIC["DE"])
    venue.admin.fund_cash(wallet, 1_000_000 * 10**6)
    cash = chain.our_contract("DemoStablecoin", dep.stablecoin)
    approve = cash.encode_abi("approve", [dep.settlement, 2**256 - 1])
    chain.transact(chain.our_contract("DemoSmartWallet", wallet).functions.execute(dep.stablecoin, approve), owner)
    return wallet


@pytest.mark.slow
@pytest.mark.parametrize("running", ["embedded"], indirect=True)
async def test_a_contract_wallet_trades_with_orders_its_owner_signed(running: RunningVenue) -> None:
    venue = running.venue
    owner_key = bytes(Account.create().key)
    wallet = await asyncio.to_thread(_contract_wallet, running, owner_key)
    record = store_pkg.Participant(id="safe-1", name="safe-1", status=store_pkg.ParticipantStatus.ACTIVE,
                                   investor_category="MIFID_PROFESSIONAL", jurisdiction="DE",
                                   kyc_expiry=dt.date.today() + dt.timedelta(days=365), signed_orders=True)
    venue.store.add_participant(record)
    venue.store.add_wallet("safe-1", wallet)
    venue.register_participant(record, wallet)
    private, public = generate_keypair()
    venue.store.add_api_key(store_pkg.ApiKeyRecord(key_id="safe-1-key", participant="safe-1",
                                                   role=store_pkg.KeyRole.TRADER, public_key=public))
    venue.core.add_key(ApiKey(key_id="safe-1-key", participant="safe-1", role=Role.TRADER, public_key=public))
    await asyncio.to_thread(venue.watcher.poll_once)  # the wallet's cash, for the funding check
    venue.rebaseline()
    expiry = int(time.time()) + 3_600
    async with client(running, "mm-1") as mm, VenueClient(running.url, "safe-1-key", private.hex()) as safe:
        [instrument] = [i for i in await safe.instruments() if i["symbol"] == SYMBOL]

        def signed(key: bytes, nonce: int) -> dict[str, str]:
            return sign_for(instrument, wallet=wallet, side="buy", qty=2, price="45010.00", domain=_domain(running),
                            private_key=key, expiry=expiry, nonce=nonce)

        await mm.place(SYMBOL, "sell", 5, "45010.00", post_only=True)
        with pytest.raises(ApiError) as err:  # a key the wallet does not accept: the contract says no
            await safe.place(SYMBOL, "buy", 2, "45010.00", tif="ioc", signed_order=signed(Account.create().key, 1))
        assert err.value.code == "SIGNED_ORDER_BAD_SIGNATURE"
        order = signed(owner_key, 2)  # the owner's signature: not the wallet's address, but it accepts it
        buy = await safe.place(SYMBOL, "buy", 2, "45010.00", tif="ioc", signed_order=order)
        assert (buy["status"], buy["filled_qty"]) == ("filled", "2")

        async def confirmed() -> bool:
            return venue.core.settlement_counts()["confirmed"] == 1

        await wait_for(confirmed)
    investor = InvestorActions(venue.chain, venue.deployment.settlement)
    status = await asyncio.to_thread(investor.order_status, signed_order_from_wire(dict(order)))
    assert status == (False, 2)  # settled through settleSigned: the contract asked the wallet too
    notes, _ = await asyncio.to_thread(venue.admin.balances, wallet)
    assert notes == 2
