"""Trader websocket sessions (``/v1/ws``): order entry, market data and private channels on the
gateway's framing (``gateway.framing``: welcome, login, heartbeat, replies, close codes).

* ``login``: ``key_id``, ``ts`` (ms), ``signature`` over ``login_payload(ts, nonce)``, optional
  ``cancel_on_disconnect``; a session that ends (heartbeat timeout included) cancels its orders
  when cancel-on-disconnect was asked for;
* ``new_order`` / ``amend`` / ``cancel`` / ``mass_cancel`` with the REST bodies' fields;
  orders carry this session's id, so cancel-on-disconnect cancels exactly them;
* ``subscribe`` / ``unsubscribe``: ``channel`` in book, trades (both need ``symbol``), status,
  orders, fills, settlements; beyond ``ws_subscribe_per_s`` (burst ``ws_subscribe_burst``) per
  connection they get SUBSCRIBE_RATE_LIMITED (a book subscribe queues a full-depth snapshot);
* market-maker tools (``gateway.mm_routes``): ``mass_quote`` (an order command), ``cancel_after``,
  ``set_mmp``, ``get_mmp``, ``reset_mmp``; MMP events on the private ``mmp`` channel.
* requests for quotes and block trades (``gateway.offbook_routes.WS_OPS``): ``rfq_request``,
  ``rfq_quote``, ``rfq_accept``, ... with the REST bodies; changes on the private ``rfq`` and
  ``blocks`` channels.

Order commands enter the venue through the gateway's fair admission (``gateway.fair``): once
``venue_in_flight`` commands of all sessions are inside the venue, sessions wait in their own FIFO
queues and freed slots are handed out round-robin, so one session pipelining hundreds of orders
does not put them all in front of another session's single order.

Batching (the hot path): the ``new_order`` messages of one read pass (every frame the server had
buffered for the session, ``gateway.framing``) are validated as they are read and handed to the
venue together when the pass ends or another order command comes (``OrderService.new_orders``:
one ``submit_batch``, consecutive seqs, one journal group), at most ``BATCH_MAX`` per batch; one
task per batch, not per order (fair admission counts a batch's orders: ``gateway.fair``). Any
other order command first flushes the collected batch, so commands reach the venue in the order
the client sent them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, Literal

from pydantic import BaseModel
from starlette.websockets import WebSocket

from engine import CancelReason
from gateway import metrics, mm_routes, offbook_routes
from gateway.errors import ApiError
from gateway.framing import FramedSession, ReqId
from gateway.mm import MassQuoteRequest
from gateway.orders import Reply
from gateway.ports import ApiKey, Role
from gateway.ratelimit import TokenBucket
from gateway.schemas import AmendRequest, CancelRequest, MassCancelRequest, NewOrderRequest, Strict, Symbol
from gateway.state import GatewayState, gateway_state
from gateway.streams import PRIVATE_CHANNELS

log = logging.getLogger(__name__)


class LoginMessage(Strict):
    op: Literal["login"]
    req_id: str | int | None = None
    key_id: str
    ts: int
    signature: str
    cancel_on_disconnect: bool = False


class SubscribeMessage(Strict):
    op: Literal["subscribe", "unsubscribe"]
    req_id: str | int | None = None
    channel: str
    symbol: Symbol | None = None


BATCH_MAX = 64  # new orders per venue batch

_ORDER_MODELS: dict[str, type[BaseModel]] = {
    "new_order": NewOrderRequest,
    "amend": AmendRequest,
    "cancel": CancelRequest,
    "mass_cancel": MassCancelRequest,
    "mass_quote": MassQuoteRequest,
}


class Session(FramedSession):
    kind = "trader"

    def __init__(self, ws: WebSocket, gw: GatewayState) -> None:
        super().__init__(ws, gw.config, gw.limiter)
        self.gw = gw
        self.key: ApiKey | None = None
        self.cancel_on_disconnect = False
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._batch: list[tuple[ReqId, NewOrderRequest]] = []
        self._subscribe_bucket = TokenBucket(rate_per_s=gw.config.ws_subscribe_per_s,
                                             burst=gw.config.ws_subscribe_burst)

    def _reply(self, op: str, rid: ReqId, reply: Reply) -> None:
        if reply.ok:
            self.ok(op, rid, reply.body)
        else:
            self.reply({"op": op, "req_id": rid, "ok": False, "error": reply.body["error"]})

    async def _closing(self) -> None:
        self._flush()  # orders already read reach the venue
        self.gw.sessions.discard(self)
        self.gw.hub.drop(self)
        if self.key is None or not self.cancel_on_disconnect:
            return
        if self._tasks:  # commands already read reach the venue before the mass cancel
            await asyncio.wait(set(self._tasks), timeout=10)
        await self.gw.orders.mass_cancel(self.key.participant, MassCancelRequest(), session=self.id,
                                         reason=CancelReason.DISCONNECT)

    def _command(self, op: str, msg: dict[str, Any], rid: ReqId) -> None:
        if op in ("subscribe", "unsubscribe"):
            self._subscribe(SubscribeMessage.model_validate(msg), rid)
        elif op in mm_routes.SYNC_OPS:
            assert self.key is not None
            if self.key.role is not Role.TRADER:
                raise ApiError("FORBIDDEN", "market-maker tools are for trading participants")
            body = {k: v for k, v in msg.items() if k not in ("op", "req_id")}
            self.ok(op, rid, mm_routes.websocket_op(self.gw.mm, self.key.participant, op, body))
        elif op == "new_order":
            msg.pop("op")
            msg.pop("req_id", None)
            self._collect(NewOrderRequest.model_validate(msg), rid)
        elif op in offbook_routes.WS_OPS:  # requests for quotes and block trades
            assert self.key is not None
            if self.key.role is not Role.TRADER:
                raise ApiError("FORBIDDEN", "requests for quotes and block trades are for trading participants")
            self._flush()  # the batch read before this command goes first
            body = {k: v for k, v in msg.items() if k not in ("op", "req_id")}
            task = offbook_routes.ws_command(self.ws.app, self.key.participant, op, body,
                                             lambda result: self.ok(op, rid, result),
                                             lambda err: self.fail(op, rid, err))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif op in _ORDER_MODELS:
            self._flush()  # the batch read before this command goes first
            body = {k: v for k, v in msg.items() if k not in ("op", "req_id")}
            self._order(op, _ORDER_MODELS[op].model_validate(body), rid)
        else:
            super()._command(op, msg, rid)

    def _login(self, msg: dict[str, Any], rid: ReqId) -> None:
        login = LoginMessage.model_validate(msg)
        key = self.gw.auth.verify_login(login.key_id, login.ts, login.signature, self.nonce)
        self.key = key
        self.gw.sessions.add(self)  # found by key when the key is revoked (gateway.sessions)
        self.cancel_on_disconnect = login.cancel_on_disconnect and key.role is Role.TRADER
        self.logged_in(key.key_id)
        self.ok("login", rid, {"participant": key.participant, "role": str(key.role), "session_id": self.id,
                               "cancel_on_disconnect": self.cancel_on_disconnect})

    def _subscribe(self, msg: SubscribeMessage, rid: ReqId) -> None:
        assert self.key is not None
        retry_after = self._subscribe_bucket.take()
        if retry_after is not None:
            metrics.abuse("subscribe_rate_limited")
            raise ApiError("SUBSCRIBE_RATE_LIMITED",
                           f"at most {self.gw.config.ws_subscribe_per_s:g} subscribe/unsubscribe per second "
                           f"per connection; retry in {retry_after:.3f} s", retry_after=round(retry_after, 3))
        hub = self.gw.hub
        channel = msg.channel
        if channel in ("book", "trades", "reference"):
            if msg.symbol is None:
                raise ApiError("MISSING_FIELD", f"channel {channel!r} needs 'symbol'")
            self.gw.orders.listing(msg.symbol)
        elif channel in PRIVATE_CHANNELS:
            if self.key.role is not Role.TRADER:
                raise ApiError("FORBIDDEN", "private channels are for trading participants")
        elif channel != "status":
            raise ApiError("UNKNOWN_CHANNEL", f"unknown channel {channel[:32]!r}; use book, trades, reference, "
                                              "status, orders, fills, settlements, mmp, rfq or blocks")
        # the reply goes first so the client knows the subscription before its snapshot arrives
        self.ok(msg.op, rid, {"channel": channel, "symbol": msg.symbol})
        if msg.op == "unsubscribe":
            hub.unsubscribe(self, channel, symbol=msg.symbol, participant=self.key.participant)
        elif channel == "book":
            assert msg.symbol is not None
            hub.unsubscribe(self, "book", symbol=msg.symbol)
            hub.subscribe_book(self, msg.symbol)
        elif channel == "trades":
            assert msg.symbol is not None
            hub.subscribe_trades(self, msg.symbol)
        elif channel == "reference":
            assert msg.symbol is not None
            hub.subscribe_reference(self, msg.symbol)
        elif channel == "status":
            hub.subscribe_status(self)
        else:
            hub.subscribe_private(self, self.key.participant, channel)

    def _admit(self) -> None:
        assert self.key is not None
        if self.key.role is not Role.TRADER:
            raise ApiError("FORBIDDEN", "order entry is for trading participants")
        if self._in_flight >= self.gw.config.ws_max_in_flight:
            raise ApiError("TOO_MANY_IN_FLIGHT", f"at most {self.gw.config.ws_max_in_flight} orders may await a reply")

    def _collect(self, req: NewOrderRequest, rid: ReqId) -> None:
        self._admit()
        self._in_flight += 1
        self._batch.append((rid, req))
        if len(self._batch) >= BATCH_MAX:
            self._flush()

    def _flush(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        # Never cancelled (``_closing`` waits for it): ``OrderService.new_orders`` relies on that.
        task = asyncio.get_running_loop().create_task(self._finish_batch(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish_batch(self, batch: list[tuple[ReqId, NewOrderRequest]]) -> None:
        assert self.key is not None
        participant = self.key.participant
        fair = self.guards.fair  # round-robin across sessions; the batch takes a slot per order
        weight = fair.weight_of(len(batch))
        try:
            await fair.acquire(self.id, weight)
        except BaseException:
            self._in_flight -= len(batch)
            raise
        try:
            answers = await self.gw.orders.new_orders(participant, [req for _, req in batch], session=self.id)
        except Exception as exc:
            if not isinstance(exc, ApiError):
                log.exception("websocket new_order batch failed")
            failure = exc if isinstance(exc, ApiError) else ApiError("INTERNAL_ERROR", "internal error")
            answers = [failure] * len(batch)
        finally:
            fair.release(weight)
            self._in_flight -= len(batch)
        for (rid, _), answer in zip(batch, answers, strict=True):
            if isinstance(answer, ApiError):
                self.fail("new_order", rid, answer)
            else:
                self._reply("new_order", rid, answer)

    def _order(self, op: str, msg: BaseModel, rid: ReqId) -> None:
        self._admit()
        assert self.key is not None
        participant = self.key.participant
        orders = self.gw.orders
        coro: Coroutine[Any, Any, Reply]
        if isinstance(msg, AmendRequest):
            coro = orders.amend(participant, msg)
        elif isinstance(msg, CancelRequest):
            coro = orders.cancel(participant, msg)
        elif isinstance(msg, MassQuoteRequest):
            coro = self.gw.mm.mass_quote(participant, msg, session=self.id)
        else:
            assert isinstance(msg, MassCancelRequest)
            coro = orders.mass_cancel(participant, msg)
        self._in_flight += 1
        # Eager start: the coroutine runs to its venue call right now, in arrival order.
        task = asyncio.get_running_loop().create_task(self._finish(op, rid, coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, op: str, rid: ReqId, coro: Coroutine[Any, Any, Reply]) -> None:
        fair = self.guards.fair  # round-robin across sessions once the venue has enough in flight
        try:
            await fair.acquire(self.id)
        except BaseException:
            coro.close()
            self._in_flight -= 1
            raise
        try:
            reply = await coro
            self._reply(op, rid, reply)
        except ApiError as err:
            self.fail(op, rid, err)
        except Exception:
            log.exception("websocket %s failed", op)
            self.fail(op, rid, ApiError("INTERNAL_ERROR", "internal error"))
        finally:
            fair.release()
            self._in_flight -= 1


async def websocket_endpoint(ws: WebSocket) -> None:
    await Session(ws, gateway_state(ws)).run()

