"""The gateway's websocket framing, shared by the trader (``/v1/ws``) and operator
(``/v1/operator/ws``) sessions.

JSON text frames; each request has ``op`` and an optional ``req_id`` echoed back:

* server -> ``{"op": "welcome", "session_id", "nonce", "heartbeat_timeout_s"}`` on connect;
* ``login`` must come first (what it carries is the session kind's business) and within the login
  timeout; more than 16 frames before a login close the session (4001);
* ``heartbeat`` -> ``{"op": "heartbeat", "req_id", "ok": true, "result": {"ts"}}``; any frame counts
  as liveness, silence longer than ``heartbeat_timeout_s`` closes the session (4008);
* replies ``{"op", "req_id", "ok": true, "result"}`` or ``{"op", "req_id", "ok": false, "error":
  {"code", "message"}}``; a bad frame gets an error reply and never ends the session;
* pushes carry ``channel`` instead of ``op``; a client that does not read them closes with 4009.

Close codes: 4001 login timeout, 4003 session ended (an operator's console session expired or was
logged out), 4008 heartbeat timeout, 4009 slow consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketState

from gateway import metrics
from gateway.config import GatewayConfig
from gateway.errors import ApiError
from gateway.ratelimit import RateLimiter
from gateway.schemas import Strict
from gateway.streams import dumps
from gateway.validation import from_validation_errors, parse_object

log = logging.getLogger(__name__)

CLOSE_LOGIN_TIMEOUT = 4001
CLOSE_SESSION_ENDED = 4003
CLOSE_HEARTBEAT_TIMEOUT = 4008
CLOSE_SLOW_CONSUMER = 4009
_PRE_LOGIN_FRAMES = 16

ReqId = str | int | None


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
        self._last_seen = time.monotonic()
        self._close: tuple[int, str] | None = None
        self._pre_login = 0
        self._wake = asyncio.Event()

    # ------------------------------------------------------------ outbound

    def push(self, text: str) -> None:
        if self._close is not None:
            return
        try:
            self._queue.put_nowait(text)
        except asyncio.QueueFull:
            self.end(CLOSE_SLOW_CONSUMER, "SLOW_CONSUMER")

    def ok(self, op: str, rid: ReqId, result: Any) -> None:
        self.push(dumps({"op": op, "req_id": rid, "ok": True, "result": result}))

    def fail(self, op: str, rid: ReqId, err: ApiError) -> None:
        self.push(dumps({"op": op, "req_id": rid, "ok": False, **err.body()}))

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
        while True:
            text = await self._queue.get()
            if text is None:
                return
            await self.ws.send_text(text)

    async def _watchdog(self) -> None:
        cfg = self.config
        while self._close is None:
            now = time.monotonic()
            if self.rate_key is None:
                limit, code, reason = cfg.login_timeout_s, CLOSE_LOGIN_TIMEOUT, "LOGIN_TIMEOUT"
            else:
                limit, code, reason = cfg.heartbeat_timeout_s, CLOSE_HEARTBEAT_TIMEOUT, "HEARTBEAT_TIMEOUT"
            remaining = self._last_seen + limit - now
            if remaining <= 0:
                self.end(code, reason)
                break
            self._wake.clear()  # set by end() and at login only: no per-frame wake-ups
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
                self.fail("error", None, err)
            except Exception:  # a bug in one message must not end the session
                log.exception("websocket frame failed")
                self.fail("error", None, ApiError("INTERNAL_ERROR", "internal error"))

    # ------------------------------------------------------------ inbound

    def _handle(self, frame: Mapping[str, Any]) -> None:
        text = frame.get("text")
        if text is None:
            raise ApiError("MALFORMED_JSON", "send JSON text frames, not binary")
        if len(text) > self.config.max_ws_message_bytes:
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
            self._pre_login += 1
            if self._pre_login > _PRE_LOGIN_FRAMES:
                self.end(CLOSE_LOGIN_TIMEOUT, "TOO_MANY_FRAMES_BEFORE_LOGIN")
                return
            if op != "login":
                raise ApiError("NOT_LOGGED_IN", "log in first (op 'login')")
            self._login(msg, rid)
            return
        retry_after = self.limiter.take(self.rate_key)
        if retry_after is not None:
            raise ApiError("RATE_LIMITED", f"rate limit exceeded; retry in {retry_after:.3f} s",
                           retry_after=round(retry_after, 3))
        if op == "heartbeat":
            self._heartbeat(msg, rid)
        elif op == "login":
            raise ApiError("ALREADY_LOGGED_IN", "this connection is already logged in")
        else:
            self._command(op, msg, rid)

    def _heartbeat(self, msg: dict[str, Any], rid: ReqId) -> None:
        HeartbeatMessage.model_validate(msg)
        self.ok("heartbeat", rid, {"ts": now_ms()})

    @abstractmethod
    def _login(self, msg: dict[str, Any], rid: ReqId) -> None:
        """Verify the login message; on success reply and call ``logged_in``."""

    def _command(self, op: str, msg: dict[str, Any], rid: ReqId) -> None:
        raise ApiError("UNKNOWN_OP", f"unknown op {op[:32]!r}")
