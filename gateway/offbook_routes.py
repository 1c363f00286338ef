"""Requests for quotes and negotiated block trades over the API (the venue side: ``venue.rfq``,
``venue.blocks``). Signed like every ``/v1`` route; prices and quantities are decimal strings.

REST (trader keys)::

    POST   /v1/rfqs                               request quotes: symbol, side, qty, min_qty?, ttl_s
    GET    /v1/rfqs?open_only=                    own requests and those the caller is asked to quote
    GET    /v1/rfqs/{rfq_id}                      one (the requester sees every quote, a responder its own)
    DELETE /v1/rfqs/{rfq_id}                      the requester cancels (every quote's hold is released)
    POST   /v1/rfqs/{rfq_id}/quotes               quote it: price, qty, ttl_s? (firm; funds held)
    DELETE /v1/rfqs/{rfq_id}/quotes/{quote_id}    withdraw a quote
    POST   /v1/rfqs/{rfq_id}/accept               the requester trades one quote: quote_id
    POST   /v1/blocks                             submit one side of a block: block_id, symbol, side,
                                                  price, qty, counterparty
    GET    /v1/blocks                             own blocks
    POST   /v1/blocks/cancel                      withdraw a pending block: block_id, counterparty

Operators: ``GET /v1/operator/rfqs`` (with the responders asked), ``GET /v1/operator/blocks``,
``POST /v1/operator/rfqs/{rfq_id}/cancel``, ``POST /v1/operator/blocks/cancel``; the console reads
the same under ``/console/api``.

Websocket ops (``WS_OPS``) take the REST bodies plus ``rfq_id`` / ``quote_id`` where the path has
them: ``rfq_request``, ``rfq_quote``, ``rfq_cancel_quote``, ``rfq_accept``, ``rfq_cancel``,
``rfqs``, ``block_submit``, ``block_cancel``, ``blocks``. Changes arrive on the private channels
``rfq`` and ``blocks``; requests and quotes never appear on public feeds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from enum import Enum
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, Depends, FastAPI, Path, Query
from pydantic import BaseModel, Field, ValidationError

from engine import Side
from gateway.decimals import format_price, format_qty, parse_price, parse_qty
from gateway.deps import OperatorKey, TraderKey
from gateway.errors import ApiError
from gateway.operator.console_auth import ConsoleAuth
from gateway.ports import Listing
from gateway.render import JSON, side_text
from gateway.rest import _ORDER_ERRORS
from gateway.schemas import DecimalText, SideText, Strict, Symbol
from gateway.validation import from_validation_errors
from market.offbook import BlockTrade, OffBookNotice, OffBookRefused, Quote, Rfq

Id = Annotated[int, Path(ge=1, le=2**62)]
BlockId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Participant = Annotated[str, Field(min_length=1, max_length=64)]
Ttl = Annotated[float, Field(gt=0, le=86_400)]

OFF_BOOK_CHANNELS = ("rfq", "blocks")


# ---------------------------------------------------------------- ports (``venue.rfq``, ``venue.blocks``)


class RfqPort(Protocol):
    def request(self, participant: str, *, symbol: str, side: Side, qty: int, min_qty: int | None = None,
                ttl_s: float) -> Rfq: ...

    def quote(self, participant: str, rfq_id: int, *, price: int, qty: int, ttl_s: float | None = None) -> Quote: ...

    def cancel_quote(self, participant: str, rfq_id: int, quote_id: int) -> Quote: ...

    async def accept(self, participant: str, rfq_id: int, quote_id: int) -> Rfq: ...

    def cancel(self, participant: str, rfq_id: int) -> Rfq: ...

    def cancel_by_operator(self, rfq_id: int) -> Rfq: ...

    def rfq(self, participant: str, rfq_id: int) -> Rfq: ...

    def rfqs_of(self, participant: str, *, open_only: bool = False) -> list[Rfq]: ...

    def all(self, limit: int = 200) -> list[Rfq]: ...

    def subscribe(self, listener: Callable[[OffBookNotice], None]) -> Callable[[], None]: ...


class BlockPort(Protocol):
    async def submit(self, participant: str, *, block_id: str, symbol: str, side: Side, price: int, qty: int,
                     counterparty: str) -> BlockTrade: ...

    def cancel(self, participant: str, *, block_id: str, counterparty: str) -> BlockTrade: ...

    def cancel_by_operator(self, block_id: str, buyer: str, seller: str) -> BlockTrade: ...

    def blocks_of(self, participant: str) -> list[BlockTrade]: ...

    def all(self, limit: int = 200) -> list[BlockTrade]: ...

    def subscribe(self, listener: Callable[[OffBookNotice], None]) -> Callable[[], None]: ...


# ---------------------------------------------------------------- bodies and answers


class RfqRequest(Strict):
    symbol: Symbol
    side: SideText
    qty: DecimalText
    min_qty: DecimalText | None = None
    ttl_s: Ttl


class QuoteRequest(Strict):
    price: DecimalText
    qty: DecimalText
    ttl_s: Ttl | None = None


class AcceptRequest(Strict):
    quote_id: int = Field(ge=1, le=2**62)


class BlockRequest(Strict):
    block_id: BlockId
    symbol: Symbol
    side: SideText
    price: DecimalText
    qty: DecimalText
    counterparty: Participant


class BlockCancelRequest(Strict):
    block_id: BlockId
    counterparty: Participant


class OperatorBlockCancelRequest(Strict):
    block_id: BlockId
    buyer: Participant
    seller: Participant


class QuoteInfo(BaseModel):
    quote_id: int
    rfq_id: int
    responder: str
    side: SideText
    price: str
    qty: str
    ts: int
    expire_ts: int
    state: Literal["live", "accepted", "cancelled", "expired", "not_selected", "failed"]
    trade_id: int | None


class RfqInfo(BaseModel):
    rfq_id: int
    requester: str
    symbol: str
    side: SideText
    qty: str
    min_qty: str
    ts: int
    expire_ts: int
    state: Literal["open", "filled", "cancelled", "expired"]
    quotes: list[QuoteInfo]
    trade_id: int | None
    reason: str | None
    responders: list[str] | None = Field(default=None, description="operators only: who was asked to quote")


class BlockInfo(BaseModel):
    block_id: str
    symbol: str
    price: str
    qty: str
    buyer: str
    seller: str
    submitted_by: list[str]
    ts: int
    expire_ts: int
    state: Literal["pending", "matched", "cancelled", "expired", "failed"]
    trade_id: int | None
    reason: str | None


def quote_json(quote: Quote, listing: Listing) -> JSON:
    return {"quote_id": quote.quote_id, "rfq_id": quote.rfq_id, "responder": quote.responder,
            "side": side_text(quote.side), "price": format_price(quote.price, listing),
            "qty": format_qty(quote.qty, listing), "ts": quote.ts, "expire_ts": quote.expire_ts,
            "state": quote.state.value, "trade_id": quote.trade_id}


def rfq_json(rfq: Rfq, listing: Listing, *, operator: bool = False) -> JSON:
    out: JSON = {"rfq_id": rfq.rfq_id, "requester": rfq.requester, "symbol": rfq.symbol, "side": side_text(rfq.side),
                 "qty": format_qty(rfq.qty, listing), "min_qty": format_qty(rfq.min_qty, listing), "ts": rfq.ts,
                 "expire_ts": rfq.expire_ts, "state": rfq.state.value,
                 "quotes": [quote_json(q, listing) for q in rfq.quotes], "trade_id": rfq.trade_id,
                 "reason": rfq.reason}
    if operator:
        out["responders"] = list(rfq.responders)
    return out


def block_json(block: BlockTrade, listing: Listing) -> JSON:
    return {"block_id": block.block_id, "symbol": block.symbol, "price": format_price(block.price, listing),
            "qty": format_qty(block.qty, listing), "buyer": block.buyer, "seller": block.seller,
            "submitted_by": list(block.submitted_by), "ts": block.ts, "expire_ts": block.expire_ts,
            "state": block.state.value, "trade_id": block.trade_id, "reason": block.reason}


def notice_json(notice: OffBookNotice, listing: Listing) -> JSON:
    """A push on the private ``rfq`` / ``blocks`` channel."""
    body: JSON = {"channel": notice.channel, "type": notice.event}
    if notice.rfq is not None:
        body["data"] = rfq_json(notice.rfq, listing)
    elif notice.block is not None:
        body["data"] = block_json(notice.block, listing)
    return body


# ---------------------------------------------------------------- the operations (REST and websocket)


class OffBookApi:
    """Parse, call the desk, render; a desk's refusal becomes the ``ApiError`` of its code."""

    def __init__(self, rfqs: RfqPort, blocks: BlockPort, listing: Callable[[str], Listing | None], *,
                 audit: Callable[[str, str, Mapping[str, object]], None] | None = None) -> None:
        """``audit(actor, action, details)`` records operator cancels (the venue's audit log)."""
        self.rfqs = rfqs
        self.blocks = blocks
        self._listing = listing
        self._audit = audit

    def listing(self, symbol: str) -> Listing:
        listing = self._listing(symbol)
        if listing is None:
            raise ApiError("UNKNOWN_INSTRUMENT", f"unknown instrument {symbol!r}")
        return listing

    def _rfq(self, rfq: Rfq, *, operator: bool = False) -> JSON:
        return rfq_json(rfq, self.listing(rfq.symbol), operator=operator)

    async def _call(self, work: Callable[[], Awaitable[JSON]]) -> JSON:
        try:
            return await work()
        except OffBookRefused as refused:
            raise ApiError(refused.code, refused.message) from None

    async def request(self, participant: str, body: RfqRequest) -> JSON:
        listing = self.listing(body.symbol)
        qty = parse_qty(body.qty, listing)
        min_qty = None if body.min_qty is None else parse_qty(body.min_qty, listing, "min_qty")

        async def work() -> JSON:
            return self._rfq(self.rfqs.request(participant, symbol=body.symbol, side=_side(body.side), qty=qty,
                                               min_qty=min_qty, ttl_s=body.ttl_s))
        return await self._call(work)

    async def quote(self, participant: str, rfq_id: int, body: QuoteRequest) -> JSON:
        async def work() -> JSON:
            listing = self.listing(self.rfqs.rfq(participant, rfq_id).symbol)
            quote = self.rfqs.quote(participant, rfq_id, price=parse_price(body.price, listing),
                                    qty=parse_qty(body.qty, listing), ttl_s=body.ttl_s)
            return quote_json(quote, listing)
        return await self._call(work)

    async def cancel_quote(self, participant: str, rfq_id: int, quote_id: int) -> JSON:
        async def work() -> JSON:
            listing = self.listing(self.rfqs.rfq(participant, rfq_id).symbol)
            return quote_json(self.rfqs.cancel_quote(participant, rfq_id, quote_id), listing)
        return await self._call(work)

    async def accept(self, participant: str, rfq_id: int, quote_id: int) -> JSON:
        async def work() -> JSON:
            return self._rfq(await self.rfqs.accept(participant, rfq_id, quote_id))
        return await self._call(work)

    async def cancel(self, participant: str, rfq_id: int) -> JSON:
        async def work() -> JSON:
            return self._rfq(self.rfqs.cancel(participant, rfq_id))
        return await self._call(work)

    async def rfq(self, participant: str, rfq_id: int) -> JSON:
        async def work() -> JSON:
            return self._rfq(self.rfqs.rfq(participant, rfq_id))
        return await self._call(work)

    def rfqs_of(self, participant: str, open_only: bool = False) -> list[JSON]:
        return [self._rfq(r) for r in self.rfqs.rfqs_of(participant, open_only=open_only)]

    async def submit_block(self, participant: str, body: BlockRequest) -> JSON:
        listing = self.listing(body.symbol)
        price, qty = parse_price(body.price, listing), parse_qty(body.qty, listing)

        async def work() -> JSON:
            block = await self.blocks.submit(participant, block_id=body.block_id, symbol=body.symbol,
                                             side=_side(body.side), price=price, qty=qty,
                                             counterparty=body.counterparty)
            return block_json(block, listing)
        return await self._call(work)

    async def cancel_block(self, participant: str, body: BlockCancelRequest) -> JSON:
        async def work() -> JSON:
            block = self.blocks.cancel(participant, block_id=body.block_id, counterparty=body.counterparty)
            return block_json(block, self.listing(block.symbol))
        return await self._call(work)

    def blocks_of(self, participant: str) -> list[JSON]:
        return [block_json(b, self.listing(b.symbol)) for b in self.blocks.blocks_of(participant)]

    # operators
    def all_rfqs(self, limit: int) -> list[JSON]:
        return [self._rfq(r, operator=True) for r in self.rfqs.all(limit)]

    def all_blocks(self, limit: int) -> list[JSON]:
        return [block_json(b, self.listing(b.symbol)) for b in self.blocks.all(limit)]

    async def operator_cancel_rfq(self, operator: str, rfq_id: int) -> JSON:
        async def work() -> JSON:
            rfq = self.rfqs.cancel_by_operator(rfq_id)
            if self._audit is not None:
                self._audit(operator, "rfq.cancel", {"rfq_id": rfq_id, "requester": rfq.requester,
                                                     "symbol": rfq.symbol})
            return self._rfq(rfq, operator=True)
        return await self._call(work)

    async def operator_cancel_block(self, operator: str, body: OperatorBlockCancelRequest) -> JSON:
        async def work() -> JSON:
            block = self.blocks.cancel_by_operator(body.block_id, body.buyer, body.seller)
            if self._audit is not None:
                self._audit(operator, "block.cancel", {"block_id": block.block_id, "buyer": block.buyer,
                                                       "seller": block.seller, "symbol": block.symbol})
            return block_json(block, self.listing(block.symbol))
        return await self._call(work)

    # websocket
    async def ws_op(self, participant: str, op: str, body: dict[str, Any]) -> Any:
        """One websocket op (``WS_OPS``) with its REST body plus ``rfq_id`` / ``quote_id``."""
        ids: dict[str, Any] = {k: body.pop(k) for k in ("rfq_id", "quote_id") if k in body}
        rfq_id = _id(ids, "rfq_id") if op.startswith("rfq_") and op != "rfq_request" else 0
        if op == "rfq_request":
            return await self.request(participant, RfqRequest.model_validate(body))
        if op == "rfq_quote":
            return await self.quote(participant, rfq_id, QuoteRequest.model_validate(body))
        if op == "rfq_cancel_quote":
            return await self.cancel_quote(participant, rfq_id, _id(ids, "quote_id"))
        if op == "rfq_accept":
            return await self.accept(participant, rfq_id, AcceptRequest.model_validate(body).quote_id)
        if op == "rfq_cancel":
            return await self.cancel(participant, rfq_id)
        if op == "rfqs":
            return self.rfqs_of(participant, bool(body.get("open_only", False)))
        if op == "block_submit":
            return await self.submit_block(participant, BlockRequest.model_validate(body))
        if op == "block_cancel":
            return await self.cancel_block(participant, BlockCancelRequest.model_validate(body))
        if op == "blocks":
            return self.blocks_of(participant)
        raise ApiError("UNKNOWN_OP", f"unknown op {op[:32]!r}")


WS_OPS = frozenset({"rfq_request", "rfq_quote", "rfq_cancel_quote", "rfq_accept", "rfq_cancel", "rfqs",
                    "block_submit", "block_cancel", "blocks"})


def _side(text: str) -> Side:
    return Side.BUY if text == "buy" else Side.SELL


def _id(ids: dict[str, Any], name: str) -> int:
    value = ids.get(name)
    if value is None:
        raise ApiError("MISSING_FIELD", f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**62:
        raise ApiError("INVALID_FIELD", f"{name} must be a positive integer")
    return value


# ---------------------------------------------------------------- REST


def offbook_router(api: OffBookApi, *, console_auth: ConsoleAuth | None = None) -> APIRouter:
    router = APIRouter(prefix="/v1", responses=_ORDER_ERRORS)
    rfq_tags: list[str | Enum] = ["request for quotes"]
    block_tags: list[str | Enum] = ["block trades"]

    @router.post("/rfqs", response_model=RfqInfo, tags=rfq_tags)
    async def request_quotes(key: TraderKey, body: RfqRequest) -> JSON:
        """Ask the participants eligible to take the other side for firm quotes on ``qty`` (quotes may be
        smaller, down to ``min_qty``), open for ``ttl_s`` seconds (at most the listing's ``rfq_max_ttl_s``)."""
        return await api.request(key.participant, body)

    @router.get("/rfqs", response_model=list[RfqInfo], tags=rfq_tags)
    async def list_rfqs(key: TraderKey, open_only: Annotated[bool, Query()] = False) -> list[JSON]:
        """The caller's own requests (with every quote) and those it was asked to quote (with its own quotes)."""
        return api.rfqs_of(key.participant, open_only)

    @router.get("/rfqs/{rfq_id}", response_model=RfqInfo, tags=rfq_tags)
    async def get_rfq(key: TraderKey, rfq_id: Id) -> JSON:
        return await api.rfq(key.participant, rfq_id)

    @router.delete("/rfqs/{rfq_id}", response_model=RfqInfo, tags=rfq_tags)
    async def cancel_rfq(key: TraderKey, rfq_id: Id) -> JSON:
        """The requester closes the request; every live quote's held funds are released."""
        return await api.cancel(key.participant, rfq_id)

    @router.post("/rfqs/{rfq_id}/quotes", response_model=QuoteInfo, tags=rfq_tags)
    async def quote_rfq(key: TraderKey, rfq_id: Id, body: QuoteRequest) -> JSON:
        """A firm quote, private to the requester. The responder's cash (it buys) or notes (it sells) are
        reserved while the quote lives; a new quote replaces the responder's previous one."""
        return await api.quote(key.participant, rfq_id, body)

    @router.delete("/rfqs/{rfq_id}/quotes/{quote_id}", response_model=QuoteInfo, tags=rfq_tags)
    async def cancel_quote(key: TraderKey, rfq_id: Id, quote_id: Id) -> JSON:
        return await api.cancel_quote(key.participant, rfq_id, quote_id)

    @router.post("/rfqs/{rfq_id}/accept", response_model=RfqInfo, tags=rfq_tags)
    async def accept_quote(key: TraderKey, rfq_id: Id, body: AcceptRequest) -> JSON:
        """Trade one live quote: both sides are checked again and the trade is journaled and settled by DvP
        like any other (origin ``rfq``); the answer carries its ``trade_id``."""
        return await api.accept(key.participant, rfq_id, body.quote_id)

    @router.post("/blocks", response_model=BlockInfo, tags=block_tags)
    async def submit_block(key: TraderKey, body: BlockRequest) -> JSON:
        """One side of a negotiated block trade. The first side opens it (``pending``, funds held); the
        counterparty confirms with the mirror side (same block id, symbol, price and quantity, opposite side)
        within the listing's ``block_confirm_s``, and the block prints off-book (``matched``, origin ``block``)."""
        return await api.submit_block(key.participant, body)

    @router.get("/blocks", response_model=list[BlockInfo], tags=block_tags)
    async def list_blocks(key: TraderKey) -> list[JSON]:
        return api.blocks_of(key.participant)

    @router.post("/blocks/cancel", response_model=BlockInfo, tags=block_tags)
    async def cancel_block(key: TraderKey, body: BlockCancelRequest) -> JSON:
        """Either party withdraws a pending block; the held funds are released."""
        return await api.cancel_block(key.participant, body)

    @router.get("/operator/rfqs", response_model=list[RfqInfo], tags=["operator"])
    async def operator_rfqs(key: OperatorKey, limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[JSON]:
        """Every request for quotes, newest first, with the responders asked and every quote."""
        return api.all_rfqs(limit)

    @router.get("/operator/blocks", response_model=list[BlockInfo], tags=["operator"])
    async def operator_blocks(key: OperatorKey, limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[JSON]:
        return api.all_blocks(limit)

    @router.post("/operator/rfqs/{rfq_id}/cancel", response_model=RfqInfo, tags=["operator"])
    async def operator_cancel_rfq(key: OperatorKey, rfq_id: Id) -> JSON:
        """Close a live request (audited); every quote's held funds are released."""
        return await api.operator_cancel_rfq(key.participant, rfq_id)

    @router.post("/operator/blocks/cancel", response_model=BlockInfo, tags=["operator"])
    async def operator_cancel_block(key: OperatorKey, body: OperatorBlockCancelRequest) -> JSON:
        """Cancel a pending block (audited); its held funds are released."""
        return await api.operator_cancel_block(key.participant, body)

    if console_auth is None:
        return router
    console = APIRouter(prefix="/console/api", include_in_schema=False)

    session = console_auth.operator_of

    @console.get("/rfqs")
    async def console_rfqs(operator: str = Depends(session)) -> list[JSON]:
        return api.all_rfqs(200)

    @console.get("/blocks")
    async def console_blocks(operator: str = Depends(session)) -> list[JSON]:
        return api.all_blocks(200)

    outer = APIRouter()
    outer.include_router(router)
    outer.include_router(console)
    return outer


def attach_offbook(app: FastAPI, api: OffBookApi) -> Callable[[], None]:
    """Connect the app's hub and websocket sessions to the desks: their notices go to the private
    ``rfq`` / ``blocks`` channels, and the sessions answer ``WS_OPS``. Returns the detach function."""
    hub = app.state.gateway.hub
    app.state.offbook = api

    def push(notice: OffBookNotice) -> None:
        listing = api.listing(notice.rfq.symbol if notice.rfq is not None else
                              notice.block.symbol if notice.block is not None else "")
        hub.publish_private(notice.participant, notice.channel, notice_json(notice, listing))

    stops = [api.rfqs.subscribe(push), api.blocks.subscribe(push)]

    def detach() -> None:
        for stop in stops:
            stop()
    return detach


def ws_command(app: Any, participant: str, op: str, body: dict[str, Any],
               answer: Callable[[Any], None], fail: Callable[[ApiError], None]) -> asyncio.Task[None]:
    """Run one websocket op of a logged-in trader session (``gateway.ws``'s hook)."""
    api: OffBookApi | None = getattr(app.state, "offbook", None)

    async def run() -> None:
        try:
            if api is None:
                raise ApiError("UNKNOWN_OP", f"op {op!r} is not served by this venue")
            answer(await api.ws_op(participant, op, body))
        except ApiError as err:
            fail(err)
        except ValidationError as err:
            fail(from_validation_errors(err.errors()))
    return asyncio.get_running_loop().create_task(run())
