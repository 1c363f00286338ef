"""uvicorn settings for the gateway: the limits that must act before the ASGI app sees a request.

``uvicorn_options(app)`` is what ``uvicorn.Config(app, **uvicorn_options(app), ...)`` needs:

* ``ws_max_size`` = ``max_ws_message_bytes``: the websocket protocol refuses a bigger message
  from its frame header (close 1009) before reading its payload;
* ``http`` / ``ws``: uvicorn's own protocol classes with a per-address guard:
  - at most ``max_connections_per_address`` open connections (HTTP and websocket) per source
    address; one more is closed as soon as it is accepted (uvicorn's ``limit_concurrency`` is
    global: one address could take all of it);
  - header read timeout: a request line + headers must be complete within ``header_timeout_s``
    of the connection opening or of the first byte of the next keep-alive request (uvicorn has
    no such timeout: a client that trickles one header byte a second holds a connection forever);
* ``timeout_keep_alive``: idle keep-alive connections close after 5 s (uvicorn's default, stated).

The body read timeout is ASGI-level (``gateway.guards.AbuseGuard``).
"""

from __future__ import annotations

import asyncio
from typing import TypedDict

from uvicorn.protocols.http.auto import AutoHTTPProtocol
from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

from gateway import metrics
from gateway.guards import ConnectionCounter, guards_of


class UvicornOptions(TypedDict):
    http: type[asyncio.Protocol]
    ws: type[asyncio.Protocol] | str
    ws_max_size: int
    ws_per_message_deflate: bool
    timeout_keep_alive: int


class _Guard:
    def __init__(self, counter: ConnectionCounter, header_timeout_s: float) -> None:
        self.counter = counter
        self.header_timeout_s = header_timeout_s


def _address(proto: asyncio.Protocol) -> str:
    client = getattr(proto, "client", None)
    if isinstance(client, tuple) and client:
        return str(client[0])
    return "?"


class _GuardedHTTP(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    """``AutoHTTPProtocol`` (httptools or h11) + the per-address cap and the header timeout."""

    _guard: _Guard
    _counted = False
    _header_timer: asyncio.TimerHandle | None = None
    _cycle_seen: object = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self._guard.counter.acquire(_address(self)):
            transport.close()
            return
        self._counted = True
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        transport = self.transport
        if transport.get_protocol() is not self or transport.is_closing():  # upgraded or closed
            self._disarm()
            return
        cycle = getattr(self, "cycle", None)
        if cycle is not self._cycle_seen:  # a request's headers are complete
            self._cycle_seen = cycle
            self._disarm()
        elif self._header_timer is None and (cycle is None or getattr(cycle, "response_complete", False)):
            self._arm()  # bytes of the next keep-alive request: its headers are on the clock now

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
        if self._counted:
            self._counted = False
            self._guard.counter.release(_address(self))

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = asyncio.get_running_loop().call_later(self._guard.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        transport = self.transport
        if transport.get_protocol() is self and not transport.is_closing():
            metrics.abuse("header_timeout")
            transport.close()


if AutoWebSocketsProtocol is not None:
    class _GuardedWS(AutoWebSocketsProtocol):  # type: ignore[misc,valid-type]
        """Releases the address's connection slot taken by the HTTP protocol before the upgrade."""

        _guard: _Guard

        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            self._guard.counter.release(_address(self))


def uvicorn_options(app: object) -> UvicornOptions:
    """Options for ``uvicorn.Config`` for an app built by ``gateway.create_app``."""
    guards = guards_of(app)
    cfg = guards.config
    guard = _Guard(guards.connections, cfg.header_timeout_s)
    http: type[asyncio.Protocol] = type("GatewayHTTPProtocol", (_GuardedHTTP,), {"_guard": guard})
    ws: type[asyncio.Protocol] | str = "none"
    if AutoWebSocketsProtocol is not None:
        ws = type("GatewayWebSocketProtocol", (_GuardedWS,), {"_guard": guard})
    return UvicornOptions(http=http, ws=ws, ws_max_size=cfg.max_ws_message_bytes,
                          ws_per_message_deflate=cfg.ws_compression, timeout_keep_alive=5)
