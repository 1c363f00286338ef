"""The console's alert strip shows the failing readiness checks of ``/health/ready``."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from playwright.sync_api import expect

from gateway.guards import guards_of
from gateway.operator import ConsoleAuth
from tests.console.conftest import LiveServer
from tests.console.test_console_browser import open_console

pytestmark = pytest.mark.browser


def test_alert_strip_shows_failing_readiness_checks_and_hides_when_ready(
    page: Any, server: LiveServer, app: FastAPI, console_auth: ConsoleAuth
) -> None:
    failing: dict[str, str | None] = {"watcher": None}
    guards_of(app).readiness.add("chain_watcher", lambda: failing["watcher"])
    open_console(page, server, console_auth)
    strip = page.get_by_test_id("alert-strip")
    expect(strip).to_be_hidden()

    failing["watcher"] = "chain watcher last polled 45.0 s ago (limit 30 s)"
    expect(page.get_by_test_id("alert-chain_watcher")).to_have_text(
        "chain_watcher: chain watcher last polled 45.0 s ago (limit 30 s)", timeout=10_000)
    expect(strip).to_be_visible()

    failing["watcher"] = None
    expect(strip).to_be_hidden(timeout=10_000)
