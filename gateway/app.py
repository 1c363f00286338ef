"""The FastAPI application: ``create_app(venue, config=...)``.

Every request under ``/v1`` passes the signing middleware (body size, Ed25519 signature,
freshness, replay, rate limit, strict JSON) before routing; ``/v1/ws`` is the websocket, which
authenticates with its own login message. ``/health``, ``/docs`` and ``/openapi.json`` are open.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway import apidocs, mm_routes, rest
from gateway.auth import Authenticator
from gateway.config import GatewayConfig
from gateway.errors import ApiError, error_body
from gateway.guards import AbuseGuard, Guards, health_router
from gateway.mm import MarketMakerTools, MmpBook, MmpVenue
from gateway.orders import OrderService
from gateway.ports import VenuePort
from gateway.ratelimit import RateLimiter
from gateway.state import GatewayState
from gateway.streams import Hub
from gateway.validation import from_validation_errors, parse_object
from gateway.ws import websocket_endpoint
from market.codes import Unavailable

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_API_PREFIX = "/v1/"
_WS_PATH = "/v1/ws"


def _error_response(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers() or None)


class SignedRequests:
    """Pure ASGI middleware: authenticate, rate-limit and pre-parse every ``/v1`` HTTP request."""

    def __init__(self, app: ASGIApp, state: GatewayState) -> None:
        self.app = app
        self.gw = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(_API_PREFIX):
            await self.app(scope, receive, send)
            return
        try:
            body = await self._body(scope, receive)
            key = self._authenticate(scope, body)
        except ApiError as err:
            await _error_response(err)(scope, receive, send)
            return
        scope.setdefault("state", {})["api_key"] = key
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.gw.config.max_body_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise ApiError("BODY_TOO_LARGE", f"request bodies are limited to {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise ApiError("BODY_TOO_LARGE", f"request bodies are limited to {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _authenticate(self, scope: Scope, body: bytes) -> Any:
        headers: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        target = scope.get("raw_path") or str(scope["path"]).encode("utf-8")
        if scope.get("query_string"):
            target = target + b"?" + scope["query_string"]
        key = self.gw.auth.verify_rest(scope["method"], target, headers, body)
        scope.setdefault("state", {})["api_key"] = key  # also on a 429: the quota headers name its bucket
        retry_after = self.gw.limiter.take(key.key_id)
        if retry_after is not None:
            raise ApiError("RATE_LIMITED", f"rate limit exceeded; retry in {retry_after:.3f} s",
                           retry_after=round(retry_after, 3))
        if body and scope["method"] in ("POST", "PUT", "PATCH"):
            parse_object(body)  # strict JSON (no NaN/Infinity, depth-safe) before FastAPI sees it
        return key


_SIGNED = {"key", "timestamp", "signature"}


def _tidy_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Makes the spec say what the gateway does: the three auth headers are required together
    (one security requirement, not three alternatives), and validation errors are our 400
    ``ErrorResponse``, never FastAPI's default 422 ``HTTPValidationError``."""
    for path_item in schema.get("paths", {}).values():
        for op in path_item.values():
            security = op.get("security")
            if security and {name for req in security for name in req} == _SIGNED:
                op["security"] = [{name: [] for name in sorted(_SIGNED)}]
            responses = op.get("responses", {})
            if "HTTPValidationError" in json.dumps(responses.get("422", {})):
                del responses["422"]
    text = json.dumps(schema.get("paths", {}))
    schemas = schema.get("components", {}).get("schemas", {})
    if "HTTPValidationError" not in text:
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return schema


def create_app(
    venue: VenuePort,
    *,
    config: GatewayConfig | None = None,
    extra_routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The gateway app. ``extra_routers`` (e.g. ``gateway.operator``'s) are mounted as they are;
    their ``/v1`` routes are signed like ours and can use ``gateway.deps.OperatorKey``."""
    cfg = config or GatewayConfig()
    guards = Guards.from_config(cfg)  # abuse limits + readiness (gateway.guards)
    guarded = MmpVenue(venue, guards.refusals, MmpBook())  # GuardedVenue + market-maker protection
    orders, hub = OrderService(guarded, cfg), Hub(venue)
    state = GatewayState(
        venue=venue,
        config=cfg,
        auth=Authenticator(venue, window_s=cfg.signature_window_s, memory_path=cfg.replay_memory_path),
        limiter=RateLimiter(rate_per_s=cfg.rate_per_s, burst=cfg.rate_burst),
        orders=orders,
        hub=hub,
        mm=MarketMakerTools(guarded, orders, hub, guarded.mmp),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.hub.start()
        state.mm.start()
        try:
            yield
        finally:
            state.mm.stop()
            state.hub.stop()

    app = FastAPI(
        title="OMN venue gateway",
        version="1",
        description=(
            "Permissioned trading venue for tokenized hashrate-backed notes. Every `/v1` request is "
            "signed with the participant's Ed25519 key: headers `OMN-Key`, `OMN-Timestamp` (ms) and "
            "`OMN-Signature` = base64 signature of `ts\\nMETHOD\\npath?query\\nbody`. Prices and "
            "quantities are decimal strings. Errors: `{\"error\": {\"code\", \"message\"}}` with stable "
            "codes. Websocket: `/v1/ws` (protocol: docs/api/asyncapi.yaml)."
        ),
        lifespan=lifespan,
        docs_url=None,  # served by gateway.apidocs from vendored assets (FastAPI's default loads a CDN)
        redoc_url=None,
    )
    app.state.gateway = state
    app.state.guards = guards
    app.include_router(health_router())
    app.include_router(rest.router)
    app.include_router(mm_routes.router)
    app.include_router(apidocs.router)
    for router in extra_routers:
        app.include_router(router)
    app.add_api_websocket_route(_WS_PATH, websocket_endpoint)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _tidy_openapi(get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error_response(from_validation_errors(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "INVALID_FIELD")
        message = {404: "no such route", 405: "method not allowed on this route"}.get(exc.status_code,
                                                                                      str(exc.detail))
        return JSONResponse(error_body(code, message), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Unavailable)
    async def unavailable(_: Request, exc: Unavailable) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body("INTERNAL_ERROR", "internal error"), status_code=500)

    app.add_middleware(SignedRequests, state=state)
    app.add_middleware(AbuseGuard, guards=guards, limiter=state.limiter, config=cfg)  # outside SignedRequests
    return app
