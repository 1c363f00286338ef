"""The console against the whole venue (SQLite + in-process EVM, real core, gateway, settlement):
trades by signed REST clients appear in the tape and settle on chain (CONFIRMED, tx hash, gas);
a halt from the console makes the next order fail with INSTRUMENT_HALTED."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections.abc import Coroutine, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import expect

from venue.config import VenueConfig
from venue.demo import BLOCK_LOTS, SYMBOL, start_demo_market
from venue.runtime import Venue
from venueclient import ApiError, VenueClient

pytestmark = [pytest.mark.browser, pytest.mark.slow]

T = TypeVar("T")


class VenueThread:
    """A whole venue on its own event loop in a thread, so Playwright's sync API can drive it."""

    def __init__(self, data_dir: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        self.venue = Venue(VenueConfig(data_dir=data_dir, port=port), fresh_chain=True)
        self.loop = asyncio.new_event_loop()
        self.keys: dict[str, dict[str, str]] = {}
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self.loop.run_forever, name="venue", daemon=True)
        self._server: asyncio.Future[None] | None = None

    def start(self) -> None:
        self._thread.start()
        self.call(self.venue.start(), timeout=180)
        self.keys = self.call(start_demo_market(self.venue, investors=2))
        self._server = asyncio.run_coroutine_threadsafe(self.venue.serve(on_ready=self._ready.set), self.loop)
        assert self._ready.wait(30), "venue did not start serving"

    def stop(self) -> None:
        self.call(self.venue.stop())
        if self._server is not None:
            self._server.result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)
        self.loop.close()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def client(self, participant: str) -> VenueClient:
        secret = self.keys[participant]
        return VenueClient(self.venue.base_url, secret["key_id"], secret["private_key"])


@pytest.fixture
def real(tmp_path: Path) -> Iterator[VenueThread]:
    running = VenueThread(tmp_path / "var")
    running.start()
    yield running
    running.stop()


def test_console_sees_real_trades_settle_and_a_halt_reject_orders(page: Any, real: VenueThread) -> None:
    page.goto(real.venue.console_url())
    expect(page.get_by_test_id("connection-status")).to_have_text("live", timeout=15_000)
    expect(page.get_by_test_id(f"status-{SYMBOL}")).to_have_text("open")

    async def cross() -> int:
        async with real.client("mm-1") as mm, real.client("inv-1") as inv:
            await mm.place(SYMBOL, "sell", 2, "45010.00", post_only=True)
            buy = await inv.place(SYMBOL, "buy", 2, "45010.00", tif="ioc")
            assert buy["status"] == "filled", buy
            trade_id: int = buy["fills"][0]["trade_id"]
            return trade_id

    trade_id = real.call(cross())
    expect(page.get_by_test_id(f"trade-{trade_id}")).to_be_visible()
    expect(page.get_by_test_id(f"trade-price-{trade_id}")).to_have_text("45010.00")
    state = page.get_by_test_id(f"settlement-state-{trade_id}")
    expect(state).to_have_text("confirmed", timeout=60_000)
    tx_hash = page.get_by_test_id(f"settlement-tx-{trade_id}").get_attribute("title")
    assert tx_hash is not None and tx_hash.startswith("0x") and len(tx_hash) == 66
    assert int(page.get_by_test_id(f"settlement-gas-{trade_id}").inner_text().replace(",", "")) > 21_000

    page.once("dialog", lambda dialog: dialog.accept())  # the console asks before a halt

    page.get_by_test_id(f"halt-{SYMBOL}").click()
    expect(page.get_by_test_id(f"status-{SYMBOL}")).to_have_text("halted")

    async def order_while_halted() -> str:
        async with real.client("inv-1") as inv:
            try:
                await inv.place(SYMBOL, "buy", 1, "45000.00")
            except ApiError as exc:
                return exc.code
        return "ACCEPTED"

    assert real.call(order_while_halted()) == "INSTRUMENT_HALTED"
    expect(page.get_by_test_id("rejection-count-INSTRUMENT_HALTED")).to_have_text("1")
    expect(page.get_by_test_id("audit-table")).to_contain_text("instrument.status")
    expect(page.get_by_test_id("audit-chain")).to_have_text("hash chain OK")

    page.get_by_test_id("reconcile-run").click()
    expect(page.get_by_test_id("reconciliation-status")).to_have_text("in balance", timeout=30_000)


def test_console_shows_the_nav_premium_attestation_freshness_rfqs_and_blocks(page: Any, real: VenueThread) -> None:
    page.goto(real.venue.console_url())
    expect(page.get_by_test_id("connection-status")).to_have_text("live", timeout=15_000)
    view = real.venue.attestations.reference_view(SYMBOL)
    assert view is not None and view["nav_per_note"] is not None
    expected = f"{Decimal(view['nav_per_note']):.2f}"
    expect(page.get_by_test_id(f"nav-{SYMBOL}")).to_have_text(expected, timeout=15_000)
    expect(page.get_by_test_id(f"fresh-nav-{SYMBOL}")).to_have_class(re.compile(r"\bpill-ok\b"))
    expect(page.get_by_test_id(f"fresh-custody-{SYMBOL}")).to_have_class(re.compile(r"\bpill-ok\b"))
    expect(page.get_by_test_id(f"collar-{SYMBOL}")).to_contain_text(" to ")
    expect(page.get_by_test_id(f"coverage-{SYMBOL}")).to_have_text(re.compile(r"^\d+\.\d{2}%$"))

    async def off_book() -> tuple[int, int]:
        async with real.client("mm-1") as mm, real.client("inv-1") as inv:
            rfq = await inv.request_quotes(SYMBOL, "buy", 2, ttl_s=60)
            await mm.quote_rfq(rfq["rfq_id"], "45020.00", 2)
            await inv.submit_block("deal-1", SYMBOL, "sell", "45000.00", BLOCK_LOTS, counterparty="mm-1")
            block = await mm.submit_block("deal-1", SYMBOL, "buy", "45000.00", BLOCK_LOTS, counterparty="inv-1")
            return rfq["rfq_id"], block["trade_id"]

    rfq_id, block_trade = real.call(off_book())
    expect(page.get_by_test_id(f"rfq-state-{rfq_id}")).to_have_text("open", timeout=15_000)
    expect(page.get_by_test_id(f"rfq-{rfq_id}")).to_contain_text("mm-1 2@45020.00 (live)")
    expect(page.get_by_test_id("block-state-deal-1")).to_have_text("matched")
    expect(page.get_by_test_id(f"trade-origin-{block_trade}")).to_have_text("BLOCK")
