"""The operator's live websocket ``/v1/operator/ws``, on the gateway's framing (``gateway.framing``:
welcome with a nonce, login first, heartbeats, ``{"op", "req_id", "ok", ...}`` replies, close codes).

``login`` carries either ``token`` (a console session) or ``key_id``, ``ts``, ``signature`` over
the welcome's nonce exactly like the trader websocket's login (operator keys only). Once logged in
the session receives the live feed (``{"channel": "operator", "type": ...}``, see
``gateway.operator.feed``). A console session is checked again at every heartbeat: once it has
expired or was logged out, the heartbeat is answered with its error and the socket closes with
4003 (session ended).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from starlette.websockets import WebSocket

from gateway.errors import ApiError
from gateway.framing import CLOSE_SESSION_ENDED, FramedSession, ReqId
from gateway.operator.console_auth import ConsoleAuthError
from gateway.operator.context import Ctx, OperatorContext
from gateway.ports import ApiKey, Role
from gateway.schemas import Strict
from gateway.state import GatewayState, gateway_state


class OperatorLogin(Strict):
    op: Literal["login"]
    req_id: str | int | None = None
    token: str | None = None
    key_id: str | None = None
    ts: int | None = None
    signature: str | None = None


class OperatorSession(FramedSession):
    kind = "operator"

    def __init__(self, ws: WebSocket, gw: GatewayState, ctx: OperatorContext) -> None:
        super().__init__(ws, gw.config, gw.limiter)
        self.gw = gw
        self.ctx = ctx
        self.operator: str | None = None
        self.key: ApiKey | None = None  # the operator key of a key login (closed when it is revoked)
        self._token: str | None = None  # console session; None for a key login

    def _login(self, msg: dict[str, Any], rid: ReqId) -> None:
        login = OperatorLogin.model_validate(msg)
        if login.token is not None:
            name = self.ctx.auth.verify(login.token)
        elif login.key_id is not None and login.ts is not None and login.signature is not None:
            key = self.gw.auth.verify_login(login.key_id, login.ts, login.signature, self.nonce)
            if key.role is not Role.OPERATOR:
                raise ApiError("FORBIDDEN", "this API key does not have the operator role")
            name = key.participant
            self.key = key
            self.gw.sessions.add(self)  # gateway.sessions: closed when the key is revoked
        else:
            raise ApiError("MISSING_AUTH", "login needs a console session token or an operator key's signature")
        self.operator, self._token = name, login.token
        self.logged_in(f"operator:{name}")
        self.ok("login", rid, {"operator": name, "role": str(Role.OPERATOR), "session_id": self.id})
        self.ctx.feed.attach(self, self.gw.hub)

    def _heartbeat(self, msg: dict[str, Any], rid: ReqId) -> None:
        if self._token is not None:
            try:
                self.ctx.auth.verify(self._token)
            except ConsoleAuthError as err:
                self.fail("heartbeat", rid, err)
                self.end(CLOSE_SESSION_ENDED, err.code)
                return
        super()._heartbeat(msg, rid)

    async def _closing(self) -> None:
        self.gw.sessions.discard(self)
        self.ctx.feed.detach(self)


router = APIRouter()


@router.websocket("/v1/operator/ws")
async def operator_ws(ws: WebSocket, ctx: Ctx, gw: Annotated[GatewayState, Depends(gateway_state)]) -> None:
    await OperatorSession(ws, gw, ctx).run()
