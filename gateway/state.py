"""What every route and websocket session of one gateway app shares: ``GatewayState``.

``create_app`` builds it and stores it on ``app.state.gateway``; routes get it through
``gateway_state`` (a FastAPI dependency for HTTP requests and websockets alike). It lives apart
from ``gateway.app`` so that the route modules import it without importing the app factory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection

from gateway.auth import Authenticator
from gateway.config import GatewayConfig
from gateway.mm import MarketMakerTools
from gateway.orders import OrderService
from gateway.ports import VenuePort
from gateway.ratelimit import RateLimiter
from gateway.streams import Hub


@dataclass(slots=True)
class GatewayState:
    venue: VenuePort
    config: GatewayConfig
    auth: Authenticator
    limiter: RateLimiter
    orders: OrderService
    hub: Hub
    mm: MarketMakerTools
    sessions: set[Any] = field(default_factory=set)  # logged-in trader websocket sessions (gateway.sessions)


def gateway_state(conn: HTTPConnection) -> GatewayState:
    """The state of the app serving this request or websocket."""
    state = conn.app.state.gateway
    if not isinstance(state, GatewayState):  # only reachable for a router mounted outside create_app
        raise TypeError("this route needs an app made by gateway.create_app")
    return state
