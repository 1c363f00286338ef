"""Async client: signed REST (httpx) and a websocket session (websockets) with a local book."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from venueclient.book import LocalBook
from venueclient.errors import ApiError, BookGapError, TransportError
from venueclient.signing import (
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    WS_PATH,
    login_payload,
    public_key_of,
    sign,
    signing_payload,
)

Number = Decimal | str | int
JSON = dict[str, Any]


def _decimal_text(value: Number, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (Decimal, str, int)):
        raise TypeError(f"{field} must be Decimal, str or int (never float), got {type(value).__name__}")
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def new_client_order_id() -> str:
    return "c" + secrets.token_hex(10)


class _Clock:
    """Strictly increasing millisecond timestamps (the gateway refuses a replayed signature)."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        self._last = max(time.time_ns() // 1_000_000, self._last + 1)
        return self._last


class _Signer(httpx.Auth):
    requires_request_body = True

    def __init__(self, key_id: str, private_key: bytes | str, clock: _Clock) -> None:
        self._key_id = key_id
        self._private_key = private_key
        self._clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        ts = self._clock.next()
        payload = signing_payload(ts, request.method, request.url.raw_path, request.content)
        request.headers[HEADER_KEY] = self._key_id
        request.headers[HEADER_TIMESTAMP] = str(ts)
        request.headers[HEADER_SIGNATURE] = sign(self._private_key, payload)
        yield request


def _order_body(symbol: str, side: str, qty: Number, price: Number | None, *, order_type: str, tif: str,
                expire_ts: int | None, post_only: bool, stp: str | None, client_order_id: str | None,
                signed_order: Mapping[str, str] | None = None) -> JSON:
    body: JSON = {"symbol": symbol, "side": side, "qty": _decimal_text(qty, "qty"), "type": order_type, "tif": tif,
                  "client_order_id": client_order_id or new_client_order_id()}
    if price is not None:
        body["price"] = _decimal_text(price, "price")
    if expire_ts is not None:
        body["expire_ts"] = expire_ts
    if post_only:
        body["post_only"] = True
    if stp is not None:
        body["stp"] = stp
    if signed_order is not None:
        body["signed_order"] = dict(signed_order)
    return body


def _error_from(data: Any, status: int, retry_after: str | None = None) -> ApiError:
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        return ApiError(f"HTTP_{status}", str(data)[:200], status=status)
    ra = err.get("retry_after")
    if ra is None and retry_after is not None:
        with contextlib.suppress(ValueError):
            ra = float(retry_after)
    return ApiError(str(err.get("code")), str(err.get("message")), status=status,
                    retry_after=float(ra) if ra is not None else None)


class VenueClient:
    """``VenueClient(base_url, key_id, private_key)``; use as ``async with`` or call ``aclose()``.

    REST calls raise ``ApiError`` for any refusal (engine, eligibility or input); ``connect()``
    opens a logged-in websocket ``VenueStream`` for low-latency order entry and streams."""

    def __init__(self, base_url: str, key_id: str, private_key: bytes | str, *, timeout: float = 10.0) -> None:
        public_key_of(private_key)  # validates the key now (KeyFormatError)
        self.base_url = base_url.rstrip("/")
        self.key_id = key_id
        self._private_key = private_key
        self._clock = _Clock()
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout,
                                       auth=_Signer(key_id, private_key, self._clock))

    async def __aenter__(self) -> VenueClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------ REST

    async def request(self, method: str, path: str, *, body: JSON | None = None,
                      params: dict[str, Any] | None = None) -> Any:
        data, _ = await self._send(method, path, body=body, params=params)
        return data

    async def _send(self, method: str, path: str, *, body: JSON | None = None,
                    params: dict[str, Any] | None = None) -> tuple[Any, httpx.Headers]:
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {"content-type": "application/json"} if content is not None else None
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            resp = await self._http.request(method, path, content=content, params=clean or None, headers=headers)
        except httpx.HTTPError as exc:
            raise TransportError(f"{method} {path}: {exc}") from exc
        try:
            data = resp.json()
        except ValueError:
            data = resp.text
        if resp.status_code >= 400:
            raise _error_from(data, resp.status_code, resp.headers.get("retry-after"))
        return data, resp.headers

    async def _page(self, path: str, params: dict[str, Any]) -> tuple[list[JSON], str | None]:
        data, headers = await self._send("GET", path, params=params)
        return data, headers.get("next-cursor")

    async def instruments(self) -> list[JSON]:
        result: list[JSON] = await self.request("GET", "/v1/instruments")
        return result

    async def book(self, symbol: str, depth: int | None = None) -> JSON:
        result: JSON = await self.request("GET", f"/v1/instruments/{symbol}/book", params={"depth": depth})
        return result

    async def trades(self, symbol: str, limit: int = 100) -> list[JSON]:
        result: list[JSON] = await self.request("GET", f"/v1/instruments/{symbol}/trades", params={"limit": limit})
        return result

    async def my_orders(self, symbol: str | None = None) -> list[JSON]:
        result: list[JSON] = await self.request("GET", "/v1/orders", params={"symbol": symbol})
        return result

    async def my_fills(self, symbol: str | None = None, limit: int = 100) -> list[JSON]:
        result: list[JSON] = await self.request("GET", "/v1/fills", params={"symbol": symbol, "limit": limit})
        return result

    async def fills_page(self, symbol: str | None = None, *, since: int | None = None, until: int | None = None,
                         cursor: str | None = None, limit: int = 100) -> tuple[list[JSON], str | None]:
        """One page of the caller's whole fill history, newest first, and the cursor of the next
        (older) page (None: this was the last)."""
        return await self._page("/v1/fills", {"symbol": symbol, "since": since, "until": until, "cursor": cursor,
                                              "limit": limit})

    async def trades_page(self, symbol: str, *, since: int | None = None, until: int | None = None,
                          cursor: str | None = None, limit: int = 100) -> tuple[list[JSON], str | None]:
        """One page of an instrument's public trade history, newest first, and the next cursor."""
        return await self._page(f"/v1/instruments/{symbol}/trades", {"since": since, "until": until,
                                                                      "cursor": cursor, "limit": limit})

    async def place(self, symbol: str, side: str, qty: Number, price: Number | None = None, *,
                    order_type: str = "limit", tif: str = "gtc", expire_ts: int | None = None,
                    post_only: bool = False, stp: str | None = None, client_order_id: str | None = None,
                    signed_order: Mapping[str, str] | None = None) -> JSON:
        """Places an order; a client order id is generated when absent, so a retry is idempotent.
        ``signed_order``: the wallet's EIP-712 order for it (``venueclient.signed_orders.sign_for``)."""
        body = _order_body(symbol, side, qty, price, order_type=order_type, tif=tif, expire_ts=expire_ts,
                           post_only=post_only, stp=stp, client_order_id=client_order_id, signed_order=signed_order)
        result: JSON = await self.request("POST", "/v1/orders", body=body)
        return result

    async def amend(self, order_id: int | None = None, *, client_order_id: str | None = None,
                    price: Number | None = None, qty: Number | None = None) -> JSON:
        result: JSON = await self.request("POST", "/v1/orders/amend",
                                          body=_amend_body(order_id, client_order_id, price, qty))
        return result

    async def cancel(self, order_id: int | None = None, *, client_order_id: str | None = None) -> JSON:
        result: JSON = await self.request("POST", "/v1/orders/cancel", body=_ref(order_id, client_order_id))
        return result

    async def mass_cancel(self, symbol: str | None = None, side: str | None = None) -> list[int]:
        body = {k: v for k, v in (("symbol", symbol), ("side", side)) if v is not None}
        result: JSON = await self.request("POST", "/v1/orders/mass-cancel", body=body)
        return list(result["cancelled"])

    async def mass_quote(self, symbol: str, levels: Sequence[Quote], *, quote_id: str | None = None,
                         post_only: bool = True) -> JSON:
        """Replaces all the caller's open orders on ``symbol`` by ``levels`` (side, price, qty) in one
        step; the reply has ``cancelled`` (order ids) and one result per level in ``quotes``."""
        result: JSON = await self.request("POST", "/v1/orders/mass-quote",
                                          body=_quote_body(symbol, levels, quote_id, post_only))
        return result

    async def cancel_after(self, timeout_s: int) -> JSON:
        """Dead-man switch: cancel all orders in ``timeout_s`` seconds unless called again; 0 disarms."""
        result: JSON = await self.request("POST", "/v1/orders/cancel-after", body={"timeout_s": timeout_s})
        return result

    async def set_mmp(self, symbol: str, *, interval_ms: int, freeze_ms: int, qty_limit: Number | None = None,
                      fills_limit: int | None = None) -> JSON:
        result: JSON = await self.request("POST", "/v1/mmp", body=_mmp_body(symbol, interval_ms, freeze_ms,
                                                                            qty_limit, fills_limit))
        return result

    async def mmp(self, symbol: str) -> JSON:
        result: JSON = await self.request("GET", f"/v1/mmp/{symbol}")
        return result

    async def reset_mmp(self, symbol: str) -> JSON:
        result: JSON = await self.request("POST", "/v1/mmp/reset", body={"symbol": symbol})
        return result

    # ------------------------------------------------------------ requests for quotes, block trades

    async def request_quotes(self, symbol: str, side: str, qty: Number, *, ttl_s: float,
                             min_qty: Number | None = None) -> JSON:
        """Ask the participants eligible for the other side for firm quotes; returns the RFQ (``rfq_id``)."""
        body: JSON = {"symbol": symbol, "side": side, "qty": _decimal_text(qty, "qty"), "ttl_s": ttl_s}
        if min_qty is not None:
            body["min_qty"] = _decimal_text(min_qty, "min_qty")
        result: JSON = await self.request("POST", "/v1/rfqs", body=body)
        return result

    async def rfqs(self, *, open_only: bool = False) -> list[JSON]:
        """Own requests (with every quote) and those this participant is asked to quote."""
        result: list[JSON] = await self.request("GET", "/v1/rfqs", params={"open_only": "true"} if open_only else None)
        return result

    async def rfq(self, rfq_id: int) -> JSON:
        result: JSON = await self.request("GET", f"/v1/rfqs/{rfq_id}")
        return result

    async def quote_rfq(self, rfq_id: int, price: Number, qty: Number, *, ttl_s: float | None = None) -> JSON:
        """A firm quote (funds held while it lives); replaces this participant's previous quote."""
        body: JSON = {"price": _decimal_text(price, "price"), "qty": _decimal_text(qty, "qty")}
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        result: JSON = await self.request("POST", f"/v1/rfqs/{rfq_id}/quotes", body=body)
        return result

    async def cancel_quote(self, rfq_id: int, quote_id: int) -> JSON:
        result: JSON = await self.request("DELETE", f"/v1/rfqs/{rfq_id}/quotes/{quote_id}")
        return result

    async def accept_quote(self, rfq_id: int, quote_id: int) -> JSON:
        """Trade the quote; the answer is the filled RFQ with its ``trade_id``."""
        result: JSON = await self.request("POST", f"/v1/rfqs/{rfq_id}/accept", body={"quote_id": quote_id})
        return result

    async def cancel_rfq(self, rfq_id: int) -> JSON:
        result: JSON = await self.request("DELETE", f"/v1/rfqs/{rfq_id}")
        return result

    async def submit_block(self, block_id: str, symbol: str, side: str, price: Number, qty: Number, *,
                           counterparty: str) -> JSON:
        """One side of a negotiated block trade; it prints when the counterparty submits the mirror side."""
        result: JSON = await self.request("POST", "/v1/blocks", body={
            "block_id": block_id, "symbol": symbol, "side": side, "price": _decimal_text(price, "price"),
            "qty": _decimal_text(qty, "qty"), "counterparty": counterparty})
        return result

    async def blocks(self) -> list[JSON]:
        result: list[JSON] = await self.request("GET", "/v1/blocks")
        return result

    async def cancel_block(self, block_id: str, *, counterparty: str) -> JSON:
        result: JSON = await self.request("POST", "/v1/blocks/cancel",
                                          body={"block_id": block_id, "counterparty": counterparty})
        return result

    async def set_status(self, symbol: str, status: str) -> JSON:
        """Operator keys only: ``open`` (resume), ``halted`` or ``closed``."""
        result: JSON = await self.request("POST", f"/v1/operator/instruments/{symbol}/status",
                                          body={"status": status})
        return result

    # ------------------------------------------------------------ websocket

    async def connect(self, *, cancel_on_disconnect: bool = False, heartbeat_interval: float | None = None,
                      inbound_filter: Callable[[JSON], bool] | None = None,
                      compression: bool = False) -> VenueStream:
        """A logged-in websocket. ``heartbeat_interval`` defaults to a third of the server's
        timeout. ``inbound_filter`` (diagnostics/tests) sees each parsed message and drops it
        by returning False. ``compression`` (permessage-deflate) trades CPU and latency for
        bandwidth: off by default for order entry."""
        url = "ws" + self.base_url[4:] + WS_PATH if self.base_url.startswith("http") else self.base_url + WS_PATH
        try:
            conn = await websockets.connect(url, max_size=2**22,
                                            compression="deflate" if compression else None)
        except (OSError, websockets.WebSocketException) as exc:
            raise TransportError(f"websocket connect to {url}: {exc}") from exc
        stream = VenueStream(conn, inbound_filter=inbound_filter)
        try:
            await stream._login(self.key_id, self._private_key, self._clock.next(), cancel_on_disconnect,
                                heartbeat_interval)
        except BaseException:
            await stream.close()
            raise
        return stream


Quote = tuple[str, Number, Number]  # (side, price, qty)


def _quote_body(symbol: str, levels: Sequence[Quote], quote_id: str | None, post_only: bool) -> JSON:
    body: JSON = {"symbol": symbol, "post_only": post_only,
                  "levels": [{"side": side, "price": _decimal_text(price, "price"), "qty": _decimal_text(qty, "qty")}
                             for side, price, qty in levels]}
    if quote_id is not None:
        body["quote_id"] = quote_id
    return body


def _mmp_body(symbol: str, interval_ms: int, freeze_ms: int, qty_limit: Number | None,
              fills_limit: int | None) -> JSON:
    body: JSON = {"symbol": symbol, "interval_ms": interval_ms, "freeze_ms": freeze_ms}
    if qty_limit is not None:
        body["qty_limit"] = _decimal_text(qty_limit, "qty_limit")
    if fills_limit is not None:
        body["fills_limit"] = fills_limit
    return body


def _ref(order_id: int | None, client_order_id: str | None) -> JSON:
    body: JSON = {}
    if order_id is not None:
        body["order_id"] = order_id
    if client_order_id is not None:
        body["client_order_id"] = client_order_id
    return body


def _amend_body(order_id: int | None, client_order_id: str | None, price: Number | None,
                qty: Number | None) -> JSON:
    body = _ref(order_id, client_order_id)
    if price is not None:
        body["price"] = _decimal_text(price, "price")
    if qty is not None:
        body["qty"] = _decimal_text(qty, "qty")
    return body


class VenueStream:
    """One websocket session: requests with replies, local books, and private/public streams."""

    def __init__(self, conn: ClientConnection, *, inbound_filter: Callable[[JSON], bool] | None = None) -> None:
        self._conn = conn
        self._filter = inbound_filter
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[JSON]] = {}
        self._books: dict[str, LocalBook] = {}
        self._book_waiters: dict[str, asyncio.Event] = {}
        self._events: asyncio.Queue[JSON] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self.session_id = ""
        self.participant = ""
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""

    async def _login(self, key_id: str, private_key: bytes | str, ts: int, cancel_on_disconnect: bool,
                     heartbeat_interval: float | None) -> None:
        try:
            welcome = json.loads(await self._conn.recv())
        except websockets.WebSocketException as exc:
            raise TransportError(f"no welcome from the venue: {exc}") from exc
        self.session_id = str(welcome["session_id"])
        self._reader = asyncio.create_task(self._read())
        result = await self.request("login", key_id=key_id, ts=ts,
                                    signature=sign(private_key, login_payload(ts, str(welcome["nonce"]))),
                                    cancel_on_disconnect=cancel_on_disconnect)
        self.participant = str(result["participant"])
        interval = heartbeat_interval or float(welcome["heartbeat_timeout_s"]) / 3
        if interval > 0:
            self._heartbeat = asyncio.create_task(self._beat(interval))

    async def _beat(self, interval: float) -> None:
        with contextlib.suppress(websockets.WebSocketException):
            while True:
                await asyncio.sleep(interval)
                await self._conn.send(json.dumps({"op": "heartbeat"}))

    def stop_heartbeats(self) -> None:
        """Stops sending heartbeats (to let the server's timeout fire, e.g. in tests)."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()

    async def send_raw(self, text: str) -> None:
        """Sends a frame as is (diagnostics and protocol tests)."""
        try:
            await self._conn.send(text)
        except websockets.WebSocketException as exc:
            raise TransportError(str(exc)) from exc

    async def _read(self) -> None:
        try:
            async for frame in self._conn:
                msg = json.loads(frame)
                if self._filter is not None and not self._filter(msg):
                    continue
                self._on_message(msg)
        except websockets.WebSocketException:
            pass
        finally:
            self.close_code = self._conn.close_code
            self.close_reason = self._conn.close_reason or ""
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(TransportError(f"websocket closed ({self.close_code} {self.close_reason})"))
            self._pending.clear()
            self.closed.set()
            for event in self._book_waiters.values():
                event.set()

    def _on_message(self, msg: JSON) -> None:
        channel = msg.get("channel")
        if channel == "book":
            self._on_book(msg)
            return
        if channel is not None:
            self._events.put_nowait(msg)
            return
        rid = msg.get("req_id")
        fut = self._pending.pop(rid, None) if isinstance(rid, int) else None
        if fut is None or fut.done():
            if msg.get("ok") is False:
                self._events.put_nowait({"channel": "error", **msg})
            return
        if msg.get("ok"):
            fut.set_result(msg.get("result") or {})
        else:
            fut.set_exception(_error_from(msg, 400))

    def _on_book(self, msg: JSON) -> None:
        book = self._books.get(str(msg.get("symbol")))
        if book is None:
            return
        if msg.get("type") == "snapshot":
            book.apply_snapshot(msg)
            self._book_waiters[book.symbol].set()
            return
        if msg.get("type") == "conflated":  # we read too slowly: the latest snapshot follows
            book.conflate(msg)
            self._book_waiters[book.symbol].clear()
            return
        try:
            book.apply_delta(msg)
        except BookGapError:
            self._book_waiters[book.symbol].clear()
            self._send_nowait("subscribe", channel="book", symbol=book.symbol)  # fresh snapshot

    def _send_nowait(self, op: str, **fields: Any) -> None:
        rid = next(self._ids)
        fut: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)
        self._pending[rid] = fut
        task = asyncio.create_task(self._conn.send(json.dumps({"op": op, "req_id": rid, **fields})))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def request(self, op: str, **fields: Any) -> JSON:
        """Sends one request and waits for its reply; ``ApiError`` when the venue refuses it."""
        if self.closed.is_set():
            raise TransportError(f"websocket closed ({self.close_code} {self.close_reason})")
        rid = next(self._ids)
        fut: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            await self._conn.send(json.dumps({"op": op, "req_id": rid, **fields}, separators=(",", ":")))
        except websockets.WebSocketException as exc:
            self._pending.pop(rid, None)
            raise TransportError(str(exc)) from exc
        return await fut

    # ------------------------------------------------------------ orders

    async def place(self, symbol: str, side: str, qty: Number, price: Number | None = None, *,
                    order_type: str = "limit", tif: str = "gtc", expire_ts: int | None = None,
                    post_only: bool = False, stp: str | None = None, client_order_id: str | None = None,
                    signed_order: Mapping[str, str] | None = None) -> JSON:
        body = _order_body(symbol, side, qty, price, order_type=order_type, tif=tif, expire_ts=expire_ts,
                           post_only=post_only, stp=stp, client_order_id=client_order_id, signed_order=signed_order)
        return await self.request("new_order", **body)

    async def amend(self, order_id: int | None = None, *, client_order_id: str | None = None,
                    price: Number | None = None, qty: Number | None = None) -> JSON:
        return await self.request("amend", **_amend_body(order_id, client_order_id, price, qty))

    async def cancel(self, order_id: int | None = None, *, client_order_id: str | None = None) -> JSON:
        return await self.request("cancel", **_ref(order_id, client_order_id))

    async def mass_cancel(self, symbol: str | None = None, side: str | None = None) -> list[int]:
        body = {k: v for k, v in (("symbol", symbol), ("side", side)) if v is not None}
        return list((await self.request("mass_cancel", **body))["cancelled"])

    async def mass_quote(self, symbol: str, levels: Sequence[Quote], *, quote_id: str | None = None,
                         post_only: bool = True) -> JSON:
        return await self.request("mass_quote", **_quote_body(symbol, levels, quote_id, post_only))

    async def cancel_after(self, timeout_s: int) -> JSON:
        return await self.request("cancel_after", timeout_s=timeout_s)

    async def set_mmp(self, symbol: str, *, interval_ms: int, freeze_ms: int, qty_limit: Number | None = None,
                      fills_limit: int | None = None) -> JSON:
        return await self.request("set_mmp", **_mmp_body(symbol, interval_ms, freeze_ms, qty_limit, fills_limit))

    async def reset_mmp(self, symbol: str) -> JSON:
        return await self.request("reset_mmp", symbol=symbol)

    # requests for quotes and block trades (changes arrive on the ``rfq`` / ``blocks`` channels)

    async def request_quotes(self, symbol: str, side: str, qty: Number, *, ttl_s: float,
                             min_qty: Number | None = None) -> JSON:
        fields: JSON = {"symbol": symbol, "side": side, "qty": _decimal_text(qty, "qty"), "ttl_s": ttl_s}
        if min_qty is not None:
            fields["min_qty"] = _decimal_text(min_qty, "min_qty")
        return await self.request("rfq_request", **fields)

    async def quote_rfq(self, rfq_id: int, price: Number, qty: Number, *, ttl_s: float | None = None) -> JSON:
        fields: JSON = {"rfq_id": rfq_id, "price": _decimal_text(price, "price"), "qty": _decimal_text(qty, "qty")}
        if ttl_s is not None:
            fields["ttl_s"] = ttl_s
        return await self.request("rfq_quote", **fields)

    async def accept_quote(self, rfq_id: int, quote_id: int) -> JSON:
        return await self.request("rfq_accept", rfq_id=rfq_id, quote_id=quote_id)

    async def submit_block(self, block_id: str, symbol: str, side: str, price: Number, qty: Number, *,
                           counterparty: str) -> JSON:
        return await self.request("block_submit", block_id=block_id, symbol=symbol, side=side,
                                  price=_decimal_text(price, "price"), qty=_decimal_text(qty, "qty"),
                                  counterparty=counterparty)

    # ------------------------------------------------------------ streams

    async def subscribe(self, *channels: str, symbol: str | None = None) -> None:
        """Subscribes to channels whose messages then come out of ``stream()``."""
        for channel in channels:
            fields: JSON = {"channel": channel}
            if symbol is not None:
                fields["symbol"] = symbol
            await self.request("subscribe", **fields)

    async def local_book(self, symbol: str, *, timeout: float = 10.0) -> LocalBook:
        """A ``LocalBook`` kept in sync from the ``book`` channel (resyncs itself after a gap)."""
        book = self._books.get(symbol)
        if book is None:
            book = LocalBook(symbol)
            self._books[symbol] = book
            self._book_waiters[symbol] = asyncio.Event()
            await self.request("subscribe", channel="book", symbol=symbol)
        await self.wait_synced(symbol, timeout=timeout)
        return book

    async def wait_synced(self, symbol: str, *, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self._book_waiters[symbol].wait(), timeout)
        if self.closed.is_set():
            raise TransportError("websocket closed")

    async def stream(self) -> AsyncIterator[JSON]:
        """Messages of subscribed non-book channels (and unsolicited errors), in arrival order."""
        while True:
            getter = asyncio.ensure_future(self._events.get())
            closer = asyncio.ensure_future(self.closed.wait())
            done, _ = await asyncio.wait({getter, closer}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                closer.cancel()
                yield getter.result()
                continue
            getter.cancel()
            while not self._events.empty():
                yield self._events.get_nowait()
            return

    def received(self) -> list[JSON]:
        """The messages of subscribed non-book channels that arrived and were not read yet, without
        waiting (a bot catches up with its fills before acting)."""
        out: list[JSON] = []
        while not self._events.empty():
            out.append(self._events.get_nowait())
        return out

    async def next_event(self, *, timeout: float = 5.0,
                         where: Callable[[JSON], bool] | None = None) -> JSON:
        """The next streamed message (matching ``where``), or ``TimeoutError``."""
        async def find() -> JSON:
            async for msg in self.stream():
                if where is None or where(msg):
                    return msg
            raise TransportError("websocket closed")
        return await asyncio.wait_for(find(), timeout)

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        with contextlib.suppress(websockets.WebSocketException, OSError):
            await self._conn.close()
        if self._reader is not None:
            with contextlib.suppress(BaseException):
                await self._reader
        self.closed.set()

    async def __aenter__(self) -> VenueStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
