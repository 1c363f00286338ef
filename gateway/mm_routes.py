"""REST routes and websocket ops of the market-maker tools (``gateway.mm``).

REST (trader keys, signed like every ``/v1`` route):

* ``POST /v1/orders/cancel-after``  ``{"timeout_s": 60}`` arms/refreshes the dead-man switch, 0 disarms;
* ``POST /v1/orders/mass-quote``    replaces the caller's orders on one instrument, one acknowledgement;
* ``POST /v1/mmp``                  sets market-maker protection for one instrument;
* ``GET  /v1/mmp/{symbol}``          its configuration and whether it is frozen;
* ``POST /v1/mmp/reset``            lifts a freeze.

Websocket ops with the same bodies: ``cancel_after``, ``mass_quote``, ``set_mmp``, ``get_mmp``,
``reset_mmp``; MMP events arrive on the private ``mmp`` channel.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from gateway.deps import TraderKey
from gateway.errors import ApiError
from gateway.mm import CancelAfterRequest, MarketMakerTools, MassQuoteRequest, MmpConfigRequest, MmpResetRequest
from gateway.rest import _ORDER_ERRORS
from gateway.schemas import ErrorDetail, OrderAck
from gateway.state import gateway_state

router = APIRouter(prefix="/v1", responses=_ORDER_ERRORS)

SYNC_OPS = ("cancel_after", "set_mmp", "get_mmp", "reset_mmp")


class CancelAfterAck(BaseModel):
    armed: bool
    current_time: float
    trigger_time: float | None


class MmpState(BaseModel):
    symbol: str
    configured: bool
    frozen: bool
    interval_ms: int | None = None
    freeze_ms: int | None = None
    qty_limit: str | None = None
    fills_limit: int | None = None


class QuoteResult(OrderAck):
    ok: bool


class QuoteRefusal(BaseModel):
    ok: bool
    error: ErrorDetail


class MassQuoteAck(BaseModel):
    symbol: str
    quote_id: str | None
    cancelled: list[int]
    quotes: list[QuoteResult | QuoteRefusal]
    accepted: int
    ts: int


def _mm(request: Request) -> MarketMakerTools:
    return gateway_state(request).mm


@router.post("/orders/cancel-after", response_model=CancelAfterAck, tags=["market makers"])
async def cancel_after(request: Request, key: TraderKey, body: CancelAfterRequest) -> dict[str, Any]:
    """Dead-man switch: all the caller's orders are cancelled ``timeout_s`` seconds from now unless
    this is called again first; ``timeout_s`` 0 disarms. One timer per participant."""
    return _mm(request).cancel_after(key.participant, body.timeout_s)


@router.post("/orders/mass-quote", response_model=MassQuoteAck, tags=["market makers"])
async def mass_quote(request: Request, key: TraderKey, body: MassQuoteRequest) -> JSONResponse:
    """Replace the caller's open orders on one instrument by new limit orders (several levels, both
    sides) atomically from the book's point of view; one acknowledgement with a result per level."""
    reply = await _mm(request).mass_quote(key.participant, body)
    return JSONResponse(reply.body, status_code=reply.status)


@router.post("/mmp", response_model=MmpState, tags=["market makers"])
async def set_mmp(request: Request, key: TraderKey, body: MmpConfigRequest) -> dict[str, Any]:
    """Market-maker protection for one instrument: limits on maker quantity and fills per interval."""
    return _mm(request).set_mmp(key.participant, body)


@router.get("/mmp/{symbol}", response_model=MmpState, tags=["market makers"])
async def get_mmp(request: Request, key: TraderKey,
                  symbol: Annotated[str, Path(min_length=1, max_length=32)]) -> dict[str, Any]:
    return _mm(request).mmp_state(key.participant, symbol)


@router.post("/mmp/reset", response_model=MmpState, tags=["market makers"])
async def reset_mmp(request: Request, key: TraderKey, body: MmpResetRequest) -> dict[str, Any]:
    """Lift a freeze of market-maker protection."""
    return _mm(request).reset_mmp(key.participant, body.symbol)


def websocket_op(mm: MarketMakerTools, participant: str, op: str, body: dict[str, Any]) -> dict[str, Any]:
    """The synchronous market-maker ops of a websocket session (``SYNC_OPS``)."""
    if op == "cancel_after":
        return mm.cancel_after(participant, CancelAfterRequest.model_validate(body).timeout_s)
    if op == "set_mmp":
        return mm.set_mmp(participant, MmpConfigRequest.model_validate(body))
    if op == "reset_mmp":
        return mm.reset_mmp(participant, MmpResetRequest.model_validate(body).symbol)
    if op == "get_mmp":
        return mm.mmp_state(participant, MmpResetRequest.model_validate(body).symbol)
    raise ApiError("UNKNOWN_OP", f"unknown op {op[:32]!r}")
