"""Records over the API: trade confirmations, regulatory exports, the register of holders, audit anchors.

    GET /v1/confirmations?date=YYYY-MM-DD       any key: the caller's trade confirmations, newest first,
                                                each with its settlement state and transaction hash
    GET /v1/confirmations/{trade_id}            one of the caller's confirmations (another's: 404)
    GET /v1/operator/exports/{kind}?date=...    operator: ``rts22`` / ``rts24`` CSV of a UTC day
    GET /v1/operator/holders/{symbol}           operator: register of holders, reconciled with the chain
    GET /v1/operator/audit/anchors              operator: the audit chain recomputed, each anchor checked

The last three also under ``/console/api`` for console sessions (``Authorization: Bearer``).
The venue computes the records (``venue.records.Records``, blocking: run in a worker thread).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import PlainTextResponse

from gateway.deps import AnyKey, OperatorKey
from gateway.errors import ApiError
from gateway.operator.console_auth import ConsoleAuth

JSON = dict[str, Any]
DateQuery = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="UTC day, YYYY-MM-DD")]
RequiredDate = Annotated[str, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="UTC day, YYYY-MM-DD")]
MicQuery = Annotated[str | None, Query(pattern=r"^[A-Z0-9]{4}$", description="the venue's segment MIC")]


class RecordsPort(Protocol):
    def confirmations(self, participant: str, *, day: str | None = None, limit: int = 500) -> list[JSON]: ...

    def confirmation(self, participant: str, trade_id: int) -> JSON | None: ...

    def export(self, kind: str, day: str, *, mic: str | None = None) -> str:
        """CSV text; raises an exception with ``code`` (EXPORT_UNKNOWN_KIND, EXPORT_BAD_DATE)."""
        ...

    def register(self, symbol: str) -> JSON:
        """Raises an exception with ``code`` (UNKNOWN_INSTRUMENT, REGISTER_CHAIN_ERROR)."""
        ...

    def anchors(self) -> JSON: ...


async def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except Exception as exc:
        code = getattr(exc, "code", None)
        if isinstance(code, str):  # the records modules' errors carry a stable code
            raise ApiError(code, str(exc)) from exc
        raise


def records_router(port: RecordsPort, *, console_auth: ConsoleAuth | None = None) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["records"])

    @router.get("/confirmations")
    async def confirmations(key: AnyKey, date: DateQuery = None,
                            limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> list[dict[str, Any]]:
        """The caller's trade confirmations, newest first: instrument, side, price, quantity,
        consideration, premium/discount to NAV, and the settlement state with its transaction hash."""
        result: list[dict[str, Any]] = await _call(port.confirmations, key.participant, day=date, limit=limit)
        return result

    @router.get("/confirmations/{trade_id}")
    async def confirmation(trade_id: Annotated[int, Path(ge=1)], key: AnyKey) -> dict[str, Any]:
        found: JSON | None = await _call(port.confirmation, key.participant, trade_id)
        if found is None:
            raise ApiError("UNKNOWN_TRADE", f"no trade {trade_id} of {key.participant}")
        return found

    ops = APIRouter()

    @ops.get("/exports/{kind}", response_class=PlainTextResponse,
             responses={200: {"content": {"text/csv": {}}, "description": "CSV, one header line"}})
    async def export(kind: Annotated[str, Path(max_length=16)], date: RequiredDate,
                     mic: MicQuery = None) -> PlainTextResponse:
        """A day's records as CSV: ``rts22`` (transaction reports, MiFIR RTS 22 shape) or ``rts24``
        (order records, MiFIR RTS 24 shape); columns in docs/records.md."""
        text: str = await _call(port.export, kind, date, mic=mic)
        return PlainTextResponse(text, media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{kind.lower()}-{date}.csv"'})

    @ops.get("/holders/{symbol}")
    async def holders(symbol: Annotated[str, Path(min_length=1, max_length=32)]) -> dict[str, Any]:
        """Register of holders of a note series: positions from settled trades and from the chain,
        reconciled, differences flagged."""
        result: dict[str, Any] = await _call(port.register, symbol)
        return result

    @ops.get("/audit/anchors")
    async def anchors() -> dict[str, Any]:
        """The audit log recomputed from the genesis and each on-chain anchor compared with it."""
        result: dict[str, Any] = await _call(port.anchors)
        return result

    def signed_operator(key: OperatorKey) -> None:
        return None

    router.include_router(ops, prefix="/operator", dependencies=[Depends(signed_operator)])
    if console_auth is None:
        return router

    session = console_auth.operator_of

    outer = APIRouter()
    outer.include_router(router)
    outer.include_router(ops, prefix="/console/api", include_in_schema=False, dependencies=[Depends(session)])
    return outer


__all__ = ["RecordsPort", "records_router"]
