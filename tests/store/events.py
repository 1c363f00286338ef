"""Hand-built engine results for projection tests (independent of the engine implementation)."""

from __future__ import annotations

from engine import (
    AdvanceTime,
    CancelReason,
    Command,
    Fill,
    InstrumentStatus,
    InstrumentStatusChanged,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderType,
    Result,
    ResultCode,
    Side,
    TimeInForce,
)

CMD: Command = AdvanceTime(ts=0)  # the projection reads only results


def accepted(oid: int, participant: str, side: Side, qty: int, price: int | None = 100, ts: int = 1) -> OrderAccepted:
    return OrderAccepted(
        seq=0,
        ts=ts,
        order_id=oid,
        client_order_id=f"c{oid}",
        participant=participant,
        session="s",
        symbol="OMN1",
        side=side,
        order_type=OrderType.LIMIT,
        tif=TimeInForce.GTC,
        price=price,
        qty=qty,
        expire_ts=None,
        post_only=False,
    )


def fill(
    trade_id: int,
    maker: int,
    taker: int,
    qty: int,
    maker_remaining: int,
    taker_remaining: int,
    aggressor: Side = Side.BUY,
    ts: int = 2,
) -> Fill:
    return Fill(
        seq=0,
        md_seq=0,
        ts=ts,
        trade_id=trade_id,
        symbol="OMN1",
        price=100,
        qty=qty,
        aggressor=aggressor,
        maker_order_id=maker,
        maker_participant="alice",
        maker_remaining=maker_remaining,
        taker_order_id=taker,
        taker_participant="bob",
        taker_remaining=taker_remaining,
    )


def cancelled(oid: int, remaining: int, ts: int = 3) -> OrderCancelled:
    return OrderCancelled(
        seq=0,
        ts=ts,
        order_id=oid,
        participant="alice",
        symbol="OMN1",
        side=Side.SELL,
        remaining=remaining,
        reason=CancelReason.USER,
    )


def expired(oid: int, remaining: int, ts: int = 3) -> OrderExpired:
    return OrderExpired(
        seq=0, ts=ts, order_id=oid, participant="alice", symbol="OMN1", side=Side.SELL, remaining=remaining
    )


def amended(oid: int, price: int, qty: int, remaining: int, ts: int = 3) -> OrderAmended:
    return OrderAmended(
        seq=0,
        ts=ts,
        order_id=oid,
        participant="alice",
        symbol="OMN1",
        side=Side.SELL,
        price=price,
        qty=qty,
        remaining=remaining,
        priority_kept=False,
    )


def halted(ts: int = 4) -> InstrumentStatusChanged:
    return InstrumentStatusChanged(seq=0, md_seq=0, ts=ts, symbol="OMN1", status=InstrumentStatus.HALTED)


def result(*events: object) -> Result:
    return Result(code=ResultCode.OK, events=tuple(events))  # type: ignore[arg-type]
