"""Stable error codes, their HTTP statuses and default messages; the gateway's exceptions.

Every error leaves the gateway as ``{"error": {"code": ..., "message": ...}}`` (REST) or inside a
websocket reply. Codes are stable API; messages are for humans and say what exactly was wrong.
The codes and their messages live in ``market.codes`` (one registry, banded by stage); this module
maps a code to its HTTP status and renders errors.
"""

from __future__ import annotations

import math
from typing import Any

from engine import ResultCode
from market.codes import REGISTRY, engine_message

# Gateway (pre-engine) codes -> HTTP status (names and messages: ``market.codes``).
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
    # market-maker tools
    "MMP_FROZEN": 422,
    "QUOTE_CROSSED": 400,
    # investor-signed orders
    "SIGNED_ORDER_MALFORMED": 400,
    # server side
    "VENUE_ERROR": 503,
    "LEADER_UNAVAILABLE": 503,  # venue gateway: no leader answered in time (a failover)
    "REMOTE_ERROR": 503,
    "REMOTE_BAD_REQUEST": 500,
    "INTERNAL_ERROR": 500,
}

# Console session codes (gateway authentication for the operator console) -> HTTP status.
CONSOLE_SESSION_CODES: dict[str, int] = {
    "MISSING_SESSION": 401,
    "INVALID_LOGIN_CODE": 401,
    "INVALID_SESSION": 401,
    "SESSION_EXPIRED": 401,
    "SESSION_REVOKED": 401,
    "SESSION_TOO_OLD": 401,
}

# Codes of other stages that the gateway answers with a status of their own (default: 422).
_OTHER_STAGES: dict[str, int] = {
    "UNKNOWN_PARTICIPANT": 404,  # operator
    "NO_WALLET": 409,  # gate; also the operator's "freeze a participant without a wallet"
    "CHAIN_ERROR": 502,  # the chain node failed during an operator action
    "STORE_UNAVAILABLE": 503,  # the database is out during an operator action
    "STORE_BACKLOG": 503,  # intake paused until the database catches up
    "CHAIN_UNAVAILABLE": 503,  # a contract wallet's signature could not be asked of the node (venue.signed)
    "RFQ_UNKNOWN": 404,  # requests for quotes and block trades (gateway.offbook_routes)
    "RFQ_QUOTE_UNKNOWN": 404,
    "BLOCK_UNKNOWN": 404,
    # operator onboarding, keys and listings (venue.registry)
    "KEY_NOT_FOUND": 404,
    "PARTICIPANT_EXISTS": 409,
    "WALLET_IN_USE": 409,
    "INVALID_JURISDICTION": 400,
    "INVALID_WALLET": 400,
    "INVALID_CATEGORY": 400,
    "INVALID_KYC": 400,
    "INVALID_LISTING_RULE": 400,
    "INVALID_NUMBER": 400,
    "INVALID_BAND": 400,
    "INVALID_SIZE": 400,
    "INVALID_PARTICIPANT_ID": 400,
    "ADMIN_KEY_MISSING": 409,
    "EXPORT_UNKNOWN_KIND": 404,
    "EXPORT_BAD_DATE": 400,
    "UNKNOWN_TRADE": 404,
    "REGISTER_CHAIN_ERROR": 502,
}

# Every code a gateway answer may carry (the OpenAPI lists them as the enum of ``error.code``).
ERROR_CODES: tuple[str, ...] = tuple(sorted(
    (REGISTRY.keys() | GATEWAY_CODES.keys() | CONSOLE_SESSION_CODES.keys()) - {ResultCode.OK.name}))


def http_status(code: str) -> int:
    """One fixed HTTP status per code: input problems 400, unknown things 404, venue refusals 422."""
    status = GATEWAY_CODES.get(code) or CONSOLE_SESSION_CODES.get(code) or _OTHER_STAGES.get(code)
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


__all__ = ["CONSOLE_SESSION_CODES", "ERROR_CODES", "GATEWAY_CODES",
            "ApiError", "GatewayError", "engine_message", "error_body", "http_status"]


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

    def headers(self) -> dict[str, str]:
        """HTTP headers that go with the error response."""
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}
