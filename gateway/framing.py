"""The gateway's websocket framing, shared by the trader (``/v1/ws``) and operator
(``/v1/operator/ws``) sessions.

JSON text frames; each request has ``op`` and an optional ``req_id`` echoed back:

* server -> ``{"op": "welcome", "session_id", "nonce", "heartbeat_timeout_s"}`` on connect;
* ``login`` must come first (what it carries is the session kind's business) and within
  ``login_timeout_s`` of connecting (pre-login heartbeats do not extend it); more than
  ``ws_pre_login_frames`` frames of any kind before a login (heartbeats, binary and oversized
  frames included) close the session (4001). Failed logins spend a token of the source address's
  bucket (``gateway.guards``); while it is empty, logins from that address get RATE_LIMITED;
* ``heartbeat`` -> ``{"op": "heartbeat", "req_id", "ok": true, "result": {"ts"}}``; after login any
  frame counts as liveness, silence longer than ``heartbeat_timeout_s`` closes the session (4008);
* replies ``{"op", "req_id", "ok": true, "result"}`` or ``{"op", "req_id", "ok": false, "error":
  {"code", "message"}}``; a bad frame gets an error reply and never ends the session. After login
  every reply also carries ``remaining``: the messages this connection may still send now (the
  smaller of its rate key's and its connection's token buckets);
* every message after login spends a token of the connection's bucket (``ws_rate_per_s``) and of
  its rate key's (the API key's); beyond either it gets RATE_LIMITED with ``retry_after``;
* pushes carry ``channel`` instead of ``op``; a client that does not read them is closed once its
  outbound queue passes ``ws_queue_max_bytes`` bytes (or ``ws_queue_max`` messages): 4009. Before
  that, past ``ws_conflate_bytes``, its book channels are conflated (``gateway.streams``): deltas
  pause and the latest snapshot follows once the queue has drained.

A message above ``max_ws_message_bytes`` is refused by the server from its frame header (close
1009, ``gateway.server.uvicorn_options``); behind a server without that limit it gets
MESSAGE_TOO_LARGE here and counts against the pre-login limit.

Close codes: 4001 login timeout / too many frames before login, 4003 session ended (an operator's
console session expired or was logged out), 4008 heartbeat timeout, 4009 slow consumer, 4010 the
session's API key was revoked (``gateway.sessions``), 4029 the
client kept sending while refused (more RATE_LIMITED replies than the connection's burst, refilled
at its rate).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from websockets.exceptions import InvalidState

from gateway import metrics
from gateway.config import GatewayConfig
from gateway.errors import ApiError
from gateway.guards import client_address, guards_of
from gateway.ratelimit import RateLimiter, TokenBucket
from gateway.schemas import Strict
from gateway.streams import dumps
from gateway.validation import from_validation_errors, parse_object

try:  # the server the gateway runs on; messages to it are framed in batches (``_send_many``)
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol as _SansIO
except ImportError:  # pragma: no cover - another ASGI server: message by message
    _SansIO = None  # type: ignore[assignment,misc]

log = logging.getLogger(__name__)

CLOSE_LOGIN_TIMEOUT = 4001
CLOSE_SESSION_ENDED = 4003
CLOSE_HEARTBEAT_TIMEOUT = 4008
CLOSE_SLOW_CONSUMER = 4009
CLOSE_KEY_REVOKED = 4010  # gateway.sessions: the API key was revoked
CLOSE_RATE_LIMIT = 4029

ReqId = str | int | None
MAX_FRAMES_PER_PASS = 256  # frames handled per read pass before the loop gets a turn
MAX_FRAMES_PER_WRITE = 256  # queued messages framed into one transport write


class HeartbeatMessage(Strict):
    op: Literal["heartbeat"]
    req_id: str | int | None = None


def _req_id(msg: dict[str, Any]) -> ReqId:
    rid = msg.get("req_id")
    if isinstance(rid, bool) or not isinstance(rid, (str, int)):
        return None
    if isinstance(rid, str) and len(rid) > 64:
        return None
    if isinstance(rid, int) and abs(rid) > 2**63:
        return None
    return rid


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class FramedSession(ABC):
    """One websocket connection: a reader, a writer draining a bounded queue and a watchdog.
    Subclasses say how to log in (``_login``), what to do with the other ops (``_command``) and
    what to undo at the end (``_closing``)."""

    kind: ClassVar[str]  # metrics label

    def __init__(self, ws: WebSocket, config: GatewayConfig, limiter: RateLimiter) -> None:
        self.ws = ws
        self.config = config
        self.limiter = limiter
        self.id = "ws-" + secrets.token_hex(8)
        self.nonce = secrets.token_hex(16)
        self.rate_key: str | None = None  # set at login; None = not logged in
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=config.ws_queue_max)
        self._queued_bytes = 0  # characters of queued text (our JSON is ASCII: = bytes)
        self.max_queued_bytes = 0  # high-water mark, for tests and diagnostics
        self._opened = time.monotonic()
        self._last_seen = self._opened
        self._bucket = TokenBucket(
            rate_per_s=config.rate_per_s if config.ws_rate_per_s is None else config.ws_rate_per_s,
            burst=config.rate_burst if config.ws_rate_burst is None else config.ws_rate_burst)
        self._refusals = TokenBucket(rate_per_s=self._bucket.rate, burst=self._bucket.burst)
        self.guards = guards_of(ws.app)
        self._address = client_address(ws.scope)
        self._close: tuple[int, str] | None = None
        self._pre_login = 0
        self._drained: list[Callable[[], None]] = []  # conflated channels waiting for the queue to drain
        self._wake = asyncio.Event()
        owner = getattr(getattr(ws, "_receive", None), "__self__", None)  # the server's protocol object
        inbox = getattr(owner, "queue", None)
        self._inbox: asyncio.Queue[Any] | None = inbox if isinstance(inbox, asyncio.Queue) else None
        self._raw: Any = owner if _SansIO is not None and isinstance(owner, _SansIO) else None

    # ------------------------------------------------------------ outbound

    def push(self, text: str) -> None:
        if self._close is not None:
            return
        size = len(text)
        if self._queued_bytes + size > self.config.ws_queue_max_bytes:
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

    def lagging(self) -> bool:
        """Whether the outbound backlog is past the conflation bound (``gateway.streams``)."""
        return self._queued_bytes > self.config.ws_conflate_bytes

    def when_drained(self, callback: Callable[[], None]) -> None:
        """``callback`` runs once the backlog is under half the conflation bound."""
        self._drained.append(callback)

    def _slow(self) -> None:
        metrics.abuse("slow_consumer")
        self.end(CLOSE_SLOW_CONSUMER, "SLOW_CONSUMER")

    def remaining(self) -> int:
        """Messages this connection may send right now (0 before login)."""
        if self.rate_key is None:
            return 0
        return min(self.limiter.remaining(self.rate_key), self._bucket.remaining)

    def reply(self, body: dict[str, Any]) -> None:
        """Queue a reply (``op``, ``req_id``, ``ok``, ...); after login it carries ``remaining``."""
        if self.rate_key is not None:
            body["remaining"] = self.remaining()
        self.push(dumps(body))

    def ok(self, op: str, rid: ReqId, result: Any) -> None:
        self.reply({"op": op, "req_id": rid, "ok": True, "result": result})

    def fail(self, op: str, rid: ReqId, err: ApiError) -> None:
        self.reply({"op": op, "req_id": rid, "ok": False, **err.body()})

    def end(self, code: int, reason: str) -> None:
        if self._close is None:
            self._close = (code, reason)
            self._wake.set()

    def logged_in(self, rate_key: str) -> None:
        """Called by ``_login`` on success: later frames are rate-limited under ``rate_key``."""
        self.rate_key = rate_key
        self._wake.set()  # the watchdog switches from the login to the heartbeat timeout

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        await self.ws.accept()
        metrics.ws_session_opened(self.kind)
        try:
            await self._run()
        finally:
            metrics.ws_session_closed(self.kind)

    async def _run(self) -> None:
        self.push(dumps({"op": "welcome", "session_id": self.id, "nonce": self.nonce,
                         "heartbeat_timeout_s": self.config.heartbeat_timeout_s}))
        tasks = [asyncio.create_task(self._reader()), asyncio.create_task(self._writer()),
                 asyncio.create_task(self._watchdog())]
        reader, writer, watchdog = tasks
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            reader.cancel()
            watchdog.cancel()
            with contextlib.suppress(Exception):
                await asyncio.shield(self._closing())
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

    @abstractmethod
    async def _closing(self) -> None:
        """Undo what the session set up (subscriptions, cancel-on-disconnect)."""

    async def _writer(self) -> None:
        queue = self._queue
        while True:
            texts = [await queue.get()]
            while not queue.empty() and len(texts) < MAX_FRAMES_PER_WRITE:
                texts.append(queue.get_nowait())  # everything queued goes out together
            done = texts[-1] is None
            if done:
                texts.pop()
            for text in texts:
                self._queued_bytes -= len(text)  # type: ignore[arg-type]
            await self._send_many(texts)  # type: ignore[arg-type]
            if done:
                return
            if self._drained and self._queued_bytes <= self.config.ws_conflate_bytes // 2:
                callbacks, self._drained = self._drained, []
                for callback in callbacks:
                    try:
                        callback()  # queues the latest snapshot of a conflated book
                    except Exception:
                        log.exception("conflation catch-up failed")

    async def _send_many(self, texts: list[str]) -> None:
        """Sends ``texts`` in order, one websocket message each; on uvicorn's sans-I/O websocket
        protocol (the gateway's server) several messages are framed together and go out in one
        transport write (one system call, not one per acknowledgement). Its own ``send`` does
        exactly this per message; we keep its checks (flow control, handshake done, no close
        sent) and otherwise send message by message through ASGI."""
        proto = self._raw
        if proto is not None and len(texts) > 1:
            await proto.writable.wait()
            if (not proto.disconnected and proto.handshake_complete and not proto.close_sent
                    and proto.initial_response is None and not proto.transport.is_closing()):
                try:
                    for text in texts:
                        proto.conn.send_text(text.encode())
                    proto.transport.write(b"".join(proto.conn.data_to_send()))
                    return
                except InvalidState:
                    raise WebSocketDisconnect(1006) from None
        for text in texts:
            await self.ws.send_text(text)

    async def _watchdog(self) -> None:
        cfg = self.config
        while self._close is None:
            now = time.monotonic()
            if self.rate_key is None:  # from connecting: pre-login frames never extend it
                deadline, code, reason = self._opened + cfg.login_timeout_s, CLOSE_LOGIN_TIMEOUT, "LOGIN_TIMEOUT"
            else:
                deadline = self._last_seen + cfg.heartbeat_timeout_s
                code, reason = CLOSE_HEARTBEAT_TIMEOUT, "HEARTBEAT_TIMEOUT"
            remaining = deadline - now
            if remaining <= 0:
                if self.rate_key is None:
                    metrics.abuse("login_timeout")
                self.end(code, reason)
                break
            self._wake.clear()  # set by end() and at login only: no per-frame wake-ups
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=remaining)

    async def _reader(self) -> None:
        """Reads frame by frame; every frame the server has already buffered for this connection
        is handled in the same pass, then ``_flush`` hands what the pass collected
        (a batch of new orders) to the venue at once."""
        try:
            while self._close is None:
                frame = await self.ws.receive()
                handled = 0
                while True:
                    if frame["type"] == "websocket.disconnect":
                        return
                    self._last_seen = time.monotonic()  # the watchdog reads it when its current wait ends
                    self._frame(frame)
                    handled += 1
                    if handled >= MAX_FRAMES_PER_PASS or self._close is not None or not self._buffered():
                        break
                    frame = await self.ws.receive()  # already buffered: returns without suspending
                self._flush()
        finally:
            self._flush()

    def _frame(self, frame: Mapping[str, Any]) -> None:
        try:
            self._handle(frame)
        except ApiError as err:
            self.fail("error", None, err)
        except Exception:  # a bug in one message must not end the session
            log.exception("websocket frame failed")
            self.fail("error", None, ApiError("INTERNAL_ERROR", "internal error"))

    def _buffered(self) -> bool:
        """Whether the server already holds another message of this connection (uvicorn's
        websocket protocols queue parsed messages for the app; unknown servers: no)."""
        inbox = self._inbox
        return inbox is not None and not inbox.empty()

    def _flush(self) -> None:  # noqa: B027 - a hook, empty unless the session batches
        """End of a read pass: submit what the pass collected (sessions that batch override it)."""

    # ------------------------------------------------------------ inbound

    def _handle(self, frame: Mapping[str, Any]) -> None:
        if self.rate_key is None:  # every frame counts before login: heartbeats, binary, oversized
            self._pre_login += 1
            if self._pre_login > self.config.ws_pre_login_frames:
                metrics.abuse("pre_login_frames")
                self.end(CLOSE_LOGIN_TIMEOUT, "TOO_MANY_FRAMES_BEFORE_LOGIN")
                return
        text = frame.get("text")
        if text is None:
            raise ApiError("MALFORMED_JSON", "send JSON text frames, not binary")
        if len(text) > self.config.max_ws_message_bytes:
            metrics.abuse("oversized_message")
            raise ApiError("MESSAGE_TOO_LARGE", f"messages are limited to {self.config.max_ws_message_bytes} bytes")
        msg = parse_object(text)
        rid = _req_id(msg)
        op = msg.get("op")
        if not isinstance(op, str):
            self.fail("error", rid, ApiError("UNKNOWN_OP", "each message needs a string field 'op'"))
            return
        op_name = op if len(op) <= 32 else "error"
        try:
            self._dispatch(op, msg, rid)
        except ValidationError as exc:
            self.fail(op_name, rid, from_validation_errors(exc.errors()))
        except ApiError as err:
            self.fail(op_name, rid, err)

    def _dispatch(self, op: str, msg: dict[str, Any], rid: ReqId) -> None:
        if self.rate_key is None:
            if op == "heartbeat":
                self._heartbeat(msg, rid)
                return
            if op != "login":
                raise ApiError("NOT_LOGGED_IN", "log in first (op 'login')")
            self._address_login(msg, rid)
            return
        retry_after = self._bucket.take()
        if retry_after is not None:
            metrics.abuse("rate_limited_connection")
            self._refused()
            raise ApiError("RATE_LIMITED", f"connection rate limit exceeded; retry in {retry_after:.3f} s",
                           retry_after=round(retry_after, 3))
        retry_after = self.limiter.take(self.rate_key)
        if retry_after is not None:
            metrics.abuse("rate_limited_key")
            self._refused()
            raise ApiError("RATE_LIMITED", f"rate limit exceeded; retry in {retry_after:.3f} s",
                           retry_after=round(retry_after, 3))
        if op == "heartbeat":
            self._heartbeat(msg, rid)
        elif op == "login":
            raise ApiError("ALREADY_LOGGED_IN", "this connection is already logged in")
        else:
            self._command(op, msg, rid)

    def _refused(self) -> None:
        """A client that keeps sending while refused costs a parse and a reply per message: after
        a burst's worth of refusals (refilled at the connection's rate) it is closed (4029)."""
        if self._refusals.take() is not None:
            metrics.abuse("rate_limit_disconnect")
            self.end(CLOSE_RATE_LIMIT, "RATE_LIMIT_EXCEEDED")

    def _address_login(self, msg: dict[str, Any], rid: ReqId) -> None:
        """``_login``, limited per source address: failed logins (like 401s on REST) spend a token
        of the address's bucket; while it is empty, logins from that address are refused unchecked."""
        addresses = self.guards.addresses
        retry_after = addresses.peek(self._address)
        if retry_after is not None:
            metrics.abuse("rate_limited_address")
            raise ApiError("RATE_LIMITED", f"too many failed logins from this address; retry in "
                                           f"{retry_after:.3f} s", retry_after=round(retry_after, 3))
        try:
            self._login(msg, rid)
        except ApiError:
            addresses.take(self._address)
            raise

    def _heartbeat(self, msg: dict[str, Any], rid: ReqId) -> None:
        HeartbeatMessage.model_validate(msg)
        self.ok("heartbeat", rid, {"ts": now_ms()})

    @abstractmethod
    def _login(self, msg: dict[str, Any], rid: ReqId) -> None:
        """Verify the login message; on success reply and call ``logged_in``."""

    def _command(self, op: str, msg: dict[str, Any], rid: ReqId) -> None:
        raise ApiError("UNKNOWN_OP", f"unknown op {op[:32]!r}")
