"""REST routes under ``/v1`` (participants and the operator status route)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from gateway import render
from gateway.deps import AnyKey, OperatorKey, TraderKey
from gateway.errors import ApiError
from gateway.orders import Reply
from gateway.paging import PAGED_RESPONSES, CursorQuery, SinceQuery, UntilQuery, set_next_cursor, trade_query
from gateway.ports import Listing
from gateway.schemas import (
    AmendRequest,
    BookSnapshot,
    CancelAck,
    CancelRequest,
    ErrorResponse,
    InstrumentInfo,
    MassCancelAck,
    MassCancelRequest,
    NewOrderRequest,
    OrderAck,
    OrderDetail,
    OrderInfo,
    OwnTradeInfo,
    StatusAck,
    StatusRequest,
    TradeInfo,
)
from gateway.state import GatewayState, gateway_state
from market.history import MAX_PAGE

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": desc}
    for status, desc in (
        (400, "invalid input (MALFORMED_JSON, UNKNOWN_FIELD, WRONG_TICK, ...)"),
        (401, "authentication failed (MISSING_AUTH, BAD_SIGNATURE, EXPIRED_SIGNATURE, ...)"),
        (403, "wrong role (FORBIDDEN)"),
        (404, "unknown instrument, order or route"),
        (413, "body too large"),
        (429, "rate limited (RATE_LIMITED, see Retry-After)"),
    )
}
_ORDER_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    409: {"model": ErrorResponse, "description": "client_order_id reused for a different order"},
    422: {"model": ErrorResponse, "description": "refused by the venue (engine or eligibility code)"},
    503: {"model": ErrorResponse, "description": "venue unavailable (VENUE_ERROR)"},
}

SymbolPath = Annotated[str, Path(min_length=1, max_length=32)]
router = APIRouter(prefix="/v1", responses=_ERRORS)


def _gw(request: Request) -> GatewayState:
    return gateway_state(request)


def _listing(gw: GatewayState, symbol: str) -> Listing:
    return gw.orders.listing(symbol)


def _json(reply: Reply) -> JSONResponse:
    return JSONResponse(reply.body, status_code=reply.status)


@router.get("/instruments", response_model=list[InstrumentInfo], tags=["market data"])
async def instruments(request: Request, key: AnyKey) -> list[dict[str, Any]]:
    """All listed instruments with their increments, limits and current status."""
    gw = _gw(request)
    out = []
    for listing in gw.venue.listings():
        info = render.instrument(listing)
        info["status"] = render.status_text(gw.venue.l2(listing.symbol, 0).status)
        out.append(info)
    return out


@router.get("/instruments/{symbol}", response_model=InstrumentInfo, tags=["market data"])
async def instrument(request: Request, key: AnyKey, symbol: SymbolPath) -> dict[str, Any]:
    gw = _gw(request)
    listing = _listing(gw, symbol)
    info = render.instrument(listing)
    info["status"] = render.status_text(gw.venue.l2(symbol, 0).status)
    return info


@router.get("/instruments/{symbol}/book", response_model=BookSnapshot, tags=["market data"])
async def book(request: Request, key: AnyKey, symbol: SymbolPath,
         depth: Annotated[int | None, Query(ge=1, le=10_000)] = None) -> dict[str, Any]:
    """L2 snapshot (aggregated levels, best first) with the instrument's market-data sequence."""
    gw = _gw(request)
    listing = _listing(gw, symbol)
    return render.book(gw.venue.l2(symbol, depth or gw.config.default_book_depth), listing)


@router.get("/instruments/{symbol}/trades", response_model=list[TradeInfo], responses=PAGED_RESPONSES,
            tags=["market data"])
async def trades(request: Request, response: Response, key: AnyKey, symbol: SymbolPath,
                 limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
                 since: SinceQuery = None, until: UntilQuery = None,
                 cursor: CursorQuery = None) -> list[dict[str, Any]]:
    """Public trades, newest first, from the whole history (no participant information). Paged: a
    full page sets the ``Next-Cursor`` header; pass it back as ``cursor`` for the next older page."""
    gw = _gw(request)
    listing = _listing(gw, symbol)
    page = await gw.venue.trade_history(trade_query(symbol=symbol, participant=None, since=since, until=until,
                                                     cursor=cursor, limit=limit))
    set_next_cursor(response, page.next_cursor)
    return [render.trade_record(t, listing) for t in page.items]


@router.get("/orders", response_model=list[OrderInfo], tags=["orders"])
async def my_orders(request: Request, key: TraderKey,
              symbol: Annotated[str | None, Query(min_length=1, max_length=32)] = None) -> list[dict[str, Any]]:
    """The caller's open orders."""
    gw = _gw(request)
    if symbol is not None:
        _listing(gw, symbol)
    out = []
    for view in gw.venue.open_orders(key.participant, symbol):
        listing = gw.venue.listing(view.symbol)
        if listing is not None and view.participant == key.participant:
            out.append(render.order_view(view, listing))
    return out


@router.get("/orders/{order_id}", response_model=OrderDetail, tags=["orders"])
async def my_order(request: Request, key: TraderKey,
                   order_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> dict[str, Any]:
    """One of the caller's orders: on the book, or its final state once filled, cancelled or expired
    (another participant's order is reported as unknown)."""
    gw = _gw(request)
    rec = await gw.venue.order_record(key.participant, order_id)
    if rec is None or rec.participant != key.participant:
        raise ApiError("UNKNOWN_ORDER", f"unknown order {order_id}")
    return render.order_record(rec, _listing(gw, rec.symbol))


@router.get("/fills", response_model=list[OwnTradeInfo], responses=PAGED_RESPONSES, tags=["orders"])
async def my_fills(request: Request, response: Response, key: TraderKey,
                   symbol: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
                   limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
                   since: SinceQuery = None, until: UntilQuery = None,
                   cursor: CursorQuery = None) -> list[dict[str, Any]]:
    """The caller's trades, newest first, with settlement state, from the whole history. Paged: a full
    page sets the ``Next-Cursor`` header; pass it back as ``cursor`` for the next older page."""
    gw = _gw(request)
    if symbol is not None:
        _listing(gw, symbol)
    page = await gw.venue.trade_history(trade_query(symbol=symbol, participant=key.participant, since=since,
                                                     until=until, cursor=cursor, limit=limit))
    set_next_cursor(response, page.next_cursor)
    out = []
    for rec in page.items:
        listing = gw.venue.listing(rec.symbol)
        if listing is not None and key.participant in (rec.buyer, rec.seller):
            out.append(render.own_trade(rec, key.participant, listing))
    return out


@router.post("/orders", response_model=OrderAck, responses=_ORDER_ERRORS, tags=["orders"])
async def new_order(request: Request, key: TraderKey, body: NewOrderRequest) -> JSONResponse:
    """Place an order. Resending the same ``client_order_id`` returns the first reply again."""
    return _json(await _gw(request).orders.new_order(key.participant, body))


@router.post("/orders/amend", response_model=OrderAck, responses=_ORDER_ERRORS, tags=["orders"])
async def amend(request: Request, key: TraderKey, body: AmendRequest) -> JSONResponse:
    """Change price and/or total quantity (lower quantity keeps priority)."""
    return _json(await _gw(request).orders.amend(key.participant, body))


@router.post("/orders/cancel", response_model=CancelAck, responses=_ORDER_ERRORS, tags=["orders"])
async def cancel(request: Request, key: TraderKey, body: CancelRequest) -> JSONResponse:
    """Cancel one order by ``order_id`` or ``client_order_id``."""
    return _json(await _gw(request).orders.cancel(key.participant, body))


@router.post("/orders/mass-cancel", response_model=MassCancelAck, responses=_ORDER_ERRORS, tags=["orders"])
async def mass_cancel(request: Request, key: TraderKey, body: MassCancelRequest) -> JSONResponse:
    """Cancel all the caller's open orders, optionally of one instrument and/or side."""
    return _json(await _gw(request).orders.mass_cancel(key.participant, body))


@router.post("/operator/instruments/{symbol}/status", response_model=StatusAck, responses=_ORDER_ERRORS,
             tags=["operator"])
async def set_status(request: Request, key: OperatorKey, symbol: SymbolPath, body: StatusRequest) -> JSONResponse:
    """Halt, resume (open) or close an instrument. Operators only."""
    return _json(await _gw(request).orders.set_status(key.participant, symbol, body.status))
