"""FastAPI dependencies for routes under ``/v1`` (also for ``gateway.operator``'s router).

The signature itself is checked by the middleware in ``gateway.app`` before routing (it needs the
raw body); these dependencies hand the authenticated ``ApiKey`` to the route, enforce the role
and document the three auth headers in the OpenAPI spec.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from gateway.errors import ApiError
from gateway.ports import ApiKey, Role
from venueclient.signing import HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP

_key = APIKeyHeader(name=HEADER_KEY, auto_error=False, scheme_name="key",
                    description="API key id; every /v1 request is signed, see the README")
_ts = APIKeyHeader(name=HEADER_TIMESTAMP, auto_error=False, scheme_name="timestamp",
                   description="integer milliseconds since the epoch")
_sig = APIKeyHeader(name=HEADER_SIGNATURE, auto_error=False, scheme_name="signature",
                    description="base64 Ed25519 signature of ts\\nMETHOD\\npath?query\\nbody")


async def authenticated(
    request: Request,
    _k: Annotated[str | None, Security(_key)] = None,
    _t: Annotated[str | None, Security(_ts)] = None,
    _s: Annotated[str | None, Security(_sig)] = None,
) -> ApiKey:
    key = getattr(request.state, "api_key", None)
    if not isinstance(key, ApiKey):  # only reachable if a route is mounted outside /v1
        raise ApiError("MISSING_AUTH", "this route needs a signed request")
    return key


async def trader(key: Annotated[ApiKey, Depends(authenticated)]) -> ApiKey:
    if key.role is not Role.TRADER:
        raise ApiError("FORBIDDEN", "this route is for trading participants")
    return key


async def operator(key: Annotated[ApiKey, Depends(authenticated)]) -> ApiKey:
    if key.role is not Role.OPERATOR:
        raise ApiError("FORBIDDEN", "this route is for venue operators")
    return key


AnyKey = Annotated[ApiKey, Depends(authenticated)]
TraderKey = Annotated[ApiKey, Depends(trader)]
OperatorKey = Annotated[ApiKey, Depends(operator)]
