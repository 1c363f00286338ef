"""Operator REST routes and the console's static pages, as module-level routers.

``ops`` is mounted twice by ``operator_router``: ``/v1/operator`` for signed operator keys and
``/console/api`` for console sessions. Errors are ``ApiError``s with the gateway's stable codes and
one HTTP status per code (``gateway.errors.http_status``), rendered by the app's handlers.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse

from gateway.errors import ApiError
from gateway.operator import views
from gateway.operator.context import (
    PARTICIPANT_STATUSES,
    BearerToken,
    Ctx,
    FreezeBody,
    InstrumentStatusBody,
    LoginCodeBody,
    OperatorName,
    ParticipantPath,
    ParticipantStatusBody,
    SignedOperator,
    SymbolPath,
)
from gateway.operator.feed import instrument_view
from gateway.orders import STATUSES
from gateway.paging import PAGED_RESPONSES, CursorQuery, SinceQuery, UntilQuery, set_next_cursor, trade_query
from gateway.schemas import ErrorResponse
from gateway.state import gateway_state
from market.history import MAX_PAGE

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    described = {400: "invalid input (INVALID_FIELD, MISSING_FIELD, UNKNOWN_FIELD, MALFORMED_JSON)",
                 401: "no valid signature or console session (MISSING_AUTH, INVALID_SESSION, SESSION_EXPIRED, ...)",
                 403: "not an operator key (FORBIDDEN)", 404: "UNKNOWN_INSTRUMENT or UNKNOWN_PARTICIPANT",
                 409: "NO_WALLET", 422: "refused by the venue (engine code, e.g. INVALID_STATUS_TRANSITION)",
                 502: "CHAIN_ERROR: the chain transaction or read failed"}
    return {s: {"model": ErrorResponse, "description": described[s]} for s in (400, 401, 403, *statuses)}


signed_only = APIRouter(responses=_errors())  # mounted under /v1/operator only
sessions = APIRouter()  # console session lifecycle (no operator auth: the login code or token is the auth)
ops = APIRouter(responses=_errors())  # mounted under /v1/operator and /console/api
console_only = APIRouter(responses=_errors(404, 422))  # signed clients use gateway.rest's status route
pages = APIRouter()


# ---------------------------------------------------------------- sessions


@signed_only.post("/console-login", response_model=views.LoginCode)
async def console_login(ctx: Ctx, name: SignedOperator) -> views.LoginCode:
    """A one-time console login code for the signing operator (open ``path`` in a browser)."""
    code = ctx.auth.issue_login_code(name)
    return views.LoginCode(code=code, path=f"/console#code={code}", expires_in=ctx.auth.code_ttl_s)


@sessions.post("/console/api/session", response_model=views.SessionToken, include_in_schema=False)
async def start_session(ctx: Ctx, body: LoginCodeBody) -> views.SessionToken:
    """Exchanges a one-time login code for a console session token."""
    return views.SessionToken(**dataclasses.asdict(ctx.auth.exchange(body.code)))


@sessions.post("/console/api/session/refresh", response_model=views.SessionToken, include_in_schema=False)
async def refresh_session(ctx: Ctx, token: BearerToken) -> views.SessionToken:
    return views.SessionToken(**dataclasses.asdict(ctx.auth.refresh(token)))


@sessions.delete("/console/api/session", response_model=views.Ok, include_in_schema=False)
async def end_session(ctx: Ctx, token: BearerToken) -> views.Ok:
    ctx.auth.revoke(token)
    return views.Ok(ok=True)


@ops.get("/whoami", response_model=views.Whoami)
async def whoami(name: OperatorName) -> views.Whoami:
    return views.Whoami(operator=name)


# ---------------------------------------------------------------- instruments and trades


@ops.get("/instruments", response_model=views.OperatorInstruments)
async def instruments(ctx: Ctx, _: OperatorName,
                      depth: Annotated[int, Query(ge=1, le=50)] = 5) -> views.OperatorInstruments:
    found = (instrument_view(ctx.venue, listing.symbol, depth) for listing in ctx.venue.listings())
    return views.OperatorInstruments(instruments=[view for view in found if view is not None])


@ops.get("/instruments/{symbol}", response_model=views.OperatorInstrument, responses=_errors(404))
async def instrument(ctx: Ctx, _: OperatorName, symbol: SymbolPath,
                     depth: Annotated[int, Query(ge=1, le=200)] = 20) -> views.OperatorInstrument:
    view = instrument_view(ctx.venue, ctx.listing(symbol).symbol, depth)
    assert view is not None
    return view


@console_only.post("/instruments/{symbol}/status", response_model=views.OperatorInstrument)
async def set_instrument_status(request: Request, ctx: Ctx, name: OperatorName, symbol: SymbolPath,
                                body: InstrumentStatusBody) -> views.OperatorInstrument:
    """The console's halt / resume: the gateway's own status command (``gateway.rest.set_status``
    serves signed clients), answered with the instrument's new state."""
    status = body.status.lower()
    if status not in STATUSES:
        raise ApiError("INVALID_FIELD", f"status must be one of {', '.join(STATUSES)}")
    reply = await gateway_state(request).orders.set_status(name, symbol, status)
    if not reply.ok:
        raise ApiError(reply.body["error"]["code"], reply.body["error"]["message"])
    view = instrument_view(ctx.venue, symbol, 5)
    assert view is not None
    return view


@ops.get("/trades", response_model=views.OperatorTrades, responses={**_errors(404), **PAGED_RESPONSES})
async def trades(ctx: Ctx, _: OperatorName, response: Response,
                 symbol: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
                 participant: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
                 limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
                 since: SinceQuery = None, until: UntilQuery = None,
                 cursor: CursorQuery = None) -> views.OperatorTrades:
    """Every trade, newest first, from the whole history (the store), optionally of one instrument
    and/or one participant. Paged like ``GET /v1/fills``: a full page sets ``Next-Cursor``."""
    if symbol is not None:
        ctx.listing(symbol)
    page = await ctx.venue.trade_history(trade_query(symbol=symbol, participant=participant, since=since,
                                                     until=until, cursor=cursor, limit=limit))
    set_next_cursor(response, page.next_cursor)
    return views.OperatorTrades(trades=[views.trade(t, ctx.venue.listing(t.symbol)) for t in page.items])


# ---------------------------------------------------------------- participants


@ops.get("/participants", response_model=views.Participants)
async def participants(ctx: Ctx, _: OperatorName) -> views.Participants:
    return views.Participants(participants=[views.participant(p) for p in ctx.venue.participants()])


@ops.post("/participants/{participant}/status", response_model=views.Participant, responses=_errors(404))
async def set_participant_status(ctx: Ctx, name: OperatorName, participant: ParticipantPath,
                                 body: ParticipantStatusBody) -> views.Participant:
    if body.status not in PARTICIPANT_STATUSES:
        raise ApiError("INVALID_FIELD", f"status must be one of {', '.join(PARTICIPANT_STATUSES)}")
    ctx.participant(participant)
    await ctx.venue.set_participant_status(participant, body.status, operator=name)
    return views.participant(ctx.participant(participant))


@ops.post("/participants/{participant}/freeze", response_model=views.FreezeResult,
          responses=_errors(404, 409, 502))
async def freeze_wallet(ctx: Ctx, name: OperatorName, participant: ParticipantPath,
                        body: FreezeBody) -> views.FreezeResult:
    if ctx.participant(participant).wallet is None:
        raise ApiError("NO_WALLET", f"participant {participant!r} has no wallet")
    try:
        tx_hash = await ctx.venue.freeze_wallet(participant, body.frozen, operator=name)
    except Exception as exc:  # chain/RPC failure from the core's token agent: report, do not 500
        log.exception("wallet freeze failed for %s", participant)
        raise ApiError("CHAIN_ERROR", f"freeze transaction failed: {exc}") from exc
    return views.FreezeResult(participant=participant, frozen=body.frozen, tx_hash=tx_hash)


# ---------------------------------------------------------------- rejections, settlements, reconciliation, audit


@ops.get("/rejections", response_model=views.Rejections)
async def rejections(ctx: Ctx, _: OperatorName,
                     limit: Annotated[int, Query(ge=1, le=2000)] = 100) -> views.Rejections:
    return views.Rejections(counts=ctx.venue.rejection_counts(),
                            recent=[views.rejection(r) for r in ctx.venue.recent_rejections(limit)])


@ops.get("/settlements", response_model=views.Settlements)
async def settlements(ctx: Ctx, _: OperatorName,
                      limit: Annotated[int, Query(ge=1, le=5000)] = 200) -> views.Settlements:
    return views.Settlements(counts=ctx.venue.settlement_counts(),
                             settlements=[views.notice(n) for n in ctx.venue.settlements(limit)])


@ops.get("/reconciliation", response_model=views.Reconciliation)
async def reconciliation(ctx: Ctx, _: OperatorName) -> views.Reconciliation:
    return views.reconciliation(ctx.venue.reconciliation())


@ops.post("/reconciliation/run", response_model=views.Reconciliation, responses=_errors(502))
async def run_reconciliation(ctx: Ctx, name: OperatorName) -> views.Reconciliation:
    try:
        report = await ctx.venue.run_reconciliation(operator=name)
    except Exception as exc:  # chain/RPC failure while reading balances
        log.exception("reconciliation failed")
        raise ApiError("CHAIN_ERROR", f"reconciliation failed: {exc}") from exc
    return views.reconciliation(report)


@ops.get("/audit", response_model=views.Audit)
async def audit(ctx: Ctx, _: OperatorName, limit: Annotated[int, Query(ge=1, le=5000)] = 200) -> views.Audit:
    return views.Audit(chain_ok=ctx.venue.audit_chain_ok(),
                       entries=[views.audit_entry(e) for e in ctx.venue.audit_log(limit)])


# ---------------------------------------------------------------- console (static files)


_CONSOLE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_ASSETS = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}


@pages.get("/console", include_in_schema=False)
async def console_page() -> Response:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=_CONSOLE_HEADERS)


@pages.get("/console/{asset}", include_in_schema=False)
async def console_asset(asset: str) -> Response:
    media_type = _ASSETS.get(asset)
    if media_type is None:  # a fixed set: no path from the request ever reaches the filesystem
        raise ApiError("NOT_FOUND", f"no console asset {asset!r}")
    return FileResponse(STATIC_DIR / asset, media_type=media_type, headers=_CONSOLE_HEADERS)
