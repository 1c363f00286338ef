"""Applying sequencer output to the orders/trades tables inside one session (the projection's
write path; ``Store.project`` runs it in a transaction, ``store.projection`` drives it).

Items at or below the projection's ``last_seq`` are skipped, so a retried batch is applied once;
an item beyond ``last_seq + 1`` is a gap and refused."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import (
    Command,
    Fill,
    InstrumentStatusChanged,
    NewOrder,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    Result,
    TradeOrigin,
)
from store.errors import ProjectionGapError
from store.models import InstrumentRow, OrderRow, ProjectionStateRow, SettlementRow, TradeRow
from store.records import OrderStatus, SettlementStatus

log = logging.getLogger(__name__)
_OFF_BOOK = (TradeOrigin.RFQ, TradeOrigin.BLOCK)

Item = tuple[int, Command, Result]
PROJECTION = "orders_trades"


def project_items(session: Session, items: Sequence[Item]) -> int:
    """Apply items to the orders/trades tables; returns the new ``last_seq``."""
    state = session.get(ProjectionStateRow, PROJECTION)
    if state is None:
        state = ProjectionStateRow(name=PROJECTION, last_seq=0)
        session.add(state)
    orders: dict[int, OrderRow | None] = {}
    trade_ids: list[int] = []

    def order(order_id: int) -> OrderRow | None:
        if order_id not in orders:
            with session.no_autoflush:
                orders[order_id] = session.get(OrderRow, order_id)
            if orders[order_id] is None:
                log.warning("projection: order %d is not in the store", order_id)
        return orders[order_id]

    for cmd_seq, cmd, result in items:
        if cmd_seq <= state.last_seq:
            continue
        if cmd_seq != state.last_seq + 1:
            raise ProjectionGapError(f"store has commands up to {state.last_seq}, got {cmd_seq}: sync from the journal")
        for ev in result.events:
            if isinstance(ev, OrderAccepted):
                row = OrderRow(
                    order_id=ev.order_id,
                    client_order_id=ev.client_order_id,
                    participant=ev.participant,
                    session=ev.session,
                    symbol=ev.symbol,
                    side=ev.side.name.lower(),
                    order_type=ev.order_type.name.lower(),
                    tif=ev.tif.name.lower(),
                    price=ev.price,
                    qty=ev.qty,
                    remaining=ev.qty,
                    filled=0,
                    status=OrderStatus.OPEN.value,
                    expire_ts=ev.expire_ts,
                    accepted_ts=ev.ts,
                    updated_ts=ev.ts,
                    cmd_seq=cmd_seq,
                    signed_order=(cmd.attachment or None) if isinstance(cmd, NewOrder) else None,
                )
                session.add(row)
                orders[ev.order_id] = row
            elif isinstance(ev, Fill):
                session.add(
                    TradeRow(
                        trade_id=ev.trade_id,
                        symbol=ev.symbol,
                        price=ev.price,
                        qty=ev.qty,
                        aggressor=ev.aggressor.name.lower(),
                        maker_order_id=ev.maker_order_id,
                        maker_participant=ev.maker_participant,
                        taker_order_id=ev.taker_order_id,
                        taker_participant=ev.taker_participant,
                        ts=ev.ts,
                        settlement_status=SettlementStatus.PENDING.value,
                        cmd_seq=cmd_seq,
                        origin=ev.origin.name.lower(),
                    )
                )
                trade_ids.append(ev.trade_id)
                if ev.origin in _OFF_BOOK:
                    continue  # a negotiated trade's two order ids were never on the book: no order rows
                for oid, remaining in (
                    (ev.maker_order_id, ev.maker_remaining),
                    (ev.taker_order_id, ev.taker_remaining),
                ):
                    o = order(oid)
                    if o is not None:
                        o.filled += ev.qty
                        o.remaining = remaining
                        o.status = (OrderStatus.FILLED if remaining == 0 else OrderStatus.PARTIALLY_FILLED).value
                        o.updated_ts = ev.ts
            elif isinstance(ev, OrderAmended):
                o = order(ev.order_id)
                if o is not None:
                    o.price, o.qty, o.remaining = ev.price, ev.qty, ev.remaining
                    o.status = (OrderStatus.PARTIALLY_FILLED if o.filled else OrderStatus.OPEN).value
                    o.updated_ts = ev.ts
            elif isinstance(ev, OrderCancelled | OrderExpired):
                o = order(ev.order_id)
                if o is not None:
                    o.remaining = 0
                    if isinstance(ev, OrderCancelled):
                        o.status, o.reason = OrderStatus.CANCELLED.value, ev.reason.name.lower()
                    else:
                        o.status, o.reason = OrderStatus.EXPIRED.value, "expired"
                    o.updated_ts = ev.ts
            elif isinstance(ev, InstrumentStatusChanged):
                session.execute(
                    sa.update(InstrumentRow)
                    .where(InstrumentRow.symbol == ev.symbol)
                    .values(status=ev.status.name.lower())
                )
        state.last_seq = cmd_seq
    session.flush()
    if trade_ids:
        # A settlement update can arrive before its trade is projected: mirror it now.
        settled = sa.select(SettlementRow.status).where(SettlementRow.trade_id == TradeRow.trade_id).scalar_subquery()
        session.execute(
            sa.update(TradeRow)
            .where(TradeRow.trade_id.in_(trade_ids), sa.exists().where(SettlementRow.trade_id == TradeRow.trade_id))
            .values(settlement_status=settled)
            .execution_options(synchronize_session=False)
        )
    return state.last_seq
