"""Headless Chromium drives the console against a live server and the fake venue."""

from __future__ import annotations

import os
from typing import Any

import pytest
from playwright.sync_api import expect

from engine import NewOrder, ResultCode, Side
from gateway.operator import ConsoleAuth
from gateway.ports import Outcome, SettlementState
from tests.console.conftest import LiveServer
from tests.console.fakes import SYMBOL, FakeVenue

pytestmark = pytest.mark.browser

TX = "0x" + "ab" * 32


def order(server: LiveServer, venue: FakeVenue, participant: str, side: Side, qty: int, price: int) -> Outcome:
    cmd = NewOrder(ts=0, participant=participant, symbol=SYMBOL, side=side, qty=qty, price=price)
    return server.call(venue.submit(participant, cmd))


def trade(server: LiveServer, venue: FakeVenue, qty: int = 10, price: int = 10_050) -> int:
    order(server, venue, "alice", Side.SELL, qty, price)
    outcome = order(server, venue, "bob", Side.BUY, qty, price)
    assert outcome.result is not None and outcome.result.code is ResultCode.OK
    fills = [e for e in outcome.result.events if type(e).__name__ == "Fill"]
    assert len(fills) == 1
    trade_id: int = fills[0].trade_id
    return trade_id


def open_console(page: Any, server: LiveServer, auth: ConsoleAuth) -> None:
    page.goto(f"{server.url}/console#code={auth.issue_login_code('ops-alice')}")
    expect(page.get_by_test_id("connection-status")).to_have_text("live")
    expect(page.get_by_test_id("operator-name")).to_have_text("ops-alice")


def test_login_code_in_url_is_single_use_and_removed_from_the_address(
    page: Any, server: LiveServer, console_auth: ConsoleAuth
) -> None:
    code = console_auth.issue_login_code("ops-alice")
    page.goto(f"{server.url}/console#code={code}")
    expect(page.get_by_test_id("connection-status")).to_have_text("live")
    assert "#code" not in page.url

    other = page.context.new_page()
    other.goto(f"{server.url}/console#code={code}")
    expect(other.get_by_test_id("login-panel")).to_be_visible()
    expect(other.get_by_test_id("login-error")).to_contain_text("INVALID_LOGIN_CODE")

    other.get_by_test_id("login-code").fill(console_auth.issue_login_code("ops-bob"))
    other.get_by_test_id("login-submit").click()
    expect(other.get_by_test_id("operator-name")).to_have_text("ops-bob")
    expect(other.get_by_test_id("connection-status")).to_have_text("live")


def test_trade_appears_in_the_tape_and_the_book_updates(
    page: Any, server: LiveServer, venue: FakeVenue, console_auth: ConsoleAuth
) -> None:
    open_console(page, server, console_auth)
    expect(page.get_by_test_id("trades-table")).to_contain_text("No trades yet.")

    order(server, venue, "alice", Side.SELL, 25, 10_050)
    expect(page.get_by_test_id(f"best-ask-{SYMBOL}")).to_have_text("100.50")
    order(server, venue, "bob", Side.BUY, 10, 10_000)
    expect(page.get_by_test_id(f"best-bid-{SYMBOL}")).to_have_text("100.00")

    outcome = order(server, venue, "bob", Side.BUY, 10, 10_050)
    assert outcome.result is not None
    fill = next(e for e in outcome.result.events if type(e).__name__ == "Fill")
    row = page.get_by_test_id(f"trade-{fill.trade_id}")
    expect(row).to_be_visible()
    expect(page.get_by_test_id(f"trade-price-{fill.trade_id}")).to_have_text("100.50")
    expect(page.get_by_test_id(f"trade-qty-{fill.trade_id}")).to_have_text("10")
    expect(row).to_contain_text("bob")
    expect(row).to_contain_text("alice")
    expect(page.get_by_test_id(f"last-{SYMBOL}")).to_have_text("100.50")
    expect(page.get_by_test_id(f"depth-{SYMBOL}")).to_contain_text("15")  # 25 - 10 left at 100.5
    expect(page.get_by_test_id(f"settlement-state-{fill.trade_id}")).to_have_text("pending")


def test_halt_from_the_console_rejects_orders_and_resume_reopens(
    page: Any, server: LiveServer, venue: FakeVenue, console_auth: ConsoleAuth
) -> None:
    open_console(page, server, console_auth)
    status = page.get_by_test_id(f"status-{SYMBOL}")
    expect(status).to_have_text("open")

    page.once("dialog", lambda dialog: dialog.accept())  # the console asks before a halt

    page.get_by_test_id(f"halt-{SYMBOL}").click()
    expect(status).to_have_text("halted")
    expect(page.get_by_test_id(f"halt-{SYMBOL}")).to_be_disabled()

    outcome = order(server, venue, "alice", Side.SELL, 5, 10_000)
    assert outcome.result is not None and outcome.result.code is ResultCode.INSTRUMENT_HALTED
    expect(page.get_by_test_id("rejection-count-INSTRUMENT_HALTED")).to_have_text("1")
    expect(page.get_by_test_id("rejections-recent")).to_contain_text("INSTRUMENT_HALTED")
    expect(page.get_by_test_id("audit-table")).to_contain_text("instrument.status")
    expect(page.get_by_test_id("audit-chain")).to_have_text("hash chain OK")

    page.get_by_test_id(f"resume-{SYMBOL}").click()
    expect(status).to_have_text("open")
    after = order(server, venue, "alice", Side.SELL, 5, 10_000)
    assert after.result is not None and after.result.code is ResultCode.OK
    expect(page.get_by_test_id(f"best-ask-{SYMBOL}")).to_have_text("100.00")


def test_settlement_moves_through_the_pipeline_to_confirmed_with_tx_hash(
    page: Any, server: LiveServer, venue: FakeVenue, console_auth: ConsoleAuth
) -> None:
    open_console(page, server, console_auth)
    trade_id = trade(server, venue)
    state = page.get_by_test_id(f"settlement-state-{trade_id}")
    expect(state).to_have_text("pending")
    expect(page.get_by_test_id("settlement-count-pending")).to_have_text("1")

    server.run(lambda: venue.settle(trade_id, SettlementState.SUBMITTED, tx_hash=TX))
    expect(state).to_have_text("submitted")
    expect(page.get_by_test_id("settlement-count-submitted")).to_have_text("1")

    server.run(lambda: venue.settle(trade_id, SettlementState.CONFIRMED, tx_hash=TX, block=42, gas_used=151_234))
    expect(state).to_have_text("confirmed")
    expect(page.get_by_test_id("settlement-count-confirmed")).to_have_text("1")
    expect(page.get_by_test_id("settlement-count-pending")).to_have_text("0")
    expect(page.get_by_test_id(f"settlement-tx-{trade_id}")).to_have_attribute("title", TX)
    expect(page.get_by_test_id(f"settlement-gas-{trade_id}")).to_have_text("151,234")
    expect(page.get_by_test_id(f"trade-settlement-{trade_id}")).to_have_text("confirmed")


def test_suspend_and_freeze_from_the_console(
    page: Any, server: LiveServer, venue: FakeVenue, console_auth: ConsoleAuth
) -> None:
    open_console(page, server, console_auth)
    page.get_by_test_id("suspend-bob").click()
    expect(page.get_by_test_id("participant-status-bob")).to_have_text("suspended")
    expect(page.get_by_test_id("participant-eligibility-bob")).to_have_text("PARTICIPANT_SUSPENDED")
    outcome = order(server, venue, "bob", Side.BUY, 1, 10_000)
    assert outcome.rejection is not None and outcome.rejection.code == "PARTICIPANT_SUSPENDED"
    expect(page.get_by_test_id("rejection-count-PARTICIPANT_SUSPENDED")).to_have_text("1")

    page.get_by_test_id("activate-bob").click()
    expect(page.get_by_test_id("participant-status-bob")).to_have_text("active")

    page.get_by_test_id("freeze-alice").click()
    expect(page.get_by_test_id("participant-frozen-alice")).to_have_text("frozen")
    expect(page.get_by_test_id("action-ok")).to_contain_text("tx 0x")
    expect(page.get_by_test_id("freeze-carol")).to_be_disabled()  # no wallet

    venue.chain_down = True
    page.get_by_test_id("unfreeze-alice").click()
    expect(page.get_by_test_id("action-error")).to_contain_text("CHAIN_ERROR")
    expect(page.get_by_test_id("participant-frozen-alice")).to_have_text("frozen")
    expect(page.get_by_test_id("audit-table")).to_contain_text("wallet.freeze")


def test_reconciliation_run_shows_differences(
    page: Any, server: LiveServer, venue: FakeVenue, console_auth: ConsoleAuth
) -> None:
    open_console(page, server, console_auth)
    expect(page.get_by_test_id("reconciliation-status")).to_have_text("never run")
    page.get_by_test_id("reconcile-run").click()
    expect(page.get_by_test_id("reconciliation-status")).to_have_text("in balance")
    server.run(lambda: venue.set_reconciliation_differences(["alice OMN-2027: venue 10, chain 9"]))
    page.get_by_test_id("reconcile-run").click()
    expect(page.get_by_test_id("reconciliation-status")).to_have_text("1 differences")
    expect(page.get_by_test_id("reconciliation-diffs")).to_contain_text("alice OMN-2027: venue 10, chain 9")


def test_broken_audit_chain_is_flagged(
    page: Any, server: LiveServer, venue: FakeVenue, console_auth: ConsoleAuth
) -> None:
    open_console(page, server, console_auth)
    page.once("dialog", lambda dialog: dialog.accept())  # the console asks before a halt
    page.get_by_test_id(f"halt-{SYMBOL}").click()
    expect(page.get_by_test_id("audit-table")).to_contain_text("instrument.status")
    expect(page.get_by_test_id("audit-chain")).to_have_text("hash chain OK")
    server.run(venue.tamper_audit)
    page.get_by_test_id(f"resume-{SYMBOL}").click()  # a new entry: the console refetches the log
    expect(page.get_by_test_id("audit-chain")).to_have_text("hash chain BROKEN")


def test_a_stale_session_goes_back_to_the_login_panel(
    page: Any, server: LiveServer, console_auth: ConsoleAuth
) -> None:
    open_console(page, server, console_auth)
    page.evaluate("""sessionStorage.setItem('omn.console.session',
        JSON.stringify({token: 'forged.token', operator: 'ops-alice', expires_at: Date.now() / 1000 + 600}))""")
    page.reload()
    expect(page.get_by_test_id("login-panel")).to_be_visible()
    expect(page.get_by_test_id("login-error")).to_contain_text("INVALID_SESSION")
    expect(page.get_by_test_id("connection-status")).to_have_text("offline")


def test_logout_ends_the_session(page: Any, server: LiveServer, console_auth: ConsoleAuth) -> None:
    open_console(page, server, console_auth)
    token = page.evaluate("JSON.parse(sessionStorage.getItem('omn.console.session')).token")
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("login-panel")).to_be_visible()
    with pytest.raises(Exception, match="SESSION_REVOKED"):
        _poll_revoked(console_auth, token)


def _poll_revoked(auth: ConsoleAuth, token: str) -> None:
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        auth.verify(token)  # raises once the DELETE has landed
        time.sleep(0.05)


def test_screenshot_with_data(page: Any, server: LiveServer, venue: FakeVenue, console_auth: ConsoleAuth,
                              tmp_path: Any) -> None:
    """A populated console renders; the PNG goes to $CONSOLE_SCREENSHOT when set (for review)."""
    for price, qty in ((10_080, 12), (10_070, 30), (10_060, 8)):
        order(server, venue, "alice", Side.SELL, qty, price)
    for price, qty in ((10_000, 20), (9_990, 15), (9_950, 40)):
        order(server, venue, "bob", Side.BUY, qty, price)
    first = trade(server, venue, qty=4, price=10_050)
    second = trade(server, venue, qty=6, price=10_055)
    server.run(lambda: venue.settle(first, SettlementState.CONFIRMED, tx_hash=TX, block=118, gas_used=150_484))
    server.run(lambda: venue.settle(second, SettlementState.SUBMITTED, tx_hash="0x" + "cd" * 32))
    server.call(venue.set_participant_status("carol", "suspended", operator="ops-alice"))
    order(server, venue, "carol", Side.BUY, 1, 10_000)
    open_console(page, server, console_auth)
    page.once("dialog", lambda dialog: dialog.accept())  # the console asks before a halt
    page.get_by_test_id(f"halt-{SYMBOL}").click()
    expect(page.get_by_test_id(f"status-{SYMBOL}")).to_have_text("halted")
    order(server, venue, "alice", Side.SELL, 1, 10_000)
    expect(page.get_by_test_id("rejection-count-INSTRUMENT_HALTED")).to_have_text("1")
    expect(page.get_by_test_id(f"settlement-state-{first}")).to_have_text("confirmed")
    path = os.environ.get("CONSOLE_SCREENSHOT") or str(tmp_path / "console.png")
    page.screenshot(path=path, full_page=True)
    assert os.path.getsize(path) > 10_000
