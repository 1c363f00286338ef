"""Records on the running venue (embedded, and anvil + PostgreSQL): a trade carries its
premium/discount to the NAV in force in REST and in the store; its confirmation carries the
settlement transaction; the day's RTS 22 export lists it; the register of holders reconciles with
the chain and flags a movement outside the venue; the audit head is anchored and verified."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import time
from collections.abc import Callable

import pytest

from engine import Fill, Side
from market.model import SettlementState
from tests.venue.conftest import RunningVenue
from venue.anchor import anchor_head
from venue.demo import SYMBOL
from venue.refprice import bps_to_nav, premium, premium_bps
from venueclient import ApiError, VenueClient

pytestmark = pytest.mark.slow


class _Sink:
    """A websocket session as the hub sees it: records what it is sent."""

    def __init__(self) -> None:
        self.messages: list[dict[str, object]] = []

    def push(self, text: str) -> None:
        self.messages.append(json.loads(text))


def _client(running: RunningVenue, who: str) -> VenueClient:
    return VenueClient(running.url, running.keys[who]["key_id"], running.keys[who]["private_key"])


async def _until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def test_a_trade_on_record_from_premium_to_confirmation_export_register_and_anchor(
        running: RunningVenue) -> None:
    venue = running.venue
    monitor = venue.attestations.monitor
    assert monitor is not None
    await _until(lambda: monitor.nav(SYMBOL) is not None)
    nav = monitor.nav(SYMBOL)
    assert nav is not None
    price_ticks = int(nav * 1003 / 1000)  # 0.3 % above NAV: a premium inside the collar
    listing = venue.core.listing(SYMBOL)
    assert listing is not None
    price = str(price_ticks * listing.price_increment)
    hub = venue.app.state.gateway.hub
    tape, own = _Sink(), _Sink()
    hub.subscribe_trades(tape, SYMBOL)
    hub.subscribe_private(own, "inv-1", "fills")
    async with _client(running, "mm-1") as mm, _client(running, "inv-1") as inv, \
            _client(running, "operator") as op, _client(running, "inv-2") as other:
        await mm.place(SYMBOL, "sell", 2, price, post_only=True)
        buy = await inv.place(SYMBOL, "buy", 2, price, tif="ioc")
        assert buy["status"] == "filled", buy
        trade_id = buy["fills"][0]["trade_id"]
        expected = bps_to_nav(price_ticks, nav)
        assert abs(expected - premium_bps(premium(price_ticks, nav))) <= 1  # the 6-decimal fraction agrees
        fill = Fill(seq=0, md_seq=0, ts=0, trade_id=trade_id, symbol=SYMBOL, price=price_ticks, qty=2,
                    aggressor=Side.BUY, maker_order_id=0, maker_participant="", maker_remaining=0,
                    taker_order_id=0, taker_participant="", taker_remaining=0)
        found = monitor.premium_of(fill)
        assert found is not None and found[1] == expected and expected > 0
        assert buy["fills"][0]["premium_bps"] == expected  # the order's own acknowledgement carries it too

        # websocket: the trade print and the buyer's fill carry it
        await _until(lambda: any(m.get("trade_id") == trade_id for m in own.messages))
        assert next(m for m in tape.messages if m.get("trade_id") == trade_id)["premium_bps"] == expected
        assert next(m for m in own.messages if m.get("trade_id") == trade_id)["premium_bps"] == expected

        # REST: the public tape and the buyer's own fills carry the premium in bps
        public = await inv.request("GET", f"/v1/instruments/{SYMBOL}/trades")
        assert next(t for t in public if t["trade_id"] == trade_id)["premium_bps"] == expected
        fills = await inv.request("GET", "/v1/fills")
        assert next(f for f in fills if f["trade_id"] == trade_id)["premium_bps"] == expected

        # settled on chain, stored with its premium
        await _until(lambda: (t := venue.core.trade(trade_id)) is not None and t.settlement in (
            SettlementState.CONFIRMED, SettlementState.FINAL))
        await _until(lambda: (s := venue.store.get_trade(trade_id)) is not None and s.premium_bps is not None
                     and (g := venue.store.get_settlement(trade_id)) is not None and g.tx_hash is not None)
        stored = venue.store.get_trade(trade_id)
        assert stored is not None and stored.premium_bps == expected and stored.nav is not None
        settled = venue.store.get_settlement(trade_id)
        assert settled is not None and settled.tx_hash is not None

        # the buyer's confirmation, with the settlement transaction; another participant gets 404
        confirmation = await inv.request("GET", f"/v1/confirmations/{trade_id}")
        assert confirmation["side"] == "buy" and confirmation["qty"] == "2" and confirmation["premium_bps"] == expected
        assert confirmation["settlement"]["tx_hash"] == settled.tx_hash
        try:
            await other.request("GET", f"/v1/confirmations/{trade_id}")
            raise AssertionError("another participant's confirmation was served")
        except ApiError as exc:
            assert exc.code == "UNKNOWN_TRADE"

        # the operator's RTS 22 export of the day lists the trade with its transaction
        today = dt.datetime.now(dt.UTC).date().isoformat()
        text = await op.request("GET", "/v1/operator/exports/rts22", params={"date": today})
        rows = {r["f3_trading_venue_transaction_id"]: r for r in csv.DictReader(io.StringIO(text))}
        assert rows[str(trade_id)]["x_settlement_tx_hash"] == settled.tx_hash
        assert (rows[str(trade_id)]["f7_buyer_id"], rows[str(trade_id)]["f16_seller_id"]) == ("inv-1", "mm-1")
        try:
            await inv.request("GET", "/v1/operator/exports/rts22", params={"date": today})
            raise AssertionError("a trader read the operator's export")
        except ApiError as exc:
            assert exc.code == "FORBIDDEN"

        # register of holders: reconciled; a mint outside the venue is flagged on that wallet
        register = await op.request("GET", f"/v1/operator/holders/{SYMBOL}")
        assert register["reconciled"] is True, register
        buyer = next(h for h in register["holders"] if h["participant"] == "inv-1")
        assert float(buyer["settled"]) >= 2 and buyer["expected"] == buyer["chain"]
        wallet = venue.core.wallet_of("inv-1")
        assert wallet is not None
        await asyncio.to_thread(venue.admin.mint_notes, wallet, 5 * 10**listing.token_decimals)
        register = await op.request("GET", f"/v1/operator/holders/{SYMBOL}")
        flagged = [h for h in register["holders"] if h["flagged"]]
        assert register["reconciled"] is False and [h["participant"] for h in flagged] == ["inv-1"]
        assert flagged[0]["difference"] == "5"
        # a holder the venue never saw (notes minted to a wallet it does not know) is listed and flagged
        stranger = await asyncio.to_thread(venue.chain.new_account)
        await asyncio.to_thread(venue.admin.register_investor, stranger, 442)
        await asyncio.to_thread(venue.admin.mint_notes, stranger, 3 * 10**listing.token_decimals)
        register = await op.request("GET", f"/v1/operator/holders/{SYMBOL}")
        unknown = next(h for h in register["holders"] if h["wallet"] == stranger.lower())
        assert unknown["participant"] is None and unknown["flagged"] and unknown["difference"] == "3"
        assert "scanned" in register["discovery"]

        # the audit head anchored on-chain, then verified against the recomputed chain
        anchored = await asyncio.to_thread(anchor_head, venue.store, venue.chain, venue.deployment.admin)
        assert anchored is not None
        check = await op.request("GET", "/v1/operator/audit/anchors")
        assert check["ok"] is True and check["anchors"][0]["tx_hash"] == anchored.tx_hash, check
