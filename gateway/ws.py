"""Websocket sessions: login once, heartbeats, order entry, market data and private channels.

Protocol (JSON text frames, each request has ``op`` and an optional ``req_id`` echoed back):

* server -> ``{"op": "welcome", "session_id", "nonce", "heartbeat_timeout_s"}`` on connect;
* ``login``: ``key_id``, ``ts`` (ms), ``signature`` over ``login_payload(ts, nonce)``, optional
  ``cancel_on_disconnect``; must come first and within ``login_timeout_s``;
* ``heartbeat``; any frame counts as liveness, silence longer than ``heartbeat_timeout_s`` closes
  the session (code 4008) after cancelling its orders if cancel-on-disconnect was asked for;
* ``new_order`` / ``amend`` / ``cancel`` / ``mass_cancel`` with the REST bodies' fields;
  orders carry this session's id, so cancel-on-disconnect cancels exactly them;
* ``subscribe`` / ``unsubscribe``: ``channel`` in book, trades (both need ``symbol``), status,
  orders, fills, settlements.

Replies: ``{"op", "req_id", "ok": true, "result": {...}}`` or ``{"op", "req_id", "ok": false,
"error": {"code", "message"}}``. A bad frame gets an error reply; it never ends the session.
After login every reply also carries ``remaining``: the messages this connection may still send
now (the smaller of its API key's and its connection's token buckets).

Abuse limits (``GatewayConfig``) and close codes:

* 4001 ``LOGIN_TIMEOUT``: no login within ``login_timeout_s`` of connecting (heartbeats do not
  extend it); 4001 ``TOO_MANY_FRAMES_BEFORE_LOGIN``: more than ``ws_pre_login_frames`` frames of
  any kind (heartbeats, oversized or binary frames included) before login;
* 1009 (protocol level, by the server): a message above ``max_ws_message_bytes`` is refused from
  its frame header, before its payload is read (``gateway.server.uvicorn_options``);
* 4008 ``HEARTBEAT_TIMEOUT``;
* 4009 ``SLOW_CONSUMER``: the session's outbound queue passed ``ws_queue_max_bytes`` bytes (or
  ``ws_queue_max`` messages) because the client does not read;
* ``subscribe``/``unsubscribe`` beyond ``ws_subscribe_per_s`` get SUBSCRIBE_RATE_LIMITED; any
  message beyond the key's or the connection's bucket gets RATE_LIMITED with ``retry_after``;
* 4029 ``RATE_LIMIT_EXCEEDED``: the client kept sending while refused (more RATE_LIMITED replies
  than the connection's burst, refilled at its rate).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError
from starlette.websockets import WebSocket, WebSocketState

from engine import CancelReason
from gateway import metrics
from gateway.errors import ApiError
from gateway.guards import client_address, guards_of
from gateway.orders import Reply
from gateway.ports import ApiKey, Role
from gateway.ratelimit import TokenBucket
from gateway.schemas import AmendRequest, CancelRequest, MassCancelRequest, NewOrderRequest, Strict, Symbol
from gateway.streams import PRIVATE_CHANNELS, dumps
from gateway.validation import from_validation_errors, parse_object

if TYPE_CHECKING:
    from gateway.app import GatewayState

log = logging.getLogger(__name__)

CLOSE_HEARTBEAT_TIMEOUT = 4008
CLOSE_LOGIN_TIMEOUT = 4001
CLOSE_SLOW_CONSUMER = 4009
CLOSE_RATE_LIMIT = 4029


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


class HeartbeatMessage(Strict):
    op: Literal["heartbeat"]
    req_id: str | int | None = None


_ORDER_MODELS: dict[str, type[BaseModel]] = {
    "new_order": NewOrderRequest,
    "amend": AmendRequest,
    "cancel": CancelRequest,
    "mass_cancel": MassCancelRequest,
}


def _req_id(msg: dict[str, Any]) -> str | int | None:
    rid = msg.get("req_id")
    if isinstance(rid, bool) or not isinstance(rid, (str, int)):
        return None
    if isinstance(rid, str) and len(rid) > 64:
        return None
    if isinstance(rid, int) and abs(rid) > 2**63:
        return None
    return rid


class Session:
    def __init__(self, ws: WebSocket, gw: GatewayState) -> None:
        self.ws = ws
        self.gw = gw
        self.id = "ws-" + secrets.token_hex(8)
        self.nonce = secrets.token_hex(16)
        self.key: ApiKey | None = None
        self.cancel_on_disconnect = False
        cfg = gw.config
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=cfg.ws_queue_max)
        self._queued_bytes = 0  # characters of queued text (our JSON is ASCII: = bytes)
        self.max_queued_bytes = 0  # high-water mark, for tests and diagnostics
        self._opened = time.monotonic()
        self._last_seen = self._opened
        self._bucket = TokenBucket(rate_per_s=cfg.rate_per_s if cfg.ws_rate_per_s is None else cfg.ws_rate_per_s,
                                   burst=cfg.rate_burst if cfg.ws_rate_burst is None else cfg.ws_rate_burst)
        self._refusals = TokenBucket(rate_per_s=self._bucket.rate, burst=self._bucket.burst)
        self._subscribe_bucket = TokenBucket(rate_per_s=cfg.ws_subscribe_per_s, burst=cfg.ws_subscribe_burst)
        self._guards = guards_of(ws.app)
        self._address = client_address(ws.scope)
        self._close: tuple[int, str] | None = None
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._pre_login = 0
        self._wake = asyncio.Event()

    # ------------------------------------------------------------ outbound

    def push(self, text: str) -> None:
        if self._close is not None:
            return
        size = len(text)
        if self._queued_bytes + size > self.gw.config.ws_queue_max_bytes:
            self._slow()
            return
        try:
            self._queue.put_nowait(text)
        except asyncio.QueueFull:
            self._slow()
            return
        self._queued_bytes += size
        if self._queued_bytes > self.max_queued_bytes:
            self.max_queued_bytes = self._queued_bytes

    def _slow(self) -> None:
        metrics.abuse("slow_consumer")
        self._end(CLOSE_SLOW_CONSUMER, "SLOW_CONSUMER")

    def _remaining(self) -> int:
        if self.key is None:
            return 0
        return min(self.gw.limiter.remaining(self.key.key_id), self._bucket.remaining)

    def _reply(self, op: str, rid: str | int | None, reply: Reply) -> None:
        if reply.ok:
            self.push(dumps({"op": op, "req_id": rid, "ok": True, "result": reply.body,
                             "remaining": self._remaining()}))
        else:
            self.push(dumps({"op": op, "req_id": rid, "ok": False, "error": reply.body["error"],
                             "remaining": self._remaining()}))

    def _fail(self, op: str, rid: str | int | None, err: ApiError) -> None:
        body = {"op": op, "req_id": rid, "ok": False, **err.body()}
        if self.key is not None:
            body["remaining"] = self._remaining()
        self.push(dumps(body))

    def _end(self, code: int, reason: str) -> None:
        if self._close is None:
            self._close = (code, reason)
            self._wake.set()

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        await self.ws.accept()
        metrics.ws_session_opened("trader")
        try:
            await self._run()
        finally:
            metrics.ws_session_closed("trader")

    async def _run(self) -> None:
        self.push(dumps({"op": "welcome", "session_id": self.id, "nonce": self.nonce,
                         "heartbeat_timeout_s": self.gw.config.heartbeat_timeout_s}))
        tasks = [asyncio.create_task(self._reader()), asyncio.create_task(self._writer()),
                 asyncio.create_task(self._watchdog())]
        reader, writer, watchdog = tasks
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            reader.cancel()
            watchdog.cancel()
            self.gw.hub.drop(self)
            with contextlib.suppress(Exception):
                await asyncio.shield(self._cancel_on_disconnect())
            if self._close is not None and not writer.done() and not self._queue.full():
                self._queue.put_nowait(None)  # flush what was queued before the close
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(writer), timeout=1.0)
            writer.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # retrieve every outcome
            if self.ws.application_state != WebSocketState.DISCONNECTED:
                code, reason = self._close or (1000, "")
                with contextlib.suppress(Exception):
                    await self.ws.close(code, reason)

    async def _cancel_on_disconnect(self) -> None:
        if self.key is None or not self.cancel_on_disconnect:
            return
        if self._tasks:  # commands already read reach the venue before the mass cancel
            await asyncio.wait(set(self._tasks), timeout=10)
        await self.gw.orders.mass_cancel(self.key.participant, MassCancelRequest(), session=self.id,
                                         reason=CancelReason.DISCONNECT)

    async def _writer(self) -> None:
        while True:
            text = await self._queue.get()
            if text is None:
                return
            self._queued_bytes -= len(text)
            await self.ws.send_text(text)

    async def _watchdog(self) -> None:
        cfg = self.gw.config
        while self._close is None:
            now = time.monotonic()
            if self.key is None:  # from connecting: pre-login frames never extend it
                deadline, code, reason = self._opened + cfg.login_timeout_s, CLOSE_LOGIN_TIMEOUT, "LOGIN_TIMEOUT"
            else:
                deadline = self._last_seen + cfg.heartbeat_timeout_s
                code, reason = CLOSE_HEARTBEAT_TIMEOUT, "HEARTBEAT_TIMEOUT"
            remaining = deadline - now
            if remaining <= 0:
                if self.key is None:
                    metrics.abuse("login_timeout")
                self._end(code, reason)
                break
            self._wake.clear()  # set by _end and at login only: no per-frame wake-ups
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=remaining)

    async def _reader(self) -> None:
        while self._close is None:
            frame = await self.ws.receive()
            if frame["type"] == "websocket.disconnect":
                return
            self._last_seen = time.monotonic()  # the watchdog reads it when its current wait ends
            try:
                self._handle(frame)
            except ApiError as err:
                self._fail("error", None, err)
            except Exception:  # a bug in one message must not end the session
                log.exception("websocket frame failed")
                self._fail("error", None, ApiError("INTERNAL_ERROR", "internal error"))

    # ------------------------------------------------------------ inbound

    def _handle(self, frame: Mapping[str, Any]) -> None:
        if self.key is None:  # every frame counts before login: heartbeats, binary, oversized
            self._pre_login += 1
            if self._pre_login > self.gw.config.ws_pre_login_frames:
                metrics.abuse("pre_login_frames")
                self._end(CLOSE_LOGIN_TIMEOUT, "TOO_MANY_FRAMES_BEFORE_LOGIN")
                return
        text = frame.get("text")
        if text is None:
            raise ApiError("MALFORMED_JSON", "send JSON text frames, not binary")
        if len(text) > self.gw.config.max_ws_message_bytes:
            metrics.abuse("oversized_message")
            raise ApiError("MESSAGE_TOO_LARGE", f"messages are limited to {self.gw.config.max_ws_message_bytes} bytes")
        msg = parse_object(text)
        rid = _req_id(msg)
        op = msg.get("op")
        if not isinstance(op, str):
            self._fail("error", rid, ApiError("UNKNOWN_OP", "each message needs a string field 'op'"))
            return
        op_name = op if len(op) <= 32 else "error"
        try:
            self._dispatch(op, msg, rid)
        except ValidationError as exc:
            self._fail(op_name, rid, from_validation_errors(exc.errors()))
        except ApiError as err:
            self._fail(op_name, rid, err)

    def _dispatch(self, op: str, msg: dict[str, Any], rid: str | int | None) -> None:
        if self.key is None:
            if op == "heartbeat":
                HeartbeatMessage.model_validate(msg)
                self.push(dumps({"op": "heartbeat", "req_id": rid, "ok": True, "result": {"ts": _now_ms()}}))
                return
            if op != "login":
                raise ApiError("NOT_LOGGED_IN", "log in first (op 'login')")
            self._login(LoginMessage.model_validate(msg), rid)
            return
        retry_after = self._bucket.take()
        if retry_after is not None:
            metrics.abuse("rate_limited_connection")
            self._refused()
            raise ApiError("RATE_LIMITED", f"connection rate limit exceeded; retry in {retry_after:.3f} s",
                           retry_after=round(retry_after, 3))
        retry_after = self.gw.limiter.take(self.key.key_id)
        if retry_after is not None:
            metrics.abuse("rate_limited_key")
            self._refused()
            raise ApiError("RATE_LIMITED", f"rate limit exceeded; retry in {retry_after:.3f} s",
                           retry_after=round(retry_after, 3))
        if op == "heartbeat":
            HeartbeatMessage.model_validate(msg)
            self.push(dumps({"op": "heartbeat", "req_id": rid, "ok": True, "result": {"ts": _now_ms()},
                             "remaining": self._remaining()}))
        elif op == "login":
            raise ApiError("ALREADY_LOGGED_IN", "this connection is already logged in")
        elif op in ("subscribe", "unsubscribe"):
            self._subscribe(SubscribeMessage.model_validate(msg), rid)
        elif op in _ORDER_MODELS:
            body = {k: v for k, v in msg.items() if k not in ("op", "req_id")}
            self._order(op, _ORDER_MODELS[op].model_validate(body), rid)
        else:
            raise ApiError("UNKNOWN_OP", f"unknown op {op[:32]!r}")

    def _refused(self) -> None:
        """A client that keeps sending while refused costs the venue a parse and a reply per
        message: after a burst's worth of refusals (refilled at the connection's rate) it is closed."""
        if self._refusals.take() is not None:
            metrics.abuse("rate_limit_disconnect")
            self._end(CLOSE_RATE_LIMIT, "RATE_LIMIT_EXCEEDED")

    def _login(self, msg: LoginMessage, rid: str | int | None) -> None:
        addresses = self._guards.addresses  # failed logins cost the source address, like 401s on REST
        retry_after = addresses.peek(self._address)
        if retry_after is not None:
            metrics.abuse("rate_limited_address")
            raise ApiError("RATE_LIMITED", f"too many failed logins from this address; retry in "
                                           f"{retry_after:.3f} s", retry_after=round(retry_after, 3))
        try:
            key = self.gw.auth.verify_login(msg.key_id, msg.ts, msg.signature, self.nonce)
        except ApiError:
            addresses.take(self._address)
            raise
        self.key = key
        self.cancel_on_disconnect = msg.cancel_on_disconnect and key.role is Role.TRADER
        self._wake.set()  # the watchdog switches from the login to the heartbeat timeout
        self.push(dumps({"op": "login", "req_id": rid, "ok": True, "result": {
            "participant": key.participant, "role": str(key.role), "session_id": self.id,
            "cancel_on_disconnect": self.cancel_on_disconnect}, "remaining": self._remaining()}))

    def _subscribe(self, msg: SubscribeMessage, rid: str | int | None) -> None:
        assert self.key is not None
        retry_after = self._subscribe_bucket.take()
        if retry_after is not None:
            metrics.abuse("subscribe_rate_limited")
            raise ApiError("SUBSCRIBE_RATE_LIMITED",
                           f"at most {self.gw.config.ws_subscribe_per_s:g} subscribe/unsubscribe per second "
                           f"per connection; retry in {retry_after:.3f} s", retry_after=round(retry_after, 3))
        hub = self.gw.hub
        channel = msg.channel
        if channel in ("book", "trades"):
            if msg.symbol is None:
                raise ApiError("MISSING_FIELD", f"channel {channel!r} needs 'symbol'")
            self.gw.orders.listing(msg.symbol)
        elif channel in PRIVATE_CHANNELS:
            if self.key.role is not Role.TRADER:
                raise ApiError("FORBIDDEN", "private channels are for trading participants")
        elif channel != "status":
            raise ApiError("UNKNOWN_CHANNEL", f"unknown channel {channel[:32]!r}; use book, trades, status, "
                                              "orders, fills or settlements")
        # the reply goes first so the client knows the subscription before its snapshot arrives
        self.push(dumps({"op": msg.op, "req_id": rid, "ok": True,
                         "result": {"channel": channel, "symbol": msg.symbol}, "remaining": self._remaining()}))
        if msg.op == "unsubscribe":
            hub.unsubscribe(self, channel, symbol=msg.symbol, participant=self.key.participant)
        elif channel == "book":
            assert msg.symbol is not None
            hub.unsubscribe(self, "book", symbol=msg.symbol)
            hub.subscribe_book(self, msg.symbol)
        elif channel == "trades":
            assert msg.symbol is not None
            hub.subscribe_trades(self, msg.symbol)
        elif channel == "status":
            hub.subscribe_status(self)
        else:
            hub.subscribe_private(self, self.key.participant, channel)

    def _order(self, op: str, msg: BaseModel, rid: str | int | None) -> None:
        assert self.key is not None
        if self.key.role is not Role.TRADER:
            raise ApiError("FORBIDDEN", "order entry is for trading participants")
        if self._in_flight >= self.gw.config.ws_max_in_flight:
            raise ApiError("TOO_MANY_IN_FLIGHT", f"at most {self.gw.config.ws_max_in_flight} orders may await a reply")
        participant = self.key.participant
        orders = self.gw.orders
        coro: Coroutine[Any, Any, Reply]
        if isinstance(msg, NewOrderRequest):
            coro = orders.new_order(participant, msg, session=self.id)
        elif isinstance(msg, AmendRequest):
            coro = orders.amend(participant, msg)
        elif isinstance(msg, CancelRequest):
            coro = orders.cancel(participant, msg)
        else:
            assert isinstance(msg, MassCancelRequest)
            coro = orders.mass_cancel(participant, msg)
        self._in_flight += 1
        # Eager start: the coroutine runs to its venue call right now, in arrival order.
        task = asyncio.get_running_loop().create_task(self._finish(op, rid, coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, op: str, rid: str | int | None, coro: Coroutine[Any, Any, Reply]) -> None:
        fair = self._guards.fair  # round-robin across sessions once the venue has enough in flight
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
            self._fail(op, rid, err)
        except Exception:
            log.exception("websocket %s failed", op)
            self._fail(op, rid, ApiError("INTERNAL_ERROR", "internal error"))
        finally:
            fair.release()
            self._in_flight -= 1


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def websocket_endpoint(ws: WebSocket) -> None:
    gw: GatewayState = ws.app.state.gateway
    await Session(ws, gw).run()

