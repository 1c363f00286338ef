"""What the operator routes share: ``OperatorContext`` (venue, console sessions, live feed) and the
FastAPI dependencies that hand it and the calling operator to a route.

``operator_router(...)`` binds one context to the requests it routes (a router-level dependency
stores it in the request's state before the route's own dependencies run); routes are plain
module-level functions that ask for ``Ctx`` and ``OperatorName``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path
from pydantic import Field
from starlette.requests import HTTPConnection, Request

from gateway.errors import ApiError
from gateway.operator.console_auth import ConsoleAuth, ConsoleAuthError
from gateway.operator.feed import Feed
from gateway.operator.port import OperatorVenue, RegistryPort
from gateway.ports import ApiKey, Listing, ParticipantView, Role
from gateway.schemas import Strict

RequireOperator = Callable[[Request], ApiKey | Awaitable[ApiKey]]
PARTICIPANT_STATUSES = ("active", "suspended")


class OperatorContext:
    """One operator API: its venue, console sessions, key check and live feed."""

    def __init__(self, venue: OperatorVenue, auth: ConsoleAuth, require_operator: RequireOperator,
                 registry: RegistryPort | None = None) -> None:
        self.venue = venue
        self._registry = registry
        self.auth = auth
        self.require_operator = require_operator
        self.feed = Feed(venue)

    def bind(self, conn: HTTPConnection) -> None:
        """Router-level dependency: makes this context the one ``operator_context`` returns."""
        conn.state.operator_context = self

    @property
    def registry(self) -> RegistryPort:
        if self._registry is None:
            raise ApiError("VENUE_ERROR", "this venue has no reference data registry (use the CLI)")
        return self._registry

    def listing(self, symbol: str) -> Listing:
        listing = self.venue.listing(symbol)
        if listing is None:
            raise ApiError("UNKNOWN_INSTRUMENT", f"no instrument {symbol!r}")
        return listing

    def participant(self, participant: str) -> ParticipantView:
        for view in self.venue.participants():
            if view.participant == participant:
                return view
        raise ApiError("UNKNOWN_PARTICIPANT", f"no participant {participant!r}")


def operator_context(conn: HTTPConnection) -> OperatorContext:
    ctx = getattr(conn.state, "operator_context", None)
    if not isinstance(ctx, OperatorContext):  # a route of this package mounted without operator_router()
        raise TypeError("operator routes need the router made by operator_router()")
    return ctx


Ctx = Annotated[OperatorContext, Depends(operator_context)]


async def signed_operator(request: Request, ctx: Ctx) -> str:
    """The operator name of a request signed by an operator key (403 FORBIDDEN for other roles)."""
    found = ctx.require_operator(request)
    key = await found if inspect.isawaitable(found) else found
    if key.role is not Role.OPERATOR:
        raise ApiError("FORBIDDEN", "this API key does not have the operator role")
    return key.participant


async def operator_name(request: Request, ctx: Ctx) -> str:
    """A console session (``Authorization: Bearer``) or else a signed operator key."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return ctx.auth.verify(token.strip())
    return await signed_operator(request, ctx)


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ConsoleAuthError("MISSING_SESSION", "Authorization: Bearer <session token> is required")
    return token.strip()


OperatorName = Annotated[str, Depends(operator_name)]
SignedOperator = Annotated[str, Depends(signed_operator)]
BearerToken = Annotated[str, Depends(bearer_token)]
SymbolPath = Annotated[str, Path(min_length=1, max_length=32)]
ParticipantPath = Annotated[str, Path(min_length=1, max_length=64)]


# ---------------------------------------------------------------- request bodies (strict: "yes" is not a bool)


class LoginCodeBody(Strict):
    code: str = Field(max_length=128)


class InstrumentStatusBody(Strict):
    status: str = Field(max_length=32)  # "open" | "halted" | "closed" | "pre_open", any case


class ParticipantStatusBody(Strict):
    status: str = Field(max_length=32)  # "active" | "suspended"


class FreezeBody(Strict):
    frozen: bool
