"""REST + websocket gateway (FastAPI): authenticates participants, validates and converts their
requests to engine commands, and streams market data and private events.

``create_app(venue, config=GatewayConfig(...), extra_routers=[...]) -> FastAPI``; the venue is
anything implementing ``gateway.ports.VenuePort``.

Exception tree::

    GatewayError
    └── ApiError   a refused request: stable ``code`` + ``message`` (rendered, never a 500)
"""

from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.errors import ApiError, GatewayError
from gateway.state import GatewayState

__all__ = ["ApiError", "GatewayConfig", "GatewayError", "GatewayState", "create_app"]
