"""Operator API, its live websocket and the web console (``/console``).

The same operator routes are mounted twice:

- ``/v1/operator/...`` for signed requests from API keys with role ``operator`` (the gateway's
  Ed25519 signing middleware authenticates every ``/v1`` request; ``require_operator`` hands the
  key to the route);
- ``/console/api/...`` for the browser console, with ``Authorization: Bearer <session token>``
  (outside ``/v1`` because browsers cannot sensibly hold Ed25519 keys).

Console sessions: ``ConsoleAuth.issue_login_code(operator)`` makes a one-time login code
(5 minutes) that the venue CLI prints as ``http://host:port/console#code=...`` (the fragment never
reaches servers or logs); an operator holding a key can also get one from
``POST /v1/operator/console-login``. The console exchanges the code once
(``POST /console/api/session``) for an HMAC-signed session token (1 hour, refreshable up to
12 hours after login, revocable by logout; the signing secret lives only in the process, so a
restart ends every session). Bearer tokens travel in a header, never a cookie: no CSRF surface.
The live websocket ``/v1/operator/ws`` greets with ``{"type": "hello", "nonce"}`` and takes a
login with a session token or signed by an operator key like the trader websocket's login.

Errors use the gateway's body ``{"error": {"code": ..., "message": ...}}`` with stable codes.

Exceptions (under the gateway's root, see ``gateway.errors``)::

    GatewayError
    └── ApiError
        └── OperatorApiError      status chosen per operator code (404 UNKNOWN_PARTICIPANT, 409 NO_WALLET, ...)
            └── ConsoleAuthError  401: bad, expired or revoked login code / session token
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import hmac
import inspect
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from fastapi import APIRouter, Depends, Query, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.websockets import WebSocketState

from engine import BookDelta, Event, Fill, InstrumentStatus, InstrumentStatusChanged, Level, ResultCode, Side
from gateway import metrics
from gateway.deps import authenticated
from gateway.errors import ApiError, engine_message, http_status
from gateway.ports import (
    ApiKey,
    AuditEntry,
    Listing,
    OperatorPort,
    Outcome,
    ParticipantView,
    ReconciliationReport,
    RejectionRecord,
    Role,
    SettlementNotice,
    TradeRecord,
    VenuePort,
)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
WS_LOGIN_TIMEOUT_S = 10.0
WS_HEARTBEAT_S = 15.0
_WS_QUEUE_MAX = 2_000
_BOOK_FLUSH_S = 0.1  # book updates are coalesced per symbol over this interval
_SLOW_POLL_S = 1.0  # participants, audit, reconciliation: diffed and pushed when changed
_PUSH_DEPTH = 10
_MAX_BATCH = 200  # trades / settlement notices per push; beyond that the console reloads


class OperatorVenue(VenuePort, OperatorPort, Protocol):
    """The venue core implements both ports in one object."""


RequireOperator = Callable[[Request], ApiKey | Awaitable[ApiKey]]


# ---------------------------------------------------------------- errors


class OperatorApiError(ApiError):
    """An ``ApiError`` whose HTTP status is chosen here (operator codes are not in the gateway table)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code, message)
        self._status = status

    @property
    def status(self) -> int:
        return self._status


class ConsoleAuthError(OperatorApiError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(401, code, message)


def _error_response(exc: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


class _OperatorRoute(APIRoute):
    """Renders this router's errors (auth and validation included) as the gateway's error body,
    independent of the exception handlers of the app it is mounted in."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def mapped(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return _error_response(exc)
            except RequestValidationError as exc:
                return _error_response(_validation_error(exc))

        return mapped


_PYDANTIC_CODES = {"extra_forbidden": "UNKNOWN_FIELD", "missing": "MISSING_FIELD", "json_invalid": "MALFORMED_JSON"}


def _validation_error(exc: RequestValidationError) -> ApiError:
    errors = exc.errors()
    first = errors[0] if errors else {}
    code = _PYDANTIC_CODES.get(str(first.get("type", "")), "INVALID_FIELD")
    parts = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid")))
    return ApiError(code, "; ".join(parts) or "invalid request")


# ---------------------------------------------------------------- console sessions


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleSession:
    token: str
    operator: str
    expires_at: int  # unix seconds


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Claims:
    operator: str
    expires_at: int
    auth_time: int
    token_id: str


class ConsoleAuth:
    """One-time login codes and HMAC-signed console session tokens (see module docstring)."""

    def __init__(
        self,
        *,
        secret: bytes | None = None,
        code_ttl_s: int = 300,
        session_ttl_s: int = 3600,
        max_session_s: int = 12 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if secret is not None and len(secret) < 32:
            raise ValueError("console session secret must be at least 32 bytes")
        self._secret = secret or secrets.token_bytes(32)
        self._code_ttl_s = code_ttl_s
        self._session_ttl_s = session_ttl_s
        self._max_session_s = max_session_s
        self._clock = clock
        self._codes: dict[str, tuple[str, float]] = {}  # sha256(code) -> (operator, expiry)
        self._revoked: dict[str, int] = {}  # token id -> its expiry (pruned after)

    @property
    def code_ttl_s(self) -> int:
        return self._code_ttl_s

    def issue_login_code(self, operator: str) -> str:
        if not operator:
            raise ValueError("operator name is required")
        now = self._clock()
        self._codes = {k: v for k, v in self._codes.items() if v[1] > now}
        code = secrets.token_urlsafe(24)
        self._codes[_digest(code)] = (operator, now + self._code_ttl_s)
        return code

    def exchange(self, code: str) -> ConsoleSession:
        """Consumes the code (whatever the outcome) and starts a session."""
        entry = self._codes.pop(_digest(code), None)
        now = self._clock()
        if entry is None or entry[1] <= now:
            raise ConsoleAuthError("INVALID_LOGIN_CODE", "login code is unknown, used or expired")
        return self._issue(entry[0], auth_time=int(now))

    def refresh(self, token: str) -> ConsoleSession:
        claims = self._verify(token)
        if int(self._clock()) - claims.auth_time >= self._max_session_s:
            raise ConsoleAuthError("SESSION_TOO_OLD", "session reached its maximum age; log in again")
        self._revoke_claims(claims)
        return self._issue(claims.operator, auth_time=claims.auth_time)

    def verify(self, token: str) -> str:
        """The operator name of a valid session token."""
        return self._verify(token).operator

    def revoke(self, token: str) -> None:
        self._revoke_claims(self._verify(token))

    def _issue(self, operator: str, *, auth_time: int) -> ConsoleSession:
        expires_at = min(int(self._clock()) + self._session_ttl_s, auth_time + self._max_session_s)
        payload = json.dumps(
            {"op": operator, "exp": expires_at, "iat0": auth_time, "jti": secrets.token_hex(12)},
            separators=(",", ":"), sort_keys=True,
        ).encode()
        body = _b64(payload)
        token = f"{body}.{_b64(self._sign(body))}"
        return ConsoleSession(token=token, operator=operator, expires_at=expires_at)

    def _verify(self, token: str) -> _Claims:
        body, _, sig = token.partition(".")
        try:
            good = hmac.compare_digest(_unb64(sig), self._sign(body))
            raw = json.loads(_unb64(body)) if good else None
            claims = _Claims(operator=str(raw["op"]), expires_at=int(raw["exp"]),
                             auth_time=int(raw["iat0"]), token_id=str(raw["jti"])) if raw else None
        except (ValueError, TypeError, KeyError):
            claims = None
        if claims is None:
            raise ConsoleAuthError("INVALID_SESSION", "session token is malformed or not signed by this venue")
        if claims.expires_at <= self._clock():
            raise ConsoleAuthError("SESSION_EXPIRED", "session expired; log in again")
        if claims.token_id in self._revoked:
            raise ConsoleAuthError("SESSION_REVOKED", "session was logged out")
        return claims

    def _revoke_claims(self, claims: _Claims) -> None:
        now = self._clock()
        self._revoked = {k: exp for k, exp in self._revoked.items() if exp > now}
        self._revoked[claims.token_id] = claims.expires_at

    def _sign(self, body: str) -> bytes:
        return hmac.new(self._secret, body.encode(), hashlib.sha256).digest()


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---------------------------------------------------------------- JSON views


def _dec(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _levels(listing: Listing, levels: tuple[Level, ...]) -> list[dict[str, Any]]:
    return [
        {"price": _dec(lv.price * listing.price_increment), "qty": _dec(lv.qty * listing.quantity_increment),
         "price_ticks": lv.price, "qty_lots": lv.qty, "count": lv.count}
        for lv in levels
    ]


def instrument_json(venue: OperatorVenue, listing: Listing, depth: int) -> dict[str, Any]:
    snap = venue.l2(listing.symbol, depth)
    last = venue.trades(symbol=listing.symbol, limit=1)
    spec = listing.spec
    return {
        "symbol": listing.symbol,
        "name": listing.name,
        "status": snap.status.name.lower(),
        "md_seq": snap.md_seq,
        "bids": _levels(listing, snap.bids),
        "asks": _levels(listing, snap.asks),
        "last_price": _dec(last[0].price * listing.price_increment) if last else None,
        "price_increment": _dec(listing.price_increment),
        "quantity_increment": _dec(listing.quantity_increment),
        "token_decimals": listing.token_decimals,
        "cash_decimals": listing.cash_decimals,
        "tick_size": spec.tick_size,
        "lot_size": spec.lot_size,
        "min_qty": spec.min_qty,
        "max_qty": spec.max_qty,
        "band_low": spec.band_low,
        "band_high": spec.band_high,
        "token_address": listing.token_address,
        "cash_token_address": listing.cash_token_address,
        "maturity_ts": listing.maturity_ts,
    }


def trade_json(venue: OperatorVenue, trade: TradeRecord) -> dict[str, Any]:
    listing = venue.listing(trade.symbol)
    price = _dec(trade.price * listing.price_increment) if listing else None
    qty = _dec(trade.qty * listing.quantity_increment) if listing else None
    return {
        "trade_id": trade.trade_id, "symbol": trade.symbol, "price": price, "qty": qty,
        "price_ticks": trade.price, "qty_lots": trade.qty, "aggressor": "buy" if trade.aggressor_buy else "sell",
        "ts": trade.ts, "buyer": trade.buyer, "seller": trade.seller, "settlement": trade.settlement.value,
    }


def _fill_json(venue: OperatorVenue, fill: Fill) -> dict[str, Any]:
    buy_is_maker = fill.aggressor is Side.SELL
    listing = venue.listing(fill.symbol)
    return {
        "trade_id": fill.trade_id, "symbol": fill.symbol,
        "price": _dec(fill.price * listing.price_increment) if listing else None,
        "qty": _dec(fill.qty * listing.quantity_increment) if listing else None,
        "price_ticks": fill.price, "qty_lots": fill.qty, "aggressor": fill.aggressor.name.lower(),
        "ts": fill.ts,
        "buyer": fill.maker_participant if buy_is_maker else fill.taker_participant,
        "seller": fill.taker_participant if buy_is_maker else fill.maker_participant,
        "settlement": "pending",
    }


def notice_json(notice: SettlementNotice) -> dict[str, Any]:
    out = dataclasses.asdict(notice)
    out["state"] = notice.state.value
    return out


_BASE_UNIT_FIELDS = ("note_balance", "cash_balance", "open_buy_reserved", "open_sell_reserved")


def participant_json(view: ParticipantView) -> dict[str, Any]:
    """Token amounts in base units as decimal strings: 18-decimal balances exceed what a JSON
    number survives in JavaScript (2**53)."""
    out = dataclasses.asdict(view)
    for name in _BASE_UNIT_FIELDS:
        out[name] = str(out[name])
    return out


def rejection_json(record: RejectionRecord) -> dict[str, Any]:
    return dataclasses.asdict(record)


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return dataclasses.asdict(entry)


def reconciliation_json(report: ReconciliationReport) -> dict[str, Any]:
    return dataclasses.asdict(report)


def _outcome_error(outcome: Outcome) -> OperatorApiError | None:
    if outcome.rejection is not None:
        code = outcome.rejection.code
        return OperatorApiError(http_status(code), code, outcome.rejection.message)
    if outcome.result is not None and outcome.result.code is not ResultCode.OK:
        return OperatorApiError(http_status(outcome.result.code.name), outcome.result.code.name,
                                engine_message(outcome.result.code))
    return None


# ---------------------------------------------------------------- request bodies


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)  # strict: "yes" is not a bool


class LoginCodeBody(_Body):
    code: str = Field(max_length=128)


class InstrumentStatusBody(_Body):
    status: str = Field(max_length=32)  # "open" | "halted" | "closed" | "pre_open"


class ParticipantStatusBody(_Body):
    status: str = Field(max_length=32)  # "active" | "suspended"


class FreezeBody(_Body):
    frozen: bool


PARTICIPANT_STATUSES = ("active", "suspended")


# ---------------------------------------------------------------- live hub


class _Hub:
    """Fan-out of live updates to every console websocket. Subscribes to the venue only while at
    least one client is connected. Every 100 ms: the tick's trades and settlement notices in one
    message each, one book snapshot per changed symbol; slow state is diffed every second."""

    def __init__(self, venue: OperatorVenue) -> None:
        self._venue = venue
        self._clients: set[asyncio.Queue[dict[str, Any]]] = set()
        self._dirty_books: set[str] = set()
        self._trades: list[dict[str, Any]] = []
        self._notices: dict[int, SettlementNotice] = {}  # latest state per trade within a tick
        self._unsubscribe: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._last: dict[str, Any] = {}

    def attach(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=_WS_QUEUE_MAX)
        if not self._clients:
            self._unsubscribe = [
                self._venue.subscribe_events(self._on_event),
                self._venue.subscribe_settlements(self._on_notice),
            ]
            self._last = self._slow_state()
            self._last.update(self._fast_state())
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._clients.add(queue)
        return queue

    def detach(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._clients.discard(queue)
        if not self._clients:
            for stop in self._unsubscribe:
                stop()
            self._unsubscribe = []
            if self._task is not None:
                self._task.cancel()
                self._task = None
            self._dirty_books.clear()
            self._trades.clear()
            self._notices.clear()

    def _broadcast(self, message: dict[str, Any]) -> None:
        for queue in self._clients:
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                # a client this far behind gets one resync instead of an unbounded backlog
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait({"type": "resync"})

    def _on_event(self, event: Event) -> None:
        if isinstance(event, Fill):
            self._trades.append(_fill_json(self._venue, event))
            if len(self._trades) > 2 * _MAX_BATCH:
                del self._trades[:-_MAX_BATCH]
            self._dirty_books.add(event.symbol)
        elif isinstance(event, BookDelta | InstrumentStatusChanged):
            self._dirty_books.add(event.symbol)
            if isinstance(event, InstrumentStatusChanged):
                self._broadcast({"type": "status", "symbol": event.symbol, "status": event.status.name.lower()})

    def _on_notice(self, notice: SettlementNotice) -> None:
        self._notices[notice.trade_id] = notice

    def _fast_state(self) -> dict[str, Any]:
        return {"rejection_counts": self._venue.rejection_counts()}

    def _slow_state(self) -> dict[str, Any]:
        audit = self._venue.audit_log(1)
        return {
            "participants": self._venue.participants(),
            "reconciliation": self._venue.reconciliation(),
            "audit_head": audit[0].id if audit else None,
        }

    async def _run(self) -> None:
        ticks_per_poll = max(1, round(_SLOW_POLL_S / _BOOK_FLUSH_S))
        tick = 0
        while True:
            await asyncio.sleep(_BOOK_FLUSH_S)
            tick += 1
            try:
                self._flush(slow=tick % ticks_per_poll == 0)
            except Exception:  # a failing read must not end the live feed for every console
                log.exception("operator live update failed")

    def _flush(self, *, slow: bool) -> None:
        trades, self._trades = self._trades, []
        if trades:  # a tick's trades in one message; the console's tape holds _MAX_BATCH anyway
            self._broadcast({"type": "trades", "trades": trades[-_MAX_BATCH:]})
        notices, self._notices = self._notices, {}
        if notices:
            latest = [notices[k] for k in sorted(notices)][-_MAX_BATCH:]
            self._broadcast({"type": "settlements", "notices": [notice_json(n) for n in latest],
                             "counts": self._venue.settlement_counts(), "truncated": len(notices) > _MAX_BATCH})
        dirty, self._dirty_books = self._dirty_books, set()
        for symbol in sorted(dirty):
            listing = self._venue.listing(symbol)
            if listing is not None:
                self._broadcast({"type": "book", "instrument": instrument_json(self._venue, listing, _PUSH_DEPTH)})
        state = self._fast_state()
        if slow:
            state.update(self._slow_state())
        for key, value in state.items():
            if self._last.get(key) == value:
                continue
            self._last[key] = value
            if key == "rejection_counts":
                self._broadcast({"type": "rejections", "counts": value,
                                 "recent": [rejection_json(r) for r in self._venue.recent_rejections(50)]})
            elif key == "participants":
                self._broadcast({"type": "participants", "participants": [participant_json(p) for p in value]})
            elif key == "reconciliation":
                self._broadcast({"type": "reconciliation", "report": reconciliation_json(value)})
            elif key == "audit_head":
                self._broadcast({"type": "audit", "chain_ok": self._venue.audit_chain_ok(),
                                 "entries": [audit_json(e) for e in self._venue.audit_log(100)]})


# ---------------------------------------------------------------- router


def operator_router(
    venue: OperatorVenue,
    *,
    require_operator: RequireOperator = authenticated,
    console_auth: ConsoleAuth | None = None,
) -> APIRouter:
    """Operator REST + websocket + console pages.

    ``require_operator(request)`` returns the ``ApiKey`` of a signed request (or raises the
    gateway's 401); the default reads what ``gateway.app``'s signing middleware verified for every
    ``/v1`` request. Keys without role operator are refused here with 403 FORBIDDEN.
    ``console_auth`` issues and checks console sessions: pass the instance the CLI uses to print
    the login URL (without one, only ``POST /v1/operator/console-login`` can start a session).
    """
    auth = console_auth or ConsoleAuth()
    hub = _Hub(venue)
    router = APIRouter(route_class=_OperatorRoute)
    ops = APIRouter(route_class=_OperatorRoute)  # mounted twice: signed /v1/operator, bearer /console/api
    console_only = APIRouter(route_class=_OperatorRoute)

    async def signed_operator(request: Request) -> str:
        found = require_operator(request)
        key = await found if inspect.isawaitable(found) else found
        if key.role is not Role.OPERATOR:
            raise OperatorApiError(403, "FORBIDDEN", "this API key does not have the operator role")
        return key.participant

    async def operator(request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return auth.verify(token.strip())
        return await signed_operator(request)

    def listing_or_404(symbol: str) -> Listing:
        listing = venue.listing(symbol)
        if listing is None:
            raise OperatorApiError(404, "UNKNOWN_INSTRUMENT", f"no instrument {symbol!r}")
        return listing

    def participant_or_404(participant: str) -> ParticipantView:
        for view in venue.participants():
            if view.participant == participant:
                return view
        raise OperatorApiError(404, "UNKNOWN_PARTICIPANT", f"no participant {participant!r}")

    # -------------------------------------------------- sessions

    @router.post("/v1/operator/console-login", tags=["operator"])
    async def console_login(name: str = Depends(signed_operator)) -> dict[str, Any]:
        """A one-time console login code for the signing operator (open ``path`` in a browser)."""
        code = auth.issue_login_code(name)
        return {"code": code, "path": f"/console#code={code}", "expires_in": auth.code_ttl_s}

    @router.post("/console/api/session", include_in_schema=False)
    async def start_session(body: LoginCodeBody) -> dict[str, Any]:
        """Exchanges a one-time login code for a console session token."""
        return dataclasses.asdict(auth.exchange(body.code))

    @router.post("/console/api/session/refresh", include_in_schema=False)
    async def refresh_session(request: Request) -> dict[str, Any]:
        return dataclasses.asdict(auth.refresh(_bearer(request)))

    @router.delete("/console/api/session", include_in_schema=False)
    async def end_session(request: Request) -> dict[str, Any]:
        auth.revoke(_bearer(request))
        return {"ok": True}

    @ops.get("/whoami")
    async def whoami(name: str = Depends(operator)) -> dict[str, Any]:
        return {"operator": name}

    # -------------------------------------------------- instruments

    @ops.get("/instruments")
    async def instruments(
        depth: int = Query(5, ge=1, le=50), _: str = Depends(operator)
    ) -> dict[str, Any]:
        return {"instruments": [instrument_json(venue, listing, depth) for listing in venue.listings()]}

    @ops.get("/instruments/{symbol}")
    async def instrument(
        symbol: str, depth: int = Query(20, ge=1, le=200), _: str = Depends(operator)
    ) -> dict[str, Any]:
        return instrument_json(venue, listing_or_404(symbol), depth)

    # signed clients use the gateway's own POST /v1/operator/instruments/{symbol}/status (gateway.rest)
    @console_only.post("/instruments/{symbol}/status")
    async def set_instrument_status(
        symbol: str, body: InstrumentStatusBody, name: str = Depends(operator)
    ) -> dict[str, Any]:
        listing = listing_or_404(symbol)
        try:
            status = InstrumentStatus[body.status.upper()]
        except KeyError:
            allowed = ", ".join(s.name.lower() for s in InstrumentStatus)
            raise OperatorApiError(400, "INVALID_FIELD", f"status must be one of {allowed}") from None
        error = _outcome_error(await venue.set_status(symbol, status, operator=name))
        if error is not None:
            raise error
        return instrument_json(venue, listing, 5)

    @ops.get("/trades")
    async def trades(
        symbol: str | None = None, limit: int = Query(100, ge=1, le=1000), _: str = Depends(operator)
    ) -> dict[str, Any]:
        if symbol is not None:
            listing_or_404(symbol)
        return {"trades": [trade_json(venue, t) for t in venue.trades(symbol=symbol, limit=limit)]}

    # -------------------------------------------------- participants

    @ops.get("/participants")
    async def participants(_: str = Depends(operator)) -> dict[str, Any]:
        return {"participants": [participant_json(p) for p in venue.participants()]}

    @ops.post("/participants/{participant}/status")
    async def set_participant_status(
        participant: str, body: ParticipantStatusBody, name: str = Depends(operator)
    ) -> dict[str, Any]:
        if body.status not in PARTICIPANT_STATUSES:
            raise OperatorApiError(
                400, "INVALID_FIELD", f"status must be one of {', '.join(PARTICIPANT_STATUSES)}"
            )
        participant_or_404(participant)
        await venue.set_participant_status(participant, body.status, operator=name)
        return participant_json(participant_or_404(participant))

    @ops.post("/participants/{participant}/freeze")
    async def freeze_wallet(participant: str, body: FreezeBody, name: str = Depends(operator)) -> dict[str, Any]:
        view = participant_or_404(participant)
        if view.wallet is None:
            raise OperatorApiError(409, "NO_WALLET", f"participant {participant!r} has no wallet")
        try:
            tx_hash = await venue.freeze_wallet(participant, body.frozen, operator=name)
        except Exception as exc:  # chain/RPC failure from the core's token agent: report, do not 500
            log.exception("wallet freeze failed for %s", participant)
            raise OperatorApiError(502, "CHAIN_ERROR", f"freeze transaction failed: {exc}") from exc
        return {"participant": participant, "frozen": body.frozen, "tx_hash": tx_hash}

    # -------------------------------------------------- rejections, settlements, reconciliation, audit

    @ops.get("/rejections")
    async def rejections(limit: int = Query(100, ge=1, le=2000), _: str = Depends(operator)) -> dict[str, Any]:
        return {"counts": venue.rejection_counts(),
                "recent": [rejection_json(r) for r in venue.recent_rejections(limit)]}

    @ops.get("/settlements")
    async def settlements(limit: int = Query(200, ge=1, le=5000), _: str = Depends(operator)) -> dict[str, Any]:
        return {"counts": venue.settlement_counts(),
                "settlements": [notice_json(n) for n in venue.settlements(limit)]}

    @ops.get("/reconciliation")
    async def reconciliation(_: str = Depends(operator)) -> dict[str, Any]:
        return reconciliation_json(venue.reconciliation())

    @ops.post("/reconciliation/run")
    async def run_reconciliation(name: str = Depends(operator)) -> dict[str, Any]:
        try:
            report = await venue.run_reconciliation(operator=name)
        except Exception as exc:  # chain/RPC failure while reading balances
            log.exception("reconciliation failed")
            raise OperatorApiError(502, "CHAIN_ERROR", f"reconciliation failed: {exc}") from exc
        return reconciliation_json(report)

    @ops.get("/audit")
    async def audit(limit: int = Query(200, ge=1, le=5000), _: str = Depends(operator)) -> dict[str, Any]:
        return {"chain_ok": venue.audit_chain_ok(), "entries": [audit_json(e) for e in venue.audit_log(limit)]}

    router.include_router(ops, prefix="/v1/operator", tags=["operator"])
    router.include_router(ops, prefix="/console/api", include_in_schema=False)
    router.include_router(console_only, prefix="/console/api", include_in_schema=False)

    # -------------------------------------------------- live websocket

    @router.websocket("/v1/operator/ws")
    async def live(ws: WebSocket) -> None:
        await ws.accept()
        try:
            name, token = await _ws_login(ws, auth)
        except WebSocketDisconnect:
            return
        if name is None:
            return
        queue = hub.attach()
        metrics.ws_session_opened("operator")
        receiver = asyncio.get_running_loop().create_task(_ws_receive(ws, queue))
        try:
            await ws.send_json({"type": "welcome", "operator": name})
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, receiver}, timeout=WS_HEARTBEAT_S,
                                             return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    await ws.send_json(getter.result())
                    while not queue.empty():  # drain the backlog without a wake-up per message
                        await ws.send_json(queue.get_nowait())
                    continue
                getter.cancel()
                if receiver in done:
                    break
                try:  # quiet period: a console session that expired or was logged out ends here
                    if token is not None:
                        auth.verify(token)
                except ConsoleAuthError as exc:
                    await ws.send_json({"type": "error", "code": exc.code, "message": exc.message})
                    await ws.close(code=4401)
                    break
                await ws.send_json({"type": "heartbeat", "ts": time.time_ns()})
        except WebSocketDisconnect:
            pass
        finally:
            receiver.cancel()
            hub.detach(queue)
            metrics.ws_session_closed("operator")
            if ws.client_state is WebSocketState.CONNECTED:
                with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                    await ws.close()

    # -------------------------------------------------- console (static files)

    @router.get("/console", include_in_schema=False)
    async def console_page() -> Response:
        return _static("index.html", "text/html; charset=utf-8")

    @router.get("/console/{asset}", include_in_schema=False)
    async def console_asset(asset: str) -> Response:
        types = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}
        if asset not in types:  # a fixed set: no path from the request ever reaches the filesystem
            raise OperatorApiError(404, "NOT_FOUND", f"no console asset {asset!r}")
        return _static(asset, types[asset])

    return router


_CONSOLE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _static(name: str, media_type: str) -> Response:
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=_CONSOLE_HEADERS)


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ConsoleAuthError("MISSING_SESSION", "Authorization: Bearer <session token> is required")
    return token.strip()


async def _ws_login(ws: WebSocket, auth: ConsoleAuth) -> tuple[str | None, str | None]:
    """Sends ``{"type": "hello", "nonce"}`` and waits for a login: ``{"op": "login", "token"}``
    (console session) or ``{"op": "login", "key_id", "ts", "signature"}`` signed over the nonce
    exactly like the trader websocket's login (operator keys only). Returns the operator name and
    the session token (``None`` for key logins); on failure sends an error and closes 4401."""
    nonce = secrets.token_hex(16)
    await ws.send_json({"type": "hello", "nonce": nonce})
    try:
        message = await asyncio.wait_for(ws.receive_json(), timeout=WS_LOGIN_TIMEOUT_S)
    except TimeoutError:
        return await _ws_refuse(ws, "LOGIN_TIMEOUT", "send a login message first")
    except (ValueError, KeyError):
        return await _ws_refuse(ws, "MALFORMED_JSON", "messages must be JSON objects")
    if not isinstance(message, dict) or message.get("op") != "login":
        return await _ws_refuse(ws, "NOT_LOGGED_IN", 'first message must be {"op": "login", ...}')
    try:
        token = message.get("token")
        if isinstance(token, str):
            return auth.verify(token), token
        gateway = getattr(ws.app.state, "gateway", None)
        if gateway is None:
            return await _ws_refuse(ws, "MISSING_AUTH", "login needs a console session token")
        key: ApiKey = gateway.auth.verify_login(message.get("key_id"), message.get("ts"),
                                                message.get("signature"), nonce)
    except ApiError as exc:
        return await _ws_refuse(ws, exc.code, exc.message)
    if key.role is not Role.OPERATOR:
        return await _ws_refuse(ws, "FORBIDDEN", "this API key does not have the operator role")
    return key.participant, None


async def _ws_refuse(ws: WebSocket, code: str, message: str) -> tuple[None, None]:
    await ws.send_json({"type": "error", "code": code, "message": message})
    await ws.close(code=4401)
    return None, None


async def _ws_receive(ws: WebSocket, replies: asyncio.Queue[dict[str, Any]]) -> None:
    """Client messages after login (only pings); replies go through the send queue so that one
    task writes to the socket. Returns when the client goes away."""
    while True:
        try:
            message = await ws.receive_json()
        except (ValueError, KeyError):
            message = None
        except WebSocketDisconnect:
            return
        if isinstance(message, dict) and message.get("op") == "ping":
            reply = {"type": "pong"}
        else:
            reply = {"type": "error", "code": "UNKNOWN_OP", "message": 'only {"op": "ping"} is accepted'}
        with contextlib.suppress(asyncio.QueueFull):
            replies.put_nowait(reply)
