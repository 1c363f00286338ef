"""Reference figures of a note series over the API: NAV, accrued BTC, custody coverage, attestations.

    GET  /v1/instruments/{symbol}/reference   any key (public like market data)
    POST /v1/instruments/{symbol}/resume      operator: reopen a halted instrument with an audited reason
    websocket channel ``reference`` (``gateway.streams.Hub.subscribe_reference``): a snapshot, then an
    update whenever the figures may have changed (new attestation, halt, resume, NAV in force).

The venue renders the figures (``venue.attestations``); this module only serves them. Each
attestation carries what a client needs to verify it independently: uid, attester (signer), schema,
recipient (the series), data, tx hash and block, and for a delegated attestation its EIP-712
signature, nonce and deadline (see the README's web3 snippet).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, FastAPI, Path
from pydantic import BaseModel, ConfigDict, Field

from engine import Fill
from gateway.deps import AnyKey, OperatorKey
from gateway.errors import ApiError
from gateway.operator.console_auth import ConsoleAuth
from gateway.render import JSON
from gateway.state import gateway_state

SymbolPath = Annotated[str, Path(min_length=1, max_length=32)]


class ReferencePort(Protocol):
    def reference_view(self, symbol: str) -> JSON | None:
        """The JSON figures of a listed symbol; None when it is not listed."""
        ...

    def trade_extras(self, fill: Fill) -> JSON:
        """Fields added to a trade print / fill (``nav``, ``premium``)."""
        ...

    def subscribe_reference(self, listener: Callable[[str], None]) -> Callable[[], None]: ...

    async def resume(self, symbol: str, *, operator: str, reason: str) -> str:
        """Reopen a halted instrument; returns the engine result code name."""
        ...


class ResumeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500)


def reference_router(port: ReferencePort, *, console_auth: ConsoleAuth | None = None) -> APIRouter:
    """The signed ``/v1`` routes, and with ``console_auth`` the same two for console sessions
    under ``/console/api`` (``Authorization: Bearer <session token>``)."""
    router = APIRouter(prefix="/v1", tags=["reference"])

    @router.get("/instruments/{symbol}/reference")
    async def reference(symbol: SymbolPath, key: AnyKey) -> dict[str, Any]:
        """NAV per note, accrued BTC per note, custody coverage, collar, premium/discount of the book's
        mid, attestation freshness per kind, halt reason, listing metadata and every latest
        attestation with signer, signature, tx hash and block."""
        view = port.reference_view(symbol)
        if view is None:
            raise ApiError("UNKNOWN_INSTRUMENT", f"unknown instrument {symbol!r}")
        return view

    @router.post("/instruments/{symbol}/resume")
    async def resume(symbol: SymbolPath, body: ResumeRequest, key: OperatorKey) -> dict[str, Any]:
        """Reopen an instrument the venue halted (stale attestation, custody shortfall); audited."""
        if port.reference_view(symbol) is None:
            raise ApiError("UNKNOWN_INSTRUMENT", f"unknown instrument {symbol!r}")
        if not body.reason.strip():
            raise ApiError("RESUME_REASON_REQUIRED", "a resume needs a reason")
        code = await port.resume(symbol, operator=key.participant, reason=body.reason)
        return {"symbol": symbol, "result": code}

    if console_auth is None:
        return router
    console = APIRouter(prefix="/console/api", include_in_schema=False)

    session = console_auth.operator_of

    @console.get("/instruments/{symbol}/reference")
    async def console_reference(symbol: SymbolPath, operator: str = Depends(session)) -> dict[str, Any]:
        view = port.reference_view(symbol)
        if view is None:
            raise ApiError("UNKNOWN_INSTRUMENT", f"unknown instrument {symbol!r}")
        return view

    @console.post("/instruments/{symbol}/resume")
    async def console_resume(symbol: SymbolPath, body: ResumeRequest,
                             operator: str = Depends(session)) -> dict[str, Any]:
        if port.reference_view(symbol) is None:
            raise ApiError("UNKNOWN_INSTRUMENT", f"unknown instrument {symbol!r}")
        if not body.reason.strip():
            raise ApiError("RESUME_REASON_REQUIRED", "a resume needs a reason")
        return {"symbol": symbol, "result": await port.resume(symbol, operator=operator, reason=body.reason)}

    outer = APIRouter()
    outer.include_router(router)
    outer.include_router(console)
    return outer


def attach_reference(app: FastAPI, port: ReferencePort) -> Callable[[], None]:
    """Connect the app's stream hub to the reference figures; returns the detach function."""
    hub = app.state.gateway.hub
    hub.reference_view = port.reference_view
    hub.trade_extras = port.trade_extras
    return port.subscribe_reference(hub.publish_reference)


__all__ = ["ReferencePort", "ResumeRequest", "attach_reference", "gateway_state", "reference_router"]
