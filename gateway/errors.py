"""Stable error codes, their HTTP statuses and default messages; the gateway's exceptions.

Every error leaves the gateway as ``{"error": {"code": ..., "message": ...}}`` (REST) or inside a
websocket reply. Codes are stable API; messages are for humans and say what exactly was wrong.
Engine rejections use ``ResultCode.name``; compliance/funding rejections use the core's codes.
"""

from __future__ import annotations

from typing import Any

from engine import ResultCode

# Gateway (pre-engine) codes -> HTTP status.
GATEWAY_CODES: dict[str, int] = {
    # request shape
    "MALFORMED_JSON": 400,
    "UNKNOWN_FIELD": 400,
    "MISSING_FIELD": 400,
    "INVALID_FIELD": 400,
    "INVALID_DECIMAL": 400,
    "VALUE_TOO_LARGE": 400,
    "WRONG_TICK": 400,
    "WRONG_LOT": 400,
    "BODY_TOO_LARGE": 413,
    "DUPLICATE_JSON_KEY": 400,
    "REQUEST_TIMEOUT": 408,
    "CLIENT_ORDER_ID_REUSED": 409,
    # auth
    "MISSING_AUTH": 401,
    "UNKNOWN_KEY": 401,
    "BAD_SIGNATURE": 401,
    "EXPIRED_SIGNATURE": 401,
    "REPLAYED_REQUEST": 401,
    "FORBIDDEN": 403,
    "RATE_LIMITED": 429,
    # routing
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    # websocket protocol
    "NOT_LOGGED_IN": 401,
    "ALREADY_LOGGED_IN": 409,
    "UNKNOWN_OP": 400,
    "UNKNOWN_CHANNEL": 400,
    "MESSAGE_TOO_LARGE": 413,
    "TOO_MANY_IN_FLIGHT": 429,
    "SUBSCRIBE_RATE_LIMITED": 429,
    # server side
    "VENUE_ERROR": 503,
    "INTERNAL_ERROR": 500,
}

_ENGINE_MESSAGES: dict[ResultCode, str] = {
    ResultCode.OK: "ok",
    ResultCode.UNKNOWN_INSTRUMENT: "unknown instrument",
    ResultCode.INSTRUMENT_EXISTS: "instrument already exists",
    ResultCode.INSTRUMENT_NOT_OPEN: "instrument is not open for trading yet (pre-open)",
    ResultCode.INSTRUMENT_HALTED: "instrument is halted",
    ResultCode.INSTRUMENT_CLOSED: "instrument is closed",
    ResultCode.INVALID_STATUS_TRANSITION: "this status change is not allowed from the current status",
    ResultCode.INVALID_INSTRUMENT_SPEC: "invalid instrument specification",
    ResultCode.INVALID_QUANTITY: "quantity must be positive",
    ResultCode.QUANTITY_BELOW_MIN: "quantity is below the instrument's minimum order size",
    ResultCode.QUANTITY_ABOVE_MAX: "quantity is above the instrument's maximum order size",
    ResultCode.INVALID_PRICE: "price must be positive",
    ResultCode.PRICE_OUTSIDE_BAND: "price is outside the instrument's price band",
    ResultCode.MISSING_PRICE: "a limit order needs a price",
    ResultCode.MISSING_EXPIRY: "a GTD order needs expire_ts",
    ResultCode.EXPIRY_IN_PAST: "expire_ts is in the past",
    ResultCode.INVALID_ORDER_FLAGS: "invalid combination of order type, time in force, post-only and expiry",
    ResultCode.POST_ONLY_WOULD_CROSS: "post-only order would cross the book",
    ResultCode.FOK_NOT_FILLABLE: "fill-or-kill order cannot be filled completely",
    ResultCode.NO_LIQUIDITY: "no liquidity within the protection price",
    ResultCode.UNKNOWN_ORDER: "unknown order",
    ResultCode.AMEND_NO_CHANGE: "amend changes nothing",
    ResultCode.AMEND_QTY_TOO_LOW: "new quantity must be above the filled quantity",
    ResultCode.INVALID_TIME: "command time is earlier than the engine clock",
}


def engine_message(code: ResultCode) -> str:
    return _ENGINE_MESSAGES.get(code, code.name.lower().replace("_", " "))


def http_status(code: str) -> int:
    """One fixed HTTP status per code: input problems 400, unknown things 404, venue refusals 422."""
    status = GATEWAY_CODES.get(code)
    if status is not None:
        return status
    if code in ("UNKNOWN_INSTRUMENT", "UNKNOWN_ORDER"):
        return 404
    engine = ResultCode.__members__.get(code)
    if engine is not None and 200 <= engine.value < 300:
        return 400
    return 422  # engine state/matching refusals and compliance/funding rejections


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    err.update({k: v for k, v in extra.items() if v is not None})
    return {"error": err}


class GatewayError(Exception):
    """Root of the gateway's exceptions."""


class ApiError(GatewayError):
    """A request the gateway refuses with a stable code (rendered as the error body)."""

    def __init__(self, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def status(self) -> int:
        return http_status(self.code)

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, retry_after=self.retry_after)
