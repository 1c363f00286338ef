"""Paged history queries shared by the trader and operator routes: time window, opaque cursor and
the ``Next-Cursor`` response header (see ``market.history``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Response

from gateway.errors import ApiError
from market.history import CursorError, TradeQuery, decode_cursor

NEXT_CURSOR = "Next-Cursor"
PAGED_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"headers": {NEXT_CURSOR: {
    "description": "set on a full page: pass it as `cursor` for the next (older) page", "schema": {"type": "string"}}}}}
SinceQuery = Annotated[int | None, Query(ge=0, le=2**63 - 1, description="only trades at or after this ts (ns)")]
UntilQuery = Annotated[int | None, Query(ge=0, le=2**63 - 1, description="only trades before this ts (ns)")]
CursorQuery = Annotated[str | None, Query(min_length=1, max_length=64,
                                          description="the Next-Cursor header of the previous page")]


def trade_query(*, symbol: str | None, participant: str | None, since: int | None, until: int | None,
                cursor: str | None, limit: int) -> TradeQuery:
    try:
        before_id = None if cursor is None else decode_cursor(cursor)
    except CursorError as exc:
        raise ApiError("INVALID_FIELD", f"cursor: {exc}") from None
    return TradeQuery(symbol=symbol, participant=participant, since_ts=since, until_ts=until, before_id=before_id,
                      limit=limit)


def set_next_cursor(response: Response, cursor: str | None) -> None:
    if cursor is not None:
        response.headers[NEXT_CURSOR] = cursor
