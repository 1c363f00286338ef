"""Fixtures: the fake venue, an app with the operator router, a real uvicorn server on a free
loopback port (its own thread and event loop), and headless Chromium through Playwright."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import uvicorn
from fastapi import FastAPI, Request

from gateway.errors import ApiError
from gateway.metrics import MetricsMiddleware, metrics_router
from gateway.operator import ConsoleAuth, operator_router
from gateway.ports import ApiKey
from tests.console.fakes import FakeVenue

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


def header_auth(venue: FakeVenue) -> Callable[[Request], Coroutine[Any, Any, ApiKey]]:
    """Stands in for the gateway's signed-request auth: the key id in a header, no signature."""

    async def require(request: Request) -> ApiKey:
        key_id = request.headers.get("x-test-key")
        if not key_id:
            raise ApiError("MISSING_AUTH", "no key")
        key = venue.api_key(key_id)
        if key is None:
            raise ApiError("UNKNOWN_KEY", "unknown API key")
        return key

    return require


@pytest.fixture
def app(venue: FakeVenue, console_auth: ConsoleAuth) -> FastAPI:
    application = FastAPI()
    application.include_router(operator_router(venue, require_operator=header_auth(venue), console_auth=console_auth))
    application.include_router(metrics_router(venue))
    application.add_middleware(MetricsMiddleware)
    return application


class LiveServer:
    def __init__(self, app: FastAPI) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
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


@pytest.fixture(scope="session")
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
