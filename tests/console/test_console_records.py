"""The console on the whole venue (demo market, in-process EVM, SQLite): price/volume and depth
charts with the NAV line, the premium next to the book and on each trade, one decimal format for
every price, no clipped columns at 1400 px, a confirmation before a halt, the register of holders
and the audit anchor. One venue for the module (starting one is the slow part)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.console.test_console_real_venue import VenueThread
from venue.anchor import anchor_head
from venue.demo import SYMBOL

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TWO_DECIMALS = re.compile(r"^\d+\.\d{2}$")
SCREENSHOT = Path("/tmp/console-records-1400.png")


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VenueThread]:
    running = VenueThread(tmp_path_factory.mktemp("console-records") / "var")
    running.start()
    yield running
    running.stop()


def _open(page: Any, real: VenueThread) -> None:
    page.goto(real.venue.console_url())
    expect(page.get_by_test_id("connection-status")).to_have_text("live", timeout=15_000)


def _nav(real: VenueThread) -> Decimal:
    view = real.venue.attestations.reference_view(SYMBOL)
    assert view is not None and view["nav_in_force"] is not None
    return Decimal(view["nav_in_force"])


def _cross(real: VenueThread, price: str, qty: int = 1) -> int:
    async def cross() -> int:
        async with real.client("mm-1") as mm, real.client("inv-1") as inv:
            await mm.place(SYMBOL, "sell", qty, price, post_only=True)
            buy = await inv.place(SYMBOL, "buy", qty, price, tif="ioc")
            assert buy["status"] == "filled", buy
            trade_id: int = buy["fills"][0]["trade_id"]
            return trade_id

    return real.call(cross())


def test_the_price_chart_draws_the_trades_and_the_nav_line_and_trades_show_their_premium(
        page: Any, real: VenueThread) -> None:
    _open(page, real)
    nav = _nav(real)
    price = (nav * Decimal("1.003")).quantize(Decimal("0.01"))  # 0.3 % over NAV: inside the collar
    trade_id = _cross(real, str(price))
    expect(page.get_by_test_id(f"trade-{trade_id}")).to_be_visible(timeout=15_000)
    expect(page.get_by_test_id(f"trade-premium-{trade_id}")).to_have_text(re.compile(r"^\+(29|30|31) bps$"))
    chart = page.get_by_test_id(f"price-chart-{SYMBOL}")
    expect(chart).to_be_visible()
    assert int(chart.get_attribute("data-points") or 0) >= 1
    nav_line = page.get_by_test_id(f"nav-line-{SYMBOL}")
    expect(nav_line).to_have_attribute("data-nav", TWO_DECIMALS)
    assert abs(Decimal(nav_line.get_attribute("data-nav") or "0") - nav) <= Decimal("0.01")
    expect(chart).to_contain_text(f"NAV {nav_line.get_attribute('data-nav')}")
    expect(page.get_by_test_id(f"price-line-{SYMBOL}")).to_have_attribute("points", re.compile(r"\d"))
    expect(page.get_by_test_id(f"nav-{SYMBOL}")).to_have_text(TWO_DECIMALS)


def test_every_price_has_the_instruments_decimals(page: Any, real: VenueThread) -> None:
    """The issue's example: the book showed ``45000.1`` beside ``45045.19``."""
    nav = _nav(real)
    below, above = (nav * Decimal("0.99")).quantize(Decimal("0.1")), (nav * Decimal("1.005")).quantize(Decimal("0.01"))

    async def rest() -> None:
        async with real.client("inv-2") as inv:
            await inv.place(SYMBOL, "buy", 1, str(below))  # one decimal digit on the wire
        async with real.client("mm-1") as mm:
            await mm.place(SYMBOL, "sell", 1, str(above), post_only=True)

    real.call(rest())
    _open(page, real)
    expect(page.get_by_test_id(f"depth-{SYMBOL}")).to_contain_text(f"{below:.2f}", timeout=15_000)
    expect(page.get_by_test_id(f"depth-chart-{SYMBOL}")).to_have_attribute("data-levels", re.compile(r"^[1-9]"))
    # the book's mid against the NAV, next to the book
    expect(page.get_by_test_id(f"premium-{SYMBOL}")).to_have_text(re.compile(r"^[+-]\d+\.\d{2}%$"))
    cells = [*page.locator(f"[data-testid^='bid-price-{SYMBOL}-']").all_inner_texts(),
             *page.locator(f"[data-testid^='ask-price-{SYMBOL}-']").all_inner_texts(),
             *page.locator("[data-testid^='trade-price-']").all_inner_texts(),
             *(page.get_by_test_id(f"{cell}-{SYMBOL}").inner_text() for cell in ("best-bid", "best-ask", "last"))]
    assert len(cells) >= 5
    assert [c for c in cells if not TWO_DECIMALS.match(c)] == []


def test_no_column_is_clipped_at_1400_px_and_times_say_utc(page: Any, real: VenueThread) -> None:
    page.set_viewport_size({"width": 1400, "height": 1000})
    _open(page, real)
    expect(page.get_by_test_id("participants-table")).to_contain_text("inv-1")
    expect(page.get_by_test_id("holders-status")).to_have_text(re.compile("reconciled|flagged"), timeout=20_000)
    clipped = page.evaluate("""() => [...document.querySelectorAll("table, .scroll, .panel")]
        .filter((n) => n.offsetParent !== null && n.scrollWidth > n.clientWidth + 1)
        .map((n) => `${n.dataset.testid || n.id || n.className}: ${n.scrollWidth} > ${n.clientWidth}`)""")
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert clipped == []
    headers = page.locator("th", has_text="Time").all_inner_texts()
    assert headers and all("UTC" in h for h in headers)
    expect(page.get_by_test_id("utc-clock")).to_have_text(re.compile(r"^\d{2}:\d{2}:\d{2} UTC$"))


def test_the_register_of_holders_and_the_audit_anchor_are_shown(page: Any, real: VenueThread) -> None:
    real.call(_in_thread(lambda: anchor_head(real.venue.store, real.venue.chain, real.venue.deployment.admin)))
    _open(page, real)
    expect(page.get_by_test_id("holders-status")).to_have_text("reconciled", timeout=20_000)
    expect(page.get_by_test_id("holder-inv-1")).to_be_visible()
    expect(page.get_by_test_id("holder-diff-inv-1")).to_have_text("0")
    expect(page.get_by_test_id("audit-anchor")).to_have_text("anchored, verified", timeout=20_000)
    with page.expect_download() as download:
        page.get_by_test_id("export-rts22").click()
    text = Path(download.value.path()).read_text()
    assert text.startswith("f1_report_status,") and len(text.strip().splitlines()) >= 2  # the day's trades
    expect(page.get_by_test_id("action-ok")).to_contain_text("RTS 22 export")


def test_halt_asks_for_confirmation_first(page: Any, real: VenueThread) -> None:
    _open(page, real)
    status = page.get_by_test_id(f"status-{SYMBOL}")
    expect(status).to_have_text("open")
    messages: list[str] = []

    def dismiss(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_test_id(f"halt-{SYMBOL}").click()
    expect(page.get_by_test_id("action-ok")).to_contain_text("cancelled")
    expect(status).to_have_text("open")
    assert messages and SYMBOL in messages[0]
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id(f"halt-{SYMBOL}").click()
    expect(status).to_have_text("halted")


async def _in_thread(fn: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(fn)
