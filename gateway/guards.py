"""Gateway-wide protections that are not per session: the per-address limiter, the per-address
connection count, the venue-refusal latch and the readiness checks.

One ``Guards`` per app (``app.state.guards``, read with ``guards_of``).

Readiness hook for the venue
----------------------------
``/health/ready`` asks every registered check; a check is any callable that returns ``None``
when its part is fine, else a short reason (``"journal cannot write: ..."``). The venue adds its
checks after building the app::

    guards_of(app).readiness.add("journal", lambda: None if journal_ok() else "journal cannot write")

``ReadinessProvider`` is the same as an object with a ``readiness()`` method that returns the
list of reasons (``Readiness.add_provider``). The gateway itself contributes one condition: the
venue is refusing commands (``VenueRefusals``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from engine import AmendOrder, CancelOrder, Event, InstrumentStatus, L2Snapshot, MassCancel, NewOrder, OrderView
from gateway import metrics
from gateway.config import GatewayConfig
from gateway.errors import ApiError
from gateway.fair import FairScheduler
from gateway.ports import ApiKey, Listing, Outcome, SettlementNotice, TradeRecord, Unsubscribe, VenuePort
from gateway.ratelimit import RateLimiter
from market.history import OrderRecord, Page, TradeQuery

log = logging.getLogger(__name__)

Check = Callable[[], str | None]


class ReadinessProvider(Protocol):
    def readiness(self) -> list[str]:
        """Reasons the venue is not ready (empty when ready)."""
        ...


class Readiness:
    """Named readiness checks; a failing or raising check makes the venue not ready."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}
        self._providers: list[ReadinessProvider] = []

    def add(self, name: str, check: Check) -> None:
        self._checks[name] = check

    def add_provider(self, provider: ReadinessProvider) -> None:
        self._providers.append(provider)

    def reasons(self) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        for name, check in self._checks.items():
            try:
                reason = check()
            except Exception as exc:  # a broken check is a reason, never a 500
                reason = f"check failed: {type(exc).__name__}"
            if reason is not None:
                out.append({"check": name, "reason": reason})
        for provider in self._providers:
            try:
                found = provider.readiness()
            except Exception as exc:
                found = [f"check failed: {type(exc).__name__}"]
            out.extend({"check": type(provider).__name__, "reason": r} for r in found)
        return out


class VenueRefusals:
    """The venue raising instead of answering (journal failed, disk full, stopping): one log line
    per state change (refusing <-> accepting, or a different failure), a counter for every refusal."""

    def __init__(self) -> None:
        self.failing: str | None = None  # "ExceptionType: message" (the first of the run) while refusing
        self._kind: str | None = None  # the exception type: a new type is a new state
        self.refused = 0

    def refused_with(self, exc: BaseException) -> None:
        self.refused += 1
        kind = type(exc).__name__
        metrics.venue_refused(kind)
        if kind != self._kind:
            self._kind = kind
            self.failing = f"{kind}: {exc}"[:300]
            log.error("the venue refuses commands (%s); further refusals are counted in "
                      "venue_gateway_refused_commands, not logged", self.failing)

    def answered(self) -> None:
        if self.failing is not None:
            log.warning("the venue answers commands again after %d refusals", self.refused)
            self.failing = self._kind = None

    def readiness(self) -> list[str]:
        return [] if self.failing is None else [f"venue refuses commands: {self.failing}"]


class GuardedVenue:
    """``VenuePort`` whose ``submit`` turns an unexpected venue failure into VENUE_ERROR (the same
    reply as before) without a traceback per order; see ``VenueRefusals``."""

    def __init__(self, venue: VenuePort, refusals: VenueRefusals) -> None:
        self._venue = venue
        self._refusals = refusals

    async def submit(self, participant: str, cmd: NewOrder | AmendOrder | CancelOrder | MassCancel) -> Outcome:
        try:
            outcome = await self._venue.submit(participant, cmd)
        except (ApiError, asyncio.CancelledError):
            raise
        except Exception as exc:
            self._refusals.refused_with(exc)
            raise ApiError("VENUE_ERROR", "the venue could not process the command; retry later") from None
        self._refusals.answered()
        return outcome

    async def submit_batch(self, participant: str,
                           cmds: Sequence[NewOrder | CancelOrder | MassCancel]) -> list[Outcome]:
        try:
            outcomes = await self._venue.submit_batch(participant, cmds)
        except (ApiError, asyncio.CancelledError):
            raise
        except Exception as exc:
            self._refusals.refused_with(exc)
            raise ApiError("VENUE_ERROR", "the venue could not process the command; retry later") from None
        self._refusals.answered()
        return outcomes

    async def set_status(self, symbol: str, status: InstrumentStatus, *, operator: str) -> Outcome:
        return await self._venue.set_status(symbol, status, operator=operator)

    def listings(self) -> list[Listing]:
        return self._venue.listings()

    def listing(self, symbol: str) -> Listing | None:
        return self._venue.listing(symbol)

    def api_key(self, key_id: str) -> ApiKey | None:
        return self._venue.api_key(key_id)

    def l2(self, symbol: str, depth: int | None = None) -> L2Snapshot:
        return self._venue.l2(symbol, depth)

    def order(self, order_id: int) -> OrderView | None:
        return self._venue.order(order_id)

    def open_orders(self, participant: str, symbol: str | None = None) -> list[OrderView]:
        return self._venue.open_orders(participant, symbol)

    def trades(self, *, symbol: str | None = None, participant: str | None = None,
               limit: int = 100) -> list[TradeRecord]:
        return self._venue.trades(symbol=symbol, participant=participant, limit=limit)

    def subscribe_events(self, listener: Callable[[Event], None]) -> Unsubscribe:
        return self._venue.subscribe_events(listener)

    def subscribe_settlements(self, listener: Callable[[SettlementNotice], None]) -> Unsubscribe:
        return self._venue.subscribe_settlements(listener)

    @property
    def stream_seq(self) -> int:
        return self._venue.stream_seq

    async def order_record(self, participant: str, order_id: int) -> OrderRecord | None:
        return await self._venue.order_record(participant, order_id)

    async def trade_history(self, query: TradeQuery) -> Page[TradeRecord]:
        return await self._venue.trade_history(query)


class ConnectionCounter:
    """Open connections per source address (the server's protocol classes count them)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._open: dict[str, int] = {}
        self.refused = 0

    def acquire(self, address: str) -> bool:
        n = self._open.get(address, 0)
        if n >= self.cap:
            self.refused += 1
            metrics.connection_refused()
            return False
        self._open[address] = n + 1
        return True

    def release(self, address: str) -> None:
        n = self._open.get(address, 0) - 1
        if n <= 0:
            self._open.pop(address, None)
        else:
            self._open[address] = n

    def open(self, address: str) -> int:
        return self._open.get(address, 0)


@dataclass(slots=True)
class Guards:
    config: GatewayConfig
    addresses: RateLimiter  # unauthenticated / bad-signature traffic per source address
    connections: ConnectionCounter
    fair: FairScheduler  # websocket order commands inside the venue, admitted round-robin per session
    refusals: VenueRefusals = field(default_factory=VenueRefusals)
    readiness: Readiness = field(default_factory=Readiness)

    @classmethod
    def from_config(cls, cfg: GatewayConfig) -> Guards:
        guards = cls(config=cfg, addresses=RateLimiter(rate_per_s=cfg.address_rate_per_s, burst=cfg.address_rate_burst),
                     connections=ConnectionCounter(cfg.max_connections_per_address),
                     fair=FairScheduler(cfg.venue_in_flight))
        guards.readiness.add_provider(guards.refusals)
        return guards


def guards_of(app: object) -> Guards:
    """The app's ``Guards`` (``create_app`` installs them)."""
    state = getattr(app, "state", None)
    guards = getattr(state, "guards", None)
    if not isinstance(guards, Guards):
        raise RuntimeError("this app was not built by gateway.create_app")
    return guards


def client_address(scope: object) -> str:
    """The peer's IP address from an ASGI scope ("?" when the server does not say)."""
    client = scope.get("client") if isinstance(scope, dict) else None
    if isinstance(client, (tuple, list)) and client:
        return str(client[0])
    return "?"


# ---------------------------------------------------------------- HTTP: per-address limit, timeouts, quota headers

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEADER_LIMIT = "X-RateLimit-Limit"
HEADER_REMAINING = "X-RateLimit-Remaining"
_UNAUTHENTICATED = frozenset({401})


class AbuseGuard:
    """Pure ASGI middleware outside the signing middleware, for HTTP requests:

    * (``/v1``) a source address whose bucket is empty is refused (429 RATE_LIMITED) before its signature
      is checked; each request answered 401 (missing/bad/expired signature, unknown key) spends a
      token of its address, so unauthenticated traffic is limited per address, signed traffic per key;
    * (every path) the body must arrive within ``body_timeout_s`` (else 408 REQUEST_TIMEOUT);
    * authenticated responses carry ``X-RateLimit-Limit`` / ``X-RateLimit-Remaining`` (the key's
      token bucket: requests that may be sent right now).
    """

    def __init__(self, app: ASGIApp, guards: Guards, limiter: RateLimiter, config: GatewayConfig) -> None:
        self.app = app
        self.guards = guards
        self.limiter = limiter
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = str(scope.get("path", "")).startswith("/v1/")
        address = client_address(scope)
        retry_after = self.guards.addresses.peek(address) if api else None
        if retry_after is not None:
            metrics.abuse("rate_limited_address")
            err = ApiError("RATE_LIMITED", f"too many unauthenticated requests from this address; retry in "
                                           f"{retry_after:.3f} s", retry_after=round(retry_after, 3))
            await _send_error(send, err)
            return
        deadline = asyncio.get_running_loop().time() + self.config.body_timeout_s
        status = 0

        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:  # e.g. a streaming response waiting for the disconnect
                return await receive()
            left = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(left, 0.0))
            except TimeoutError:
                metrics.abuse("body_timeout")
                raise _BodyTimeout from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def send_with_quota(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                key = scope.get("state", {}).get("api_key")
                if isinstance(key, ApiKey):
                    headers = list(message.get("headers", ()))
                    headers.append((HEADER_LIMIT.lower().encode(), str(self.limiter.limit).encode()))
                    headers.append((HEADER_REMAINING.lower().encode(),
                                    str(self.limiter.remaining(key.key_id)).encode()))
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, timed_receive, send_with_quota)
        except _BodyTimeout:
            if status == 0:
                await _send_error(send, ApiError("REQUEST_TIMEOUT", f"the request body did not arrive within "
                                                                    f"{self.config.body_timeout_s:g} s"))
            return
        if api and status in _UNAUTHENTICATED:
            self.guards.addresses.take(address)


class _BodyTimeout(Exception):
    pass


async def _send_error(send: Send, err: ApiError) -> None:
    body = json.dumps(err.body(), separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    if err.retry_after is not None:
        headers.append((b"retry-after", str(max(1, math.ceil(err.retry_after))).encode()))
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------- health

def health_router() -> APIRouter:
    """``/health/live``: the process answers. ``/health/ready``: 200 ``{"status": "ready"}``, or
    503 ``{"status": "not_ready", "reasons": [{"check", "reason"}, ...]}`` from the readiness checks."""
    router = APIRouter()

    @router.get("/health/live", include_in_schema=False)
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @router.get("/health/ready", include_in_schema=False)
    async def ready(request: Request) -> JSONResponse:
        reasons = guards_of(request.app).readiness.reasons()
        if reasons:
            return JSONResponse({"status": "not_ready", "reasons": reasons}, status_code=503)
        return JSONResponse({"status": "ready"})

    return router
