"""Prometheus metrics: one registry, a few recording functions, a ``/metrics`` route.

Who records what:

- the gateway, per command it submits: ``record_order(kind, code)`` (``code`` is ``None`` when
  accepted, else the rejection code it returned: engine ``ResultCode`` name or compliance code);
- the gateway, per websocket session: ``ws_session_opened(channel)`` / ``ws_session_closed(channel)``;
- ``MetricsMiddleware`` (wrap the ASGI app once): request count and latency per route template;
- ``observe_venue(venue)`` (the composition root calls it once): engine-accepted orders, trades
  and settlement transitions, counted from the venue's own event and settlement streams, so
  nobody else does;
- at scrape time, ``metrics_router(venue)`` reads current state from the venue (rejections by
  reason, settlements by state, instrument status, reconciliation), so they never drift from it.

Labels are bounded: order kinds and route templates are fixed sets; rejection codes are enum
names (never free text from a client); symbols only come from the venue's own listings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Protocol

from fastapi import APIRouter, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine import Event, Fill, InstrumentStatus, L2Snapshot, OrderAccepted
from gateway.ports import (
    Listing,
    ReconciliationReport,
    SettlementNotice,
    SettlementState,
    Unsubscribe,
    VenuePort,
)

__all__ = [
    "ORDER_KINDS",
    "REGISTRY",
    "MetricsMiddleware",
    "VenueState",
    "metrics_router",
    "observe_venue",
    "record_order",
    "record_request",
    "ws_session_closed",
    "ws_session_opened",
]

ORDER_KINDS = ("new", "amend", "cancel", "mass_cancel")

REGISTRY = CollectorRegistry(auto_describe=True)

_ORDERS_RECEIVED = Counter(
    "venue_orders_received", "Commands received from clients", ["kind"], registry=REGISTRY
)
_ORDERS_ACCEPTED = Counter(
    "venue_orders_accepted", "Commands accepted (engine result OK)", ["kind"], registry=REGISTRY
)
_ORDERS_REJECTED = Counter(
    "venue_orders_rejected", "Commands rejected, by stable rejection code", ["kind", "code"], registry=REGISTRY
)
_ENGINE_ACCEPTED = Counter(
    "venue_engine_orders_accepted", "New orders accepted by the engine (from its events)", ["symbol"],
    registry=REGISTRY,
)
_TRADES = Counter("venue_trades", "Trades (fills) executed", ["symbol"], registry=REGISTRY)
_TRADED_LOTS = Counter("venue_traded_lots", "Lots traded", ["symbol"], registry=REGISTRY)
_SETTLEMENT_TRANSITIONS = Counter(
    "venue_settlement_transitions", "Settlement state changes, by new state", ["state"], registry=REGISTRY
)
_SETTLEMENT_GAS = Counter(
    "venue_settlement_gas_used", "Gas used by confirmed settlements", registry=REGISTRY
)
_WS_SESSIONS = Gauge("venue_ws_sessions", "Open websocket sessions", ["channel"], registry=REGISTRY)
_WS_SESSIONS_TOTAL = Counter(
    "venue_ws_sessions_opened", "Websocket sessions opened", ["channel"], registry=REGISTRY
)
_REQUESTS = Counter(
    "venue_http_requests", "HTTP requests", ["method", "route", "status"], registry=REGISTRY
)
_REQUEST_LATENCY = Histogram(
    "venue_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)

_REFUSED = Counter(
    "venue_gateway_refused_commands", "Commands the venue refused by raising (journal failed, stopping), by "
    "exception type; only the first of each run of refusals is logged", ["error"], registry=REGISTRY,
)
_ABUSE = Counter(
    "venue_gateway_abuse", "Traffic the gateway refused or cut off to protect other clients, by kind "
    "(rate_limited_key, rate_limited_address, rate_limited_connection, rate_limit_disconnect, "
    "subscribe_rate_limited, slow_consumer, "
    "oversized_message, pre_login_frames, login_timeout, connection_cap, header_timeout, body_timeout)",
    ["kind"], registry=REGISTRY,
)
ABUSE_KINDS = ("rate_limited_key", "rate_limited_address", "rate_limited_connection", "rate_limit_disconnect",
               "subscribe_rate_limited",
               "slow_consumer", "oversized_message", "pre_login_frames", "login_timeout", "connection_cap",
               "header_timeout", "body_timeout")
for _abuse in ABUSE_KINDS:
    _ABUSE.labels(_abuse)


def venue_refused(error: str) -> None:
    _REFUSED.labels(error).inc()


def abuse(kind: str) -> None:
    """One refused or cut-off request/connection; ``kind`` is one of ``ABUSE_KINDS``."""
    if kind not in ABUSE_KINDS:
        raise ValueError(f"unknown abuse kind {kind!r}")
    _ABUSE.labels(kind).inc()


def connection_refused() -> None:
    _ABUSE.labels("connection_cap").inc()


def abuse_count(kind: str) -> float:
    """Current value (tests and the console read it)."""
    value = REGISTRY.get_sample_value("venue_gateway_abuse_total", {"kind": kind})
    return value or 0.0


def refused_count(error: str) -> float:
    value = REGISTRY.get_sample_value("venue_gateway_refused_commands_total", {"error": error})
    return value or 0.0


# per-kind children made once (so dashboards see zeros, not missing series): ``labels()`` on
# every order cost more than the increments themselves (~16 us per order before, ~3 after)
_RECEIVED_BY_KIND = {kind: _ORDERS_RECEIVED.labels(kind) for kind in ORDER_KINDS}
_ACCEPTED_BY_KIND = {kind: _ORDERS_ACCEPTED.labels(kind) for kind in ORDER_KINDS}
for _state in SettlementState:
    _SETTLEMENT_TRANSITIONS.labels(_state.value)


def record_order(kind: str, code: str | None) -> None:
    """One client command and its outcome: ``code`` None = accepted, else the rejection code."""
    received = _RECEIVED_BY_KIND.get(kind)
    if received is None:
        raise ValueError(f"unknown order kind {kind!r}; expected one of {ORDER_KINDS}")
    received.inc()
    if code is None:
        _ACCEPTED_BY_KIND[kind].inc()
    else:
        _ORDERS_REJECTED.labels(kind, code).inc()


def ws_session_opened(channel: str) -> None:
    """``channel`` is a fixed name such as ``"trader"`` or ``"operator"``."""
    _WS_SESSIONS.labels(channel).inc()
    _WS_SESSIONS_TOTAL.labels(channel).inc()


def ws_session_closed(channel: str) -> None:
    _WS_SESSIONS.labels(channel).dec()


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    _REQUESTS.labels(method, route, str(status)).inc()
    _REQUEST_LATENCY.labels(method, route).observe(seconds)


def observe_venue(venue: VenuePort) -> Unsubscribe:
    """Count trades and settlement transitions from the venue's streams; returns the unsubscribe."""

    def on_event(event: Event) -> None:
        if isinstance(event, OrderAccepted):
            _ENGINE_ACCEPTED.labels(event.symbol).inc()
        elif isinstance(event, Fill):
            _TRADES.labels(event.symbol).inc()
            _TRADED_LOTS.labels(event.symbol).inc(event.qty)

    def on_notice(notice: SettlementNotice) -> None:
        _SETTLEMENT_TRANSITIONS.labels(notice.state.value).inc()
        if notice.state is SettlementState.CONFIRMED and notice.gas_used:
            _SETTLEMENT_GAS.inc(notice.gas_used)

    stop_events = venue.subscribe_events(on_event)
    stop_notices = venue.subscribe_settlements(on_notice)

    def unsubscribe() -> None:
        stop_events()
        stop_notices()

    return unsubscribe


class MetricsMiddleware:
    """ASGI middleware: request count + latency labelled by the matched route template (so
    ``/v1/orders/123`` and ``/v1/orders/124`` share one series); unmatched paths are ``"unmatched"``.
    Websocket connections are not timed here (they are sessions, see ``ws_session_opened``)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, send_wrapper)
        finally:
            record_request(scope["method"], _route_template(scope), status, time.perf_counter() - start)


def _route_template(scope: Scope) -> str:
    """The request path with each path parameter's segment replaced by ``{name}``: the template,
    without relying on how the framework nests included routers."""
    if scope.get("route") is None:
        return "unmatched"
    segments = str(scope.get("path", "")).split("/")
    for name, value in dict(scope.get("path_params") or {}).items():
        segments = [f"{{{name}}}" if seg == str(value) else seg for seg in segments]
    return "/".join(segments)


class VenueState(Protocol):
    """The part of ``VenuePort`` + ``OperatorPort`` the scrape reads."""

    def listings(self) -> list[Listing]: ...

    def l2(self, symbol: str, depth: int | None = None) -> L2Snapshot: ...

    def settlement_counts(self) -> dict[str, int]: ...

    def rejection_counts(self) -> dict[str, int]: ...

    def reconciliation(self) -> ReconciliationReport: ...


class _VenueStateCollector(Collector):
    """Gauges read from the venue at scrape time."""

    def __init__(self, venue: VenueState) -> None:
        self._venue = venue

    def collect(self) -> Iterator[Metric]:
        venue = self._venue
        settlements = GaugeMetricFamily(
            "venue_settlements", "Trades per settlement state (current)", labels=["state"]
        )
        counts: dict[str, int] = venue.settlement_counts()
        for state in SettlementState:
            settlements.add_metric([state.value], counts.get(state.value, 0))
        yield settlements

        rejections = CounterMetricFamily(
            "venue_rejections", "Rejections by reason code since start (compliance + engine), from the venue",
            labels=["code"],
        )
        for code, count in sorted(venue.rejection_counts().items()):
            rejections.add_metric([code], count)
        yield rejections

        status = GaugeMetricFamily(
            "venue_instrument_status", "1 for the instrument's current status", labels=["symbol", "status"]
        )
        for listing in venue.listings():
            current = venue.l2(listing.symbol, 1).status
            for candidate in InstrumentStatus:
                status.add_metric([listing.symbol, candidate.name.lower()], 1 if candidate is current else 0)
        yield status

        report = venue.reconciliation()
        yield GaugeMetricFamily(
            "venue_reconciliation_ok", "1 when the last reconciliation found no differences",
            value=1 if report.ok else 0,
        )
        yield GaugeMetricFamily(
            "venue_reconciliation_last_run_timestamp_seconds", "When reconciliation last ran (0 = never)",
            value=(report.ts or 0) / 1e9,
        )


def metrics_router(venue: VenueState | None = None, extra: Sequence[Collector] = ()) -> APIRouter:
    """``GET /metrics`` in the Prometheus text format: the module registry, plus the venue's
    current state when ``venue`` is given. Unauthenticated, like most scrape targets: bind the
    gateway to a private interface or put it behind the reverse proxy's access rules."""
    venue_registry: CollectorRegistry | None = None
    if venue is not None or extra:
        venue_registry = CollectorRegistry(auto_describe=False)
        for collector in (*([_VenueStateCollector(venue)] if venue is not None else []), *extra):
            venue_registry.register(collector)
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:  # async: the scrape reads live venue state on the event loop
        body = generate_latest(REGISTRY)
        if venue_registry is not None:
            body += generate_latest(venue_registry)
        return Response(content=body, media_type=CONTENT_TYPE_LATEST)

    return router
