"""Fixtures: the fake venue, an app with the operator router, a real uvicorn server on a free
loopback port (its own thread and event loop), and headless Chromium through Playwright."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Generator, Iterator
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from gateway import GatewayConfig, create_app
from gateway.metrics import MetricsMiddleware, metrics_router
from gateway.operator import ConsoleAuth, operator_router
from tests.console.fakes import FakeVenue
from venueclient.signing import HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, sign, signing_payload

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture
def venue() -> FakeVenue:
    return FakeVenue()


@pytest.fixture
def console_auth() -> ConsoleAuth:
    return ConsoleAuth()


class Signed(httpx.Auth):
    """Signs requests the way the gateway verifies them (``venueclient.signing``)."""

    requires_request_body = True

    def __init__(self, key_id: str, private_key: bytes) -> None:
        self._key_id = key_id
        self._private_key = private_key
        self._last_ms = 0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self._last_ms = max(self._last_ms + 1, int(time.time() * 1000))  # replay protection: unique
        payload = signing_payload(self._last_ms, request.method, request.url.raw_path, request.content)
        request.headers[HEADER_KEY] = self._key_id
        request.headers[HEADER_TIMESTAMP] = str(self._last_ms)
        request.headers[HEADER_SIGNATURE] = sign(self._private_key, payload)
        yield request


@pytest.fixture
def op_auth(venue: FakeVenue) -> Signed:
    return Signed("op-key", venue.private_keys["op-key"])


@pytest.fixture
def trader_auth(venue: FakeVenue) -> Signed:
    return Signed("trader-key", venue.private_keys["trader-key"])


@pytest.fixture
def app(venue: FakeVenue, console_auth: ConsoleAuth) -> FastAPI:
    """The real gateway app (signing middleware, its routes) with the operator and metrics routers."""
    config = GatewayConfig(rate_per_s=10_000.0, rate_burst=10_000)
    application = create_app(venue, config=config, extra_routers=[
        operator_router(venue, console_auth=console_auth), metrics_router(venue),
    ])
    application.add_middleware(MetricsMiddleware)
    return application


class LiveServer:
    def __init__(self, app: FastAPI) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="console-test-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._server.serve())

    def start(self) -> None:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(self._wait_started(), self.loop)
        started.result(timeout=15)

    async def _wait_started(self) -> None:
        while not self._server.started:
            await asyncio.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self.loop.close()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs a coroutine on the server's loop (where the venue's listeners fire) and waits."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=15)

    def run(self, fn: Callable[[], T]) -> T:
        async def call() -> T:
            return fn()

        return self.call(call())


@pytest.fixture
def server(app: FastAPI) -> Iterator[LiveServer]:
    live = LiveServer(app)
    live.start()
    yield live
    live.stop()


# Module scope, not session: while Playwright's sync API is open it keeps an event loop running
# on this thread, which breaks every pytest-asyncio test collected after the browser tests.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1600, "height": 1300})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    # HTTP error statuses the tests provoke on purpose are logged as "Failed to load resource"
    tab.on("console", lambda msg: errors.append(msg.text)
           if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    yield tab
    context.close()
    assert errors == [], f"browser errors: {errors}"
