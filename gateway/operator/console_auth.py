"""Console sessions: one-time login codes and HMAC-signed session tokens.

``ConsoleAuth.issue_login_code(operator)`` makes a one-time login code (5 minutes) that the venue
CLI prints as ``http://host:port/console#code=...`` (the fragment never reaches servers or logs);
an operator holding a key can also get one from ``POST /v1/operator/console-login``. The console
exchanges the code once (``POST /console/api/session``) for a session token (1 hour, refreshable
up to 12 hours after login, revocable by logout; the signing secret lives only in the process, so
a restart ends every session). Bearer tokens travel in a header, never a cookie: no CSRF surface.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable

from fastapi import Request

from gateway.errors import ApiError


class ConsoleAuthError(ApiError):
    """A bad, expired or revoked login code or session token (401 with ``WWW-Authenticate: Bearer``)."""

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "WWW-Authenticate": "Bearer"}


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

    def operator_of(self, request: Request) -> str:
        """FastAPI dependency of the console's own API routes (``/console/api``): the operator of
        the request's ``Authorization: Bearer`` session token."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError("MISSING_AUTH", "a console session token is required")
        return self.verify(token.strip())

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
