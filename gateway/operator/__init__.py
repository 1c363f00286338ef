"""Operator API, its live websocket and the web console (``/console``), on the gateway's own
machinery: ``ApiError`` codes with one HTTP status each, the gateway's request validation and
decimal rendering, its websocket framing and its one event hub.

- ``console_auth``: one-time login codes and console session tokens;
- ``context``: the operator context bound to a router, and the auth dependencies;
- ``views``: typed response models;
- ``feed``: live updates coalesced per tick, observed from the gateway's hub;
- ``routes``: REST routes under ``/v1/operator`` (signed operator keys) and ``/console/api``
  (``Authorization: Bearer <session token>``, outside ``/v1`` because browsers cannot sensibly
  hold Ed25519 keys), and the console's static pages;
- ``registry_routes``: onboarding, participant updates and offboarding, key revocation, listings
  and their rules (through a ``RegistryPort``);
- ``ws``: the live websocket ``/v1/operator/ws``.

Exceptions (under the gateway's root, see ``gateway.errors``)::

    GatewayError
    └── ApiError
        └── ConsoleAuthError  401 + WWW-Authenticate: bad, expired or revoked login code / session token
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from gateway.deps import authenticated
from gateway.operator import registry_routes, routes, ws
from gateway.operator.console_auth import ConsoleAuth, ConsoleAuthError, ConsoleSession
from gateway.operator.context import OperatorContext, RequireOperator
from gateway.operator.port import OperatorVenue, RegistryPort


def operator_router(
    venue: OperatorVenue,
    *,
    require_operator: RequireOperator = authenticated,
    console_auth: ConsoleAuth | None = None,
    registry: RegistryPort | None = None,
) -> APIRouter:
    """Operator REST + websocket + console pages, for ``create_app(..., extra_routers=[...])``.

    ``require_operator(request)`` returns the ``ApiKey`` of a signed request (or raises the
    gateway's 401); the default reads what ``gateway.app``'s signing middleware verified for every
    ``/v1`` request. Keys without role operator are refused with 403 FORBIDDEN. ``console_auth``
    issues and checks console sessions: pass the instance the CLI uses to print the login URL
    (without one, only ``POST /v1/operator/console-login`` can start a session).
    """
    ctx = OperatorContext(venue, console_auth or ConsoleAuth(), require_operator, registry)
    router = APIRouter(dependencies=[Depends(ctx.bind)])
    router.include_router(routes.sessions)
    # the signing middleware already verified every /v1 request; this also documents its headers
    signed = [Depends(authenticated)] if require_operator is authenticated else []
    router.include_router(routes.ops, prefix="/v1/operator", tags=["operator"], dependencies=signed)
    router.include_router(routes.signed_only, prefix="/v1/operator", tags=["operator"], dependencies=signed)
    router.include_router(registry_routes.router, prefix="/v1/operator", tags=["operator"], dependencies=signed)
    router.include_router(registry_routes.router, prefix="/console/api", include_in_schema=False)
    router.include_router(routes.ops, prefix="/console/api", include_in_schema=False)
    router.include_router(routes.console_only, prefix="/console/api", include_in_schema=False)
    router.include_router(ws.router)
    router.include_router(routes.pages)
    return router


__all__ = ["ConsoleAuth", "ConsoleAuthError", "ConsoleSession", "OperatorContext", "OperatorVenue", "operator_router"]
